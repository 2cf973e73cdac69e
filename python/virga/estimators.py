"""scikit-learn style estimators over the engine's training jobs.

Parameters and their defaults are the engine's (TrainOptions, read from the compiled module):
minibatch=0 and epochs=0 mean "auto" (the engine picks 20 rows and 5 epochs, see
docs/training.md "Defaults"). fit() runs a job of worker functions; predict_proba, predict and
score run in the engine (the model file's weights applied by the C++ evaluator).
"""
import inspect
import json

import numpy as np

from . import job as job_mod
from .session import Dataset, warn_unnormalized_test
from ._engine import TRAIN_DEFAULTS as D, _virga


class _LinearModel:
    _engine_model = None  # "lr" | "svm"

    def __init__(self, optimizer=D["optimizer"], learning_rate=D["learning_rate"],
                 minibatch=D["minibatch"], epochs=D["epochs"], workers=D["workers"],
                 l1=D["l1"], l2=D["l2"], lr_schedule=D["lr_schedule"], clip=D["clip"],
                 staleness=D["staleness"], target_loss=D["target_loss"],
                 time_limit=D["time_limit"], eval_interval=D["eval_interval"],
                 function_timeout=D["function_timeout"],
                 function_memory_mb=D["function_memory_mb"], seed=D["seed"],
                 stop_on_divergence=D["stop_on_divergence"], channel=D["channel"],
                 channel_uri=D["channel_uri"], session=None):
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.minibatch = minibatch
        self.epochs = epochs
        self.workers = workers
        self.l1 = l1
        self.l2 = l2
        self.lr_schedule = lr_schedule
        self.clip = clip
        self.staleness = staleness
        self.target_loss = target_loss
        self.time_limit = time_limit
        self.eval_interval = eval_interval
        self.function_timeout = function_timeout
        self.function_memory_mb = function_memory_mb
        self.seed = seed
        self.stop_on_divergence = stop_on_divergence
        self.channel = channel          # "ps" | "store" | "redis" (docs/channel.md)
        self.channel_uri = channel_uri  # redis://host:port for channel="redis"
        self.session = session

    # ---- scikit-learn conventions -----------------------------------------------------------
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
                raise ValueError(f"invalid parameter {k!r} for estimator {type(self).__name__}; "
                                 f"valid parameters: {valid}")
            setattr(self, k, v)
        return self

    def __repr__(self):
        defaults = type(self)().get_params()
        changed = {k: v for k, v in self.get_params().items()
                   if k != "session" and defaults.get(k) != v}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def _train_options(self):
        p = self.get_params()
        p.pop("session")
        p["model"] = self._engine_model
        return p

    # ---- training -------------------------------------------------------------------------
    def fit(self, train, test=None, wait=True, progress=None, **job_options):
        """Trains on a Dataset handle (its train split); evaluates live on `test` (a handle;
        default: the test split of train's dataset). Returns the Job; with wait=True (default)
        after it ended (progress line on stderr if progress=True, or None and a terminal).
        Extra keyword arguments go to the engine's TrainOptions (e.g. job_id)."""
        if not isinstance(train, Dataset):
            raise TypeError("fit: train must be a virga Dataset handle (session.load_*)")
        session = self.session or train.session
        test = warn_unnormalized_test(train, test)
        opts = self._train_options()
        opts["dataset"] = train.name
        if test is not None and not (test.name == train.name and test.split == "test"):
            if test.split == "train" and test.manifest["test_rows"] > 0:
                raise _virga.InvalidArgumentError(
                    f"fit: test={test!r}: the engine evaluates on a dataset's test split when it "
                    "has one; pass its .test handle")
            opts["test_dataset"] = test.name
        opts.update(job_options)
        self.model_ = None
        self.classes_ = np.array([-1, 1] if train.manifest["label"]["kind"] == "binary_pm1"
                                 else [0, 1])
        self.job_ = job_mod.Job(session, opts)
        if wait:
            if progress is None:
                import sys
                progress = sys.stderr.isatty()
            self.job_.wait(progress=progress)
        return self.job_

    @property
    def model(self):
        """The trained model (the engine's model file, in memory); waits for the job."""
        if getattr(self, "model_", None) is None:
            job = getattr(self, "job_", None)
            if job is None:
                raise _virga.Error(f"{type(self).__name__} is not fitted: call fit() first")
            job.wait()
            if job.result["state"].startswith("failed"):
                raise _virga.Error(f"job {job.id} {job.result['state']}: no model")
            self.model_ = _virga.Model.load(job.model_path)
        return self.model_

    # ---- inference --------------------------------------------------------------------------
    def _scores(self, X):
        """P(positive) per row, and the labels when X is a Dataset handle."""
        if isinstance(X, Dataset):
            return self.model.score_dataset(X.session.store, X.name, X.split)
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

    def predict_proba(self, X):
        """[P(class 0), P(class 1)] per row (for the SVM, the logistic of the margin).
        X: a Dataset handle, a dense array (column j = feature j) or a scipy.sparse matrix."""
        p = self._scores(X)[0].astype(np.float64)
        return np.column_stack([1.0 - p, p])

    def decision_function(self, X):
        p = np.clip(self._scores(X)[0].astype(np.float64), 1e-15, 1 - 1e-15)
        return np.log(p / (1 - p))

    def predict(self, X):
        p = self._scores(X)[0]
        return self.classes_[(p >= 0.5).astype(int)]

    def evaluate(self, X, y=None):
        """The engine's metrics (logloss, auc, accuracy, rows, positives) on X."""
        p, labels = self._scores(X)
        if labels is None:
            if y is None:
                raise ValueError("evaluate: y is required unless X is a Dataset handle")
            labels = np.asarray(y, dtype=np.float32)
        return _virga.metrics(p, labels)

    def score(self, X, y=None):
        """Mean accuracy, as scikit-learn classifiers' score (a row is positive when its label
        > 0 and predicted positive when P >= 0.5). For the logloss use evaluate()."""
        return self.evaluate(X, y)["accuracy"]

    # ---- persistence ------------------------------------------------------------------------
    def save(self, path):
        """Writes the model file (docs/model-file.md) to `path`: a local path, or an object URI
        such as s3://bucket/models/m.vmdl or file:///dir/m.vmdl; virga.load(path) reads it back."""
        self.model.save(str(path))

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("job_", None)
        state.pop("model_", None)
        return state


class LogisticRegression(_LinearModel):
    """Sparse logistic regression trained by worker functions against the parameter server."""
    _engine_model = "lr"


class LinearSVM(_LinearModel):
    """Linear SVM (hinge loss); predict_proba is the logistic of the margin."""
    _engine_model = "svm"


_BY_ENGINE_NAME = {"lr": LogisticRegression, "svm": LinearSVM}


def load(path):
    """An estimator holding the model file at `path` (a local path or an object URI, as save()
    takes), with the training parameters recorded in the file (optimizer, learning_rate, l1, l2,
    minibatch, workers)."""
    model = _virga.Model.load(str(path))
    header = model.header()
    cls = _BY_ENGINE_NAME.get(header["model"])
    if cls is None:
        raise _virga.InvalidArgumentError(f"{path}: model kind {header['model']!r} has no estimator")
    est = cls()
    try:
        training = json.loads(header["training"] or "{}")
    except ValueError:
        training = {}
    names = set(est._get_param_names())
    est.set_params(**{k: v for k, v in training.items() if k in names and k != "epochs"})
    est.model_ = model
    est.classes_ = np.array([0, 1])
    return est
