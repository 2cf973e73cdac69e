"""In-memory training data into a session's store and back out; dataset references.

fit(X, y) with numpy, scipy.sparse or pandas data stages the rows as a dataset of the
session's store, because the engine's workers stream their data from the store. The rows go
to the engine's ingest as they are (``_virga.ingest_csr``, C++ ``IngestRows``): column j of X
is feature index j, 0-based, exactly; values as float32; labels 0/1. The dataset is what
``virga ingest --format libsvm`` makes of the same rows written as LIBSVM text, partition for
partition. It is removed when its job ends.
"""
import os
import uuid

import numpy as np

from ._engine import _virga
from .session import Dataset, _reconnect, default_session


def _csr(X):
    import scipy.sparse as sp
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float32, copy=True)
    else:
        X = sp.csr_matrix(np.asarray(X, dtype=np.float32))
    X.eliminate_zeros()  # an implicit zero and a stored one train alike; keep partitions small
    X.sort_indices()
    return X


def stage(session, X, y01, prefix="fit", task="any"):
    """Ingests (X, y01) into the session's store as a dataset with a train split only;
    returns its name. `task` checks the labels as `virga ingest --task` does (the estimators
    have validated theirs already)."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    X = _csr(X)
    _virga.ingest_csr(session.store, name, X.indptr, X.indices, X.data,
                      np.asarray(y01, dtype=np.float32), test_fraction=0.0, task=task)
    return name


def drop_dataset(session, name):
    """Removes a dataset from the session's store: its manifest first (so it stops existing at
    once, docs/object-layout.md "The commit rule"), then its other objects."""
    prefix = f"datasets/{name}/"
    _virga.store_delete(session.store, prefix + "manifest.json")
    for key in _virga.store_list(session.store, prefix):
        _virga.store_delete(session.store, key)


def as_dataset(X, session):
    """X as a Dataset handle when it names one, else None (in-memory data)."""
    if isinstance(X, Dataset):
        return X
    if isinstance(X, (str, os.PathLike)):
        text = os.fspath(X)
        if "/datasets/" in text:
            store, name = text.rsplit("/datasets/", 1)
            if session is None or _virga.store_uri(session.store) != _virga.store_uri(store):
                session = _reconnect(store, None, _virga.default_backend_name(), None, {})
            return session.dataset(name.strip("/"))
        return (session or default_session()).dataset(text)
    return None
