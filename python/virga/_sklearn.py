"""scikit-learn's estimator machinery, with a small stand-in when it is not installed.

With scikit-learn (Debian python3-sklearn) the estimators derive from its BaseEstimator and
ClassifierMixin and validate input with its helpers, so they are genuine scikit-learn
estimators. Without it they keep the same contract (parameters by signature introspection,
get_params/set_params, accuracy score, width checks) with the minimal code below.
"""
import inspect

import numpy as np

from ._engine import _virga

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.exceptions import NotFittedError as _SkNotFitted
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted
    HAVE_SKLEARN = True
except ImportError:  # tested: test_sklearn.py, test_without_scikit_learn_the_same_contract
    HAVE_SKLEARN = False
    _SkNotFitted = AttributeError


class NotFittedError(_SkNotFitted, _virga.Error):
    """An estimator used before fit (scikit-learn's NotFittedError, and a virga.Error)."""


if HAVE_SKLEARN:
    def validate_data(est, X, y="no_validation", reset=True, **kw):
        """BaseEstimator._validate_data (scikit-learn < 1.6) or its public successor."""
        if hasattr(est, "_validate_data"):
            return est._validate_data(X, y, reset=reset, **kw)
        from sklearn.utils.validation import validate_data as vd
        return vd(est, X, y, reset=reset, **kw)

    def check_is_fitted(est, attributes=None, _check=check_is_fitted):  # noqa: F811
        try:
            _check(est, attributes)
        except _SkNotFitted as e:
            raise NotFittedError(str(e)) from None
else:
    class BaseEstimator:
        @classmethod
        def _get_param_names(cls):
            sig = inspect.signature(cls.__init__)
            return sorted(p.name for p in sig.parameters.values()
                          if p.name != "self" and p.kind != p.VAR_KEYWORD)

        def get_params(self, deep=True):
            return {name: getattr(self, name) for name in self._get_param_names()}

        def set_params(self, **params):
            valid = self._get_param_names()
            for k, v in params.items():
                if k not in valid:
                    raise ValueError(f"Invalid parameter {k!r} for estimator "
                                     f"{type(self).__name__}; valid parameters: {valid}")
                setattr(self, k, v)
            return self

        def __repr__(self):
            defaults = type(self)().get_params()
            changed = {k: v for k, v in self.get_params().items() if defaults.get(k) != v}
            return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    class ClassifierMixin:
        _estimator_type = "classifier"

        def score(self, X, y, sample_weight=None):
            return float(np.average(self.predict(X) == np.asarray(y), weights=sample_weight))

    def check_classification_targets(y):
        if np.asarray(y).dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
            raise ValueError("Unknown label type: continuous")

    def check_is_fitted(est, attributes=None):
        if not any(k.endswith("_") and not k.startswith("__") for k in vars(est)):
            raise NotFittedError(f"This {type(est).__name__} instance is not fitted yet")

    def validate_data(est, X, y="no_validation", reset=True, accept_sparse=(), dtype=None):
        import scipy.sparse as sp
        if not sp.issparse(X):
            X = np.asarray(X, dtype=np.float64)
            if X.ndim != 2:
                raise ValueError(f"Expected 2D array, got {X.ndim}D array instead")
            if not np.all(np.isfinite(X)):
                raise ValueError("Input contains NaN or infinity")
        if X.shape[0] == 0:
            raise ValueError("Found array with 0 sample(s)")
        if reset:
            est.n_features_in_ = X.shape[1]
        elif X.shape[1] != est.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(est).__name__} is "
                             f"expecting {est.n_features_in_} features as input.")
        if isinstance(y, str) and y == "no_validation":
            return X
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != X.shape[0]:
            raise ValueError("y must be 1-d with one label per row of X")
        return X, y
