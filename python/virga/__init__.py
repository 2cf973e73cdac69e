"""virga: serverless machine learning from Python.

    import virga
    m = virga.LogisticRegression().fit(X, y)         # numpy / scipy.sparse / pandas: a
    m.predict_proba(X_test); m.coef_; m.classes_     # scikit-learn classifier
    s = virga.connect()                              # default store, embedded server, local backend
    # s = virga.connect(store="s3://bucket/prefix", backend="local", worker_prefix="nice")
    train, test = s.load_criteo("train.tsv", test_fraction=0.1, hash_bits=20)
    m = virga.LogisticRegression(workers=4, session=s)
    job = m.fit(train, test=test, wait=False).job_   # job.status, job.history, job.kill()
    m.predict_proba(test); m.score(test); m.save("m.vmdl"); virga.load("m.vmdl")
    search = virga.GridSearch(virga.LogisticRegression,
                              {"learning_rate": [0.01, 0.1, 1.0], "minibatch": [20, 200]},
                              session=s, max_concurrent=3, policy="asha")
    search.fit(train, test=test, wait=False); search.results; search.best_params_

All the work runs in the C++ engine (the _virga module); see docs/python.md.
"""
from ._engine import _virga, worker_binary
from ._virga import Error, InvalidArgumentError, NotFoundError
from .session import Dataset, Session, connect, default_session
from .job import Job
from .estimators import LinearSVM, LogisticRegression, load
from ._sklearn import NotFittedError
from .factorization import FactorizationMachine, FieldAwareFM, MatrixFactorization, Softmax
from .search import GridSearch, RandomSearch, SuccessiveHalving

__all__ = ["connect", "default_session", "Session", "Dataset", "Job", "LogisticRegression", "LinearSVM", "load",
           "MatrixFactorization", "Softmax", "FactorizationMachine", "FieldAwareFM",
           "GridSearch", "RandomSearch", "SuccessiveHalving", "Error", "InvalidArgumentError",
           "NotFoundError", "NotFittedError", "datagen_criteo", "jobs", "kill", "worker_binary", "backends"]


def datagen_criteo(path, rows=100000, seed=1):
    """Writes a synthetic Criteo-format click log with a known Bayes-optimal logloss (".gz" /
    ".zst" suffixes compress); returns the generator's report (rows, bayes_logloss, ...)."""
    return _virga.datagen_criteo(rows, seed, str(path))


def backends():
    """The compute backends virga.connect(backend=...) accepts: a list of dicts with name, help
    and settings (each a dict of name, env and help: the keywords connect() takes for it)."""
    return _virga.backends()


def jobs(registry_dir=None):
    """Registered jobs of every process (as `virga jobs`), newest first."""
    return _virga.list_jobs(registry_dir or _virga.default_registry_dir())


def kill(job_id, registry_dir=None):
    """Asks a registered job, in any process, to stop (as `virga kill JOB`)."""
    _virga.request_kill(registry_dir or _virga.default_registry_dir(), job_id)
