"""scikit-learn estimators over the engine's training jobs.

``LogisticRegression`` and ``LinearSVM`` are scikit-learn classifiers (``BaseEstimator``,
``ClassifierMixin``): they work in ``Pipeline``, ``cross_val_score``, ``GridSearchCV``,
``clone``, pickle and joblib. ``fit`` runs a job of worker functions against a parameter server;
in-memory data is staged into the session's store first (``_staging``).

Column convention (docs/python.md, "Columns"): the model's feature ``j`` is column ``j`` of a
matrix, 0-based, as in scikit-learn. A model fitted on a virga Dataset has the dataset's
feature indices as given by its input (LIBSVM text is not shifted: a 1-based file's index ``i``
is column ``i``, and column 0 is unused). ``n_features_in_`` is the width every later matrix
must have; a different width, or values in the unused column 0 of a model fitted on 1-based
LIBSVM text, is a ``ValueError`` (the 0-based vs 1-based trap).
"""
import json
import os
import tempfile
import warnings

import numpy as np

from . import _model_file, _staging, plotting
from . import job as job_mod
from .session import default_session, warn_unnormalized_test
from ._engine import TRAIN_DEFAULTS as D, _virga
from ._sklearn import (BaseEstimator, ClassifierMixin, NotFittedError, check_is_fitted,
                       check_classification_targets, validate_data)


# In-memory fits without `test` evaluate live on the training rows, or on this many of them.
_EVAL_ROWS = 50_000


def multiclass_metrics(p, labels):
    """Multiclass logloss and accuracy of probabilities p (rows x K) against class numbers
    0..K-1 (the engine's definitions, include/virga/metrics.h)."""
    labels = np.asarray(labels).astype(np.int64)
    p = np.asarray(p, dtype=np.float64).reshape(len(labels), -1)
    known = (labels >= 0) & (labels < p.shape[1])
    true = np.where(known, p[np.arange(len(labels)), np.clip(labels, 0, p.shape[1] - 1)], 0.0)
    return {"logloss": float(-np.mean(np.log(np.clip(true, 1e-15, 1 - 1e-15)))),
            "accuracy": float(np.mean(np.argmax(p, axis=1) == labels)),
            "rows": int(len(labels))}


class _LinearModel(ClassifierMixin, BaseEstimator):
    _engine_model = None  # "lr" | "svm"
    # More than two classes train the engine's softmax (multinomial) model, as scikit-learn's
    # LogisticRegression(multi_class="auto") does; otherwise more than two is an error.
    _multinomial = False

    def __init__(self, optimizer=D["optimizer"], learning_rate=D["learning_rate"],
                 minibatch=D["minibatch"], epochs=D["epochs"], workers=D["workers"],
                 l1=D["l1"], l2=D["l2"], lr_schedule=D["lr_schedule"], clip=D["clip"],
                 ftrl_beta=D["ftrl_beta"], staleness=D["staleness"], target_loss=D["target_loss"],
                 time_limit=D["time_limit"], eval_interval=D["eval_interval"],
                 function_timeout=D["function_timeout"],
                 function_memory_mb=D["function_memory_mb"], seed=D["seed"],
                 stop_on_divergence=D["stop_on_divergence"], channel=D["channel"],
                 channel_uri=D["channel_uri"], verbose=1, session=None):
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.minibatch = minibatch
        self.epochs = epochs
        self.workers = workers
        self.l1 = l1
        self.l2 = l2
        self.lr_schedule = lr_schedule
        self.clip = clip
        self.ftrl_beta = ftrl_beta
        self.staleness = staleness
        self.target_loss = target_loss
        self.time_limit = time_limit
        self.eval_interval = eval_interval
        self.function_timeout = function_timeout
        self.function_memory_mb = function_memory_mb
        self.seed = seed
        self.stop_on_divergence = stop_on_divergence
        self.channel = channel
        self.channel_uri = channel_uri
        self.verbose = verbose
        self.session = session

    def _more_tags(self):
        return {"binary_only": not self._multinomial, "requires_y": True, "_xfail_checks": {}}

    def _is_multinomial(self):
        return self._multinomial and len(self.__dict__.get("classes_", ())) > 2

    def _train_options(self):
        p = self.get_params(deep=False)
        for k in ("session", "verbose"):
            p.pop(k)
        p["model"] = self._engine_model
        return p

    # ---- training -------------------------------------------------------------------------
    def fit(self, X, y=None, *, test=None, wait=True, progress=None, **job_options):
        """Train the model: a job of worker functions against a parameter server.

        Parameters
        ----------
        X : array-like, scipy.sparse matrix, pandas DataFrame, Dataset or str
            Training rows. In-memory data (numpy, CSR/CSC, DataFrame) of shape
            ``(n_samples, n_features)``: column ``j`` is feature ``j``; it is staged into the
            session's store as a dataset and removed when the job ends. A ``Dataset`` handle
            (``session.load_*``) trains on its split as stored. A string names a dataset: a
            name in the session's store, or ``"<store-uri>/datasets/<name>"``.
        y : array-like of shape (n_samples,), optional
            Labels of in-memory ``X``: two distinct values (any type), mapped to 0/1 in sorted
            order (``classes_``); ``LogisticRegression`` also takes more, mapped to class
            numbers 0..K-1 in sorted order (multinomial). Must be None for a Dataset or a
            dataset name.
        test : Dataset, str or tuple (X_test, y_test), optional
            Rows evaluated live while training (the loss shown and recorded in
            ``job_.history``). Default: for in-memory X, the training rows themselves; for a
            Dataset, the engine's rule (the test split of its dataset).
        wait : bool, default True
            Block until the job ends. ``False`` returns at once with the job in ``self.job_``
            (``job_.status``, ``job_.kill()``); fitted attributes wait for it on first use.
        progress : bool or "plot", optional
            Show progress while waiting; overrides ``verbose`` for this call. ``"plot"``: in
            Jupyter, the loss against time redrawn live (``job_.plot``); elsewhere as True.
        **job_options
            Further engine ``TrainOptions`` (e.g. ``job_id``, ``rows_per_item``, ``local_steps``).

        Returns
        -------
        self
            The fitted estimator.

        Raises
        ------
        ValueError
            Bad input: not 2-d, NaN or infinite values, fewer than two classes (more than two:
            ``LinearSVM``), no rows.
        KeyboardInterrupt
            Interrupted while waiting (Ctrl-C, Jupyter's interrupt): the job was killed and its
            workers stopped before this is re-raised.
        """
        for k in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, k)
        self._model_bytes = None
        self._engine = None
        session, opts, staged = self._prepare(X, y, test)
        opts.update(job_options)

        def cleanup(_job, names=tuple(staged)):
            for name in names:
                try:
                    _staging.drop_dataset(session, name)
                except Exception as e:  # the job's result stands; the leftover is harmless
                    warnings.warn(f"could not remove staged dataset {name!r}: {e}")

        try:
            self.job_ = job_mod.Job(session, opts, on_end=cleanup)
        except BaseException:
            cleanup(None)
            raise
        if wait:
            if progress == "plot" and plotting.in_notebook():
                try:
                    self.job_.plot(live=True)
                except KeyboardInterrupt:
                    self.job_.kill()
                    self.job_.wait(timeout=30)
                    raise
            show = self.verbose if progress is None else (2 if progress else 0)
            self.job_.wait(progress=show)
            self._collect()
        return self

    def _prepare(self, X, y, test):
        """(session, TrainOptions dict, names of staged datasets) for fit."""
        opts = self._train_options()
        ds = _staging.as_dataset(X, self.session)
        if ds is not None:
            if y is not None:
                raise ValueError("fit: y must be None when X is a Dataset (its labels are "
                                 "in the store)")
            return self._prepare_dataset(ds, test, opts)
        X, y = validate_data(self, X, y, accept_sparse=("csr", "csc"),
                             dtype=(np.float64, np.float32), reset=True)
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2 or (len(classes) > 2 and not self._multinomial):
            what = "at least 2" if self._multinomial else "exactly 2"
            kind = "a classifier" if self._multinomial else "a binary classifier"
            raise ValueError(f"{type(self).__name__} is {kind}: y must hold "
                             f"{what} classes, got {len(classes)} class"
                             f"{'es' if len(classes) != 1 else ''} ({classes[:5]!r})")
        self.classes_ = classes
        self._space = {"kind": "columns"}
        session = self.session or default_session()
        if self._is_multinomial():
            opts["model"], opts["classes"] = "softmax", len(classes)
        y01 = self._encode_y(y)
        staged = [_staging.stage(session, X, y01)]
        opts["dataset"] = opts["test_dataset"] = staged[0]
        if test is None and X.shape[0] > _EVAL_ROWS:
            # The live loss on a fixed sample of the training rows: evaluating all of them
            # every eval_interval would cost as much as training.
            rows = np.sort(np.random.default_rng(self.seed).choice(X.shape[0], _EVAL_ROWS,
                                                                   replace=False))
            staged.append(_staging.stage(session, X[rows], y01[rows], prefix="eval"))
            opts["test_dataset"] = staged[-1]
        if test is not None:
            if isinstance(test, tuple):
                Xt, yt = test
                Xt = validate_data(self, Xt, accept_sparse=("csr", "csc"),
                                   dtype=(np.float64, np.float32), reset=False)
                staged.append(_staging.stage(session, Xt, self._encode_y(yt), prefix="eval"))
                opts["test_dataset"] = staged[-1]
            else:
                tds = _staging.as_dataset(test, session)
                if tds is None:
                    raise TypeError("fit: test must be a Dataset, a dataset name or (X, y)")
                opts["test_dataset"] = tds.name
        return session, opts, staged

    def _prepare_dataset(self, train, test, opts):
        session = self.session or train.session
        test = _staging.as_dataset(test, session) if test is not None else None
        test = warn_unnormalized_test(train, test)
        m = train.manifest
        opts["dataset"] = train.name
        if test is not None:
            if test.manifest.get("hash_bits", 0) != m.get("hash_bits", 0):
                raise _virga.InvalidArgumentError(
                    f"fit: test dataset {test.name!r} was hashed with "
                    f"hash_bits={test.manifest.get('hash_bits')}, the training data with "
                    f"{m.get('hash_bits')}: the same feature has different indices")
            if not (test.name == train.name and test.split == "test"):
                if test.split == "train" and test.manifest["test_rows"] > 0:
                    raise _virga.InvalidArgumentError(
                        f"fit: test={test!r}: the engine evaluates on a dataset's test split "
                        "when it has one; pass its .test handle")
                opts["test_dataset"] = test.name
        label = m["label"]
        if (self._multinomial and label["kind"] not in ("binary01", "binary_pm1")
                and label["min"] >= 0 and label["max"] >= 2):
            # Class numbers 0..K-1 (the engine refuses labels that are not integers).
            self.classes_ = np.arange(int(label["max"]) + 1)
            opts["model"], opts["classes"] = "softmax", len(self.classes_)
        else:
            self.classes_ = np.array([-1, 1] if label["kind"] == "binary_pm1" else [0, 1])
        self.n_features_in_ = int(m["num_features"])
        self._space = {"kind": "dataset", "dataset": train.name, "format": m.get("format", ""),
                       "hash_bits": int(m.get("hash_bits", 0))}
        return session, opts, []

    def _encode_y(self, y):
        y = np.asarray(y)
        unknown = ~np.isin(y, self.classes_)
        if unknown.any():
            raise ValueError(f"y has labels {np.unique(y[unknown])[:5]!r} not among classes_ "
                             f"{self.classes_!r}")
        if self._is_multinomial():
            return np.searchsorted(self.classes_, y).astype(np.float32)  # class numbers
        return y == self.classes_[1]

    # ---- fitted state -----------------------------------------------------------------------
    def __getattr__(self, name):
        # coef_ / intercept_ of a fit(wait=False) appear once its job ends.
        d = self.__dict__
        if name in ("coef_", "intercept_") and "job_" in d and d.get("_model_bytes") is None:
            self._collect()
            return d[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _collect(self):
        """Waits for the job and loads its model into coef_ / intercept_."""
        job = self.__dict__["job_"]
        job.wait()
        state = job.result["state"] if job.result else job.status
        if state.startswith("failed"):
            raise _virga.Error(f"job {job.id} {state}: no model")
        data = _virga.store_get(job.session.store, _virga.job_model_key(job.id))
        self._set_model_bytes(data)

    def _set_model_bytes(self, data):
        header, keys, weights = _model_file.parse(data)
        if "n_features_in_" not in self.__dict__:
            self.n_features_in_ = int(header["num_features"])
        # softmax: one column per class (its width); the others: the linear part, column 0.
        columns = int(header["width"]) if header["model"] == "softmax" else 1
        self.coef_, self.intercept_ = _model_file.coef_and_intercept(keys, weights,
                                                                     self.n_features_in_, columns)
        # Feature 0 never seen in training on LIBSVM text: the file was 1-based (column 0 is
        # unused), so a 0-based matrix (scikit-learn's loader) would be off by one column.
        if self._space.get("format") == "libsvm":
            self._space["column0_unused"] = not bool(np.any(keys == 0))
        self._model_bytes = bytes(data)
        self._engine = None

    def _fitted(self):
        check_is_fitted(self, "classes_")
        if self.__dict__.get("_model_bytes") is None:
            if "job_" not in self.__dict__:
                raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet")
            self._collect()

    @property
    def model(self):
        """The engine's model (``_virga.Model``) of the fitted estimator."""
        self._fitted()
        if self._engine is None:
            fd, path = tempfile.mkstemp(suffix=".vmdl")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(self._model_bytes)
                self._engine = _virga.Model.load(path)
            finally:
                os.unlink(path)
        return self._engine

    # ---- inference --------------------------------------------------------------------------
    def _check_X(self, X):
        """In-memory X validated against the fitted width and column convention."""
        try:
            X = validate_data(self, X, accept_sparse=("csr", "csc"),
                              dtype=(np.float64, np.float32), reset=False)
        except ValueError as e:
            if self._space.get("column0_unused") and "features" in str(e):
                raise ValueError(f"{e} The model was fitted on dataset "
                                 f"{self._space['dataset']!r}, LIBSVM text with 1-based indices "
                                 "(column j is index j, column 0 unused); scikit-learn's "
                                 "load_svmlight_file shifts such files down by one: load with "
                                 f"zero_based=True, n_features={self.n_features_in_} to keep "
                                 "the file's indices as columns") from None
            raise
        if self._space.get("column0_unused"):
            col0 = X[:, 0]
            if (col0.count_nonzero() if hasattr(col0, "count_nonzero") else np.count_nonzero(col0)):
                raise ValueError(
                    f"X has values in column 0, but the model was fitted on dataset "
                    f"{self._space['dataset']!r}, LIBSVM text with 1-based indices where column "
                    "j is index j and column 0 never occurs: X is probably shifted down by one "
                    "(scikit-learn's load_svmlight_file does that to 1-based files by default); "
                    f"load it with zero_based=True, n_features={self.n_features_in_}")
        return X

    def _check_dataset(self, ds):
        m = ds.manifest
        if self._space["kind"] == "dataset" and m.get("hash_bits", 0) != self._space["hash_bits"]:
            raise ValueError(f"dataset {ds.name!r} was hashed with hash_bits="
                             f"{m.get('hash_bits')}, the model's training data with "
                             f"{self._space['hash_bits']}")
        if m["num_features"] > self.n_features_in_:
            msg = (f"dataset {ds.name!r} has {m['num_features']} features, but "
                   f"{type(self).__name__} is expecting {self.n_features_in_} features as input")
            if self._space["kind"] == "columns":
                raise ValueError(msg)
            warnings.warn(msg + "; features the model never saw weigh 0")

    def decision_function(self, X):
        """Margin ``w . x + b`` of each row (positive: ``classes_[1]``); with more than two
        classes, each class's ``w_c . x + b_c`` (the softmax of a row's margins is its
        ``predict_proba``).

        Parameters
        ----------
        X : array-like, scipy.sparse matrix, pandas DataFrame, Dataset or str
            Rows of width ``n_features_in_`` (column ``j`` = feature ``j``), or a dataset
            split scored in the engine.

        Returns
        -------
        ndarray of shape (n_samples,), or (n_samples, n_classes) with more than two classes
        """
        self._fitted()
        ds = _staging.as_dataset(X, self.session)
        if ds is not None:
            p = np.clip(self._score_dataset(ds)[0].astype(np.float64), 1e-15, 1 - 1e-15)
            if self._is_multinomial():
                return np.log(p.reshape(-1, len(self.classes_)))  # margins up to a row's shift
            return np.log(p / (1 - p))
        X = self._check_X(X)
        m = X @ self.coef_.T
        m = m.toarray() if hasattr(m, "toarray") else np.asarray(m)
        if self._is_multinomial():
            return m + self.intercept_
        return m.ravel() + self.intercept_[0]

    def predict_proba(self, X):
        """Class probabilities: ``[P(classes_[0]), P(classes_[1])]`` per row; with more than
        two classes, P of each of ``classes_`` (the softmax of the margins).

        For the linear SVM, P(classes_[1]) is the logistic of the margin.

        Parameters
        ----------
        X : array-like, scipy.sparse matrix, pandas DataFrame, Dataset or str
            As for ``decision_function``.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        self._fitted()
        ds = _staging.as_dataset(X, self.session)
        if self._is_multinomial():
            if ds is not None:
                return self._score_dataset(ds)[0].astype(np.float64).reshape(
                    -1, len(self.classes_))
            m = self.decision_function(X)
            e = np.exp(m - m.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        if ds is not None:
            p = self._score_dataset(ds)[0].astype(np.float64)
        else:
            m = self.decision_function(X)
            p = np.exp(-np.logaddexp(0.0, -m))  # the logistic, without overflow
        return np.column_stack([1.0 - p, p])

    def predict(self, X):
        """Predicted class of each row: ``classes_[1]`` where the margin is positive; with
        more than two classes, the class of the largest margin (the most probable).

        Parameters
        ----------
        X : array-like, scipy.sparse matrix, pandas DataFrame, Dataset or str
            As for ``decision_function``.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        m = self.decision_function(X)
        if self._is_multinomial():
            return self.classes_[np.argmax(m, axis=1)]
        return self.classes_[(m > 0).astype(int)]

    def _score_dataset(self, ds):
        self._check_dataset(ds)
        return self.model.score_dataset(ds.session.store, ds.name, ds.split)

    def evaluate(self, X, y=None):
        """The engine's metrics on rows: logloss, AUC, accuracy, rows, positives; with more
        than two classes, the multiclass logloss, accuracy and rows.

        Parameters
        ----------
        X : array-like, scipy.sparse matrix, pandas DataFrame, Dataset or str
            Rows; a Dataset brings its own labels.
        y : array-like of shape (n_samples,), optional
            Labels of in-memory X (values of ``classes_``).

        Returns
        -------
        dict
        """
        self._fitted()
        ds = _staging.as_dataset(X, self.session)
        if self._is_multinomial():
            if ds is not None:
                p, labels = self._score_dataset(ds)
            elif y is None:
                raise ValueError("evaluate: y is required unless X is a Dataset")
            else:
                p, labels = self.predict_proba(X), self._encode_y(y)
            return multiclass_metrics(p, labels)
        if ds is not None:
            p, labels = self._score_dataset(ds)
        else:
            if y is None:
                raise ValueError("evaluate: y is required unless X is a Dataset")
            p = self.predict_proba(X)[:, 1]
            labels = self._encode_y(y).astype(np.float32)
        return _virga.metrics(np.asarray(p, dtype=np.float32), labels)

    def score(self, X, y=None, sample_weight=None):
        """Mean accuracy, as scikit-learn classifiers' ``score``.

        Parameters
        ----------
        X : array-like, scipy.sparse matrix, pandas DataFrame, Dataset or str
            Rows; a Dataset brings its own labels (scored in the engine).
        y : array-like of shape (n_samples,), optional
            True labels of in-memory X.
        sample_weight : array-like of shape (n_samples,), optional
            Weights of the rows (in-memory X only).

        Returns
        -------
        float
        """
        if _staging.as_dataset(X, self.session) is not None:
            return self.evaluate(X)["accuracy"]
        return super().score(X, y, sample_weight=sample_weight)

    # ---- persistence ------------------------------------------------------------------------
    def save(self, path):
        """Write the model file (docs/model-file.md).

        Parameters
        ----------
        path : str or os.PathLike
            A local path or an object URI (``s3://bucket/models/m.vmdl``,
            ``file:///dir/m.vmdl``); ``virga.load(path)`` reads it back.
        """
        self.model.save(os.fspath(path))

    def __getstate__(self):
        # The job (threads, engine handles) and the engine's model stay behind; the model
        # travels as its file's bytes, so predictions after unpickling are identical.
        self._fitted_if_running()
        state = dict(self.__dict__)
        state.pop("job_", None)
        state["_engine"] = None
        return state

    def _fitted_if_running(self):
        if "job_" in self.__dict__ and self.__dict__.get("_model_bytes") is None:
            self._collect()

    def _repr_html_(self):
        job = self.__dict__.get("job_")
        extra = job._repr_html_() if job is not None else ""
        import html
        return f"<div><code>{html.escape(repr(self))}</code>{extra}</div>"


class LogisticRegression(_LinearModel):
    """Sparse logistic regression trained by serverless worker functions.

    Worker functions stream the training rows from the session's object store and train
    against a parameter server (asynchronous SGD-family optimizers run server-side).

    With more than two classes it is multinomial, as scikit-learn's ``multi_class="auto"``:
    the engine's softmax model (docs/models.md) with one weight per feature and class, whose
    defaults (optimizer, learning rate, epochs) apply to what is left at the binary defaults.
    A Dataset with class labels 0..K-1 (K > 2) trains it too.

    Parameters
    ----------
    optimizer : str, default "ftrl"
        Server-side optimizer: "sgd", "momentum", "nesterov", "adagrad", "adam", "ftrl".
    learning_rate : float, default 0.05
        Step size (FTRL's alpha).
    minibatch : int, default 0
        Rows per gradient step; 0 = the engine's choice (20).
    epochs : int, default 0
        Passes over the training rows; 0 = the engine's choice (5; more on a small
        data set: enough for 30,000 samples, at most 100).
    workers : int, default 0
        Worker functions running at once; 0 = the backend's choice (local: the CPUs, at most 4;
        lambda: 4).
    l1, l2 : float, default 0
        Regularization strengths.
    lr_schedule : str, default "constant"
        Learning-rate schedule (docs/optimizers.md).
    clip : float, default 0
        Gradient clipping norm; 0 = none.
    ftrl_beta : float, default 0.15
        FTRL's beta: the per-coordinate rate is learning_rate / (ftrl_beta + sqrt(n))
        (docs/training.md, "Defaults").
    staleness : int, default -1
        -1 asynchronous; S >= 0 bounded staleness (0 synchronous: with ``workers=1``, fits
        are reproducible bit for bit).
    target_loss : float, default 0
        Stop at the first evaluation whose loss is at most this; 0 = never.
    time_limit : float, default 0
        Stop after this many seconds; 0 = none.
    eval_interval : float, default 1.0
        Seconds between live evaluations.
    function_timeout : float
        Lifetime of one worker function, seconds (it is replaced when it ends).
    function_memory_mb : int
        Memory of one worker function (enforced and used for the cost estimate).
    seed : int
        Seed of the job's randomness.
    stop_on_divergence : bool, default True
        Stop a run whose loss is NaN or above 1.5 x its first evaluation.
    channel : str, default "ps"
        "ps" (parameter server), "store" or "redis" (docs/channel.md).
    channel_uri : str, default ""
        ``redis://host:port`` for ``channel="redis"``.
    verbose : int, default 1
        Progress while ``fit`` waits (epoch, loss, samples/s): 0 never; 1 in a notebook or
        on a terminal; 2 always (a text line every few seconds when not on a terminal).
    session : Session, optional
        Where data, servers and workers live (``virga.connect()``); default: the Dataset's
        session, else ``virga.default_session()`` for in-memory data.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels, in sorted order; with two, ``classes_[1]`` is the positive class.
    coef_ : ndarray of shape (1, n_features_in_) or (n_classes, n_features_in_)
        Weights, one row per class when multinomial (scipy.sparse above 2^22 features).
    intercept_ : ndarray of shape (1,) or (n_classes,)
        The bias (of each class).
    n_features_in_ : int
        Width of the feature space (columns of X, or the dataset's ``num_features``).
    feature_names_in_ : ndarray of str
        Column names of a DataFrame X (only when fitted on one).
    job_ : Job
        The training job (status, history, result, kill()); not pickled.
    """
    _engine_model = "lr"
    _multinomial = True


class LinearSVM(_LinearModel):
    """Linear SVM (hinge loss) trained by serverless worker functions.

    ``predict_proba`` is the logistic of the margin. Parameters and attributes are those of
    ``LogisticRegression``.

    Parameters
    ----------
    optimizer, learning_rate, minibatch, epochs, workers, l1, l2, lr_schedule, clip, ftrl_beta, \
staleness, target_loss, time_limit, eval_interval, function_timeout, function_memory_mb, seed, \
stop_on_divergence, channel, channel_uri, verbose, session
        As for ``LogisticRegression``.
    """
    _engine_model = "svm"


_BY_ENGINE_NAME = {"lr": LogisticRegression, "svm": LinearSVM}


def load(path):
    """An estimator holding the model file at ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        A local path or an object URI, as ``save`` takes.

    Returns
    -------
    LogisticRegression or LinearSVM
        With the training parameters recorded in the file (optimizer, learning_rate, l1, l2,
        minibatch, workers), ``classes_ = [0, 1]`` and ``n_features_in_`` the file's
        ``num_features``.
    """
    model = _virga.Model.load(os.fspath(path))
    header = model.header()
    cls = _BY_ENGINE_NAME.get(header["model"])
    if cls is None:
        raise _virga.InvalidArgumentError(f"{path}: model kind {header['model']!r} has no estimator")
    est = cls()
    try:
        training = json.loads(header["training"] or "{}")
    except ValueError:
        training = {}
    names = set(est.get_params(deep=False))
    est.set_params(**{k: v for k, v in training.items() if k in names and k != "epochs"})
    est.classes_ = np.array([0, 1])
    est._space = {"kind": "dataset", "dataset": header["dataset"], "format": "",
                  "hash_bits": int(header["hash_bits"])}
    fd, tmp = tempfile.mkstemp(suffix=".vmdl")
    os.close(fd)
    try:
        model.save(tmp)
        with open(tmp, "rb") as f:
            est._set_model_bytes(f.read())
    finally:
        os.unlink(tmp)
    est._engine = model
    return est

