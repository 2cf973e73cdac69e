"""Estimators of the models beyond the linear ones: matrix factorization, softmax regression and
factorization machines, plain and field-aware (docs/models.md). Each is the engine's model of that name; its defaults
(optimizer, learning rate, l2, minibatch, epochs) are the engine's registry's, read from the
compiled module, so Python and the CLI train the same thing.
"""
import inspect

import numpy as np

from . import _staging, estimators
from ._engine import TRAIN_DEFAULTS as D, _virga


class _EngineScores:
    """Scores from the engine's model: a dataset split (the labels too), or rows given as a
    dense array (column j = feature j) or a scipy.sparse matrix (no labels)."""

    def _scores(self, X):
        self._fitted()
        ds = _staging.as_dataset(X, self.session)
        if ds is not None:
            return self.model.score_dataset(ds.session.store, ds.name, ds.split)
        try:
            import scipy.sparse as sp
            if sp.issparse(X):
                X = sp.csr_matrix(X)
                X.sort_indices()
                return self.model.score_csr(X.indptr.astype(np.int64), X.indices.astype(np.int64),
                                            X.data.astype(np.float32)), None
        except ImportError:
            pass
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.ndim != 2:
            raise ValueError(f"predict: expected a 2-d array, got shape {X.shape}")
        rows, cols = np.nonzero(X)
        indptr = np.zeros(X.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=X.shape[0]), out=indptr[1:])
        return self.model.score_csr(indptr, cols.astype(np.int64), X[rows, cols]), None

_REGISTRY = {m["name"]: m for m in _virga.models()}


def _model_init(engine_model, extra):
    """An __init__ with the shared parameters, the model's own defaults and `extra` (name ->
    default): scikit-learn reads parameters from the signature."""
    m = _REGISTRY[engine_model]
    base = inspect.signature(estimators._LinearModel.__init__)
    own = {"optimizer": m["optimizer"], "learning_rate": m["learning_rate"], "l1": m["l1"],
           "l2": m["l2"], "minibatch": m["minibatch"] or D["minibatch"],
           "epochs": m["epochs"] or D["epochs"]}
    params = [p.replace(default=own.get(p.name, p.default)) for p in base.parameters.values()]
    params[1:1] = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v)
                   for k, v in extra.items()]
    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.name != "self" else p
              for p in params]

    def __init__(self, **kw):
        bound = sig.bind(self, **kw)
        bound.apply_defaults()
        args = dict(bound.arguments)
        args.pop("self")
        for k in extra:
            setattr(self, k, args.pop(k))
        estimators._LinearModel.__init__(self, **args)

    sig = inspect.Signature(params)
    __init__.__signature__ = sig
    return __init__


class MatrixFactorization(_EngineScores, estimators._LinearModel):
    """Biased matrix factorization of ratings (session.load_ratings): a rating is predicted as
    mean + user bias + item bias + <user factors, item factors>; rank factors per user and item.
    predict() gives ratings; evaluate() the RMSE and MAE; score() minus the RMSE."""
    _engine_model = "mf"
    __init__ = _model_init("mf", {"rank": 0})

    def predict(self, X):
        return self._scores(X)[0].astype(np.float64)

    def predict_proba(self, X):
        raise AttributeError("MatrixFactorization predicts ratings: use predict()")

    def evaluate(self, X, y=None):
        pred, labels = self._scores(X)
        labels = np.asarray(y if labels is None else labels, dtype=np.float64)
        err = pred.astype(np.float64) - labels
        return {"rmse": float(np.sqrt(np.mean(err ** 2))), "mae": float(np.mean(np.abs(err))),
                "rows": int(len(labels))}

    def score(self, X, y=None):
        return -self.evaluate(X, y)["rmse"]


class Softmax(_EngineScores, estimators._LinearModel):
    """Softmax (multinomial logistic) regression over class labels 0..K-1; K is the dataset's
    largest label + 1 unless `classes` says more. predict_proba gives rows x K probabilities."""
    _engine_model = "softmax"
    __init__ = _model_init("softmax", {"classes": 0})

    def fit(self, train, test=None, wait=True, progress=None, **job_options):
        job = super().fit(train, test=test, wait=wait, progress=progress, **job_options)
        k = max(int(self.classes), int(train.manifest["label"]["max"]) + 1)
        self.classes_ = np.arange(k)
        return job

    def predict_proba(self, X):
        p = self._scores(X)[0].astype(np.float64)
        return p.reshape(1, -1) if p.ndim == 1 else p

    def decision_function(self, X):
        return np.log(np.clip(self.predict_proba(X), 1e-15, 1.0))

    def predict(self, X):
        return np.argmax(self.predict_proba(X), axis=1)

    def evaluate(self, X, y=None):
        p, labels = self._scores(X)
        return estimators.multiclass_metrics(p, y if labels is None else labels)


class FactorizationMachine(_EngineScores, estimators._LinearModel):
    """Second-order factorization machine (binary labels) over the hashed sparse features: the
    linear model plus <v_i, v_j> x_i x_j for every pair of features of a row."""
    _engine_model = "fm"
    __init__ = _model_init("fm", {"rank": 0})


class FieldAwareFM(_EngineScores, estimators._LinearModel):
    """Field-aware factorization machine (binary labels) on Criteo-format data, whose rows have
    one entry per field: rank factors per feature and field."""
    _engine_model = "ffm"
    __init__ = _model_init("ffm", {"rank": 0})


estimators._BY_ENGINE_NAME.update(
    {"mf": MatrixFactorization, "softmax": Softmax, "fm": FactorizationMachine,
     "ffm": FieldAwareFM})
