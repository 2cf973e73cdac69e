"""In-memory training data into a session's store, and back out.

fit(X, y) with numpy, scipy.sparse or pandas data stages the rows as a dataset of the
session's store, because the engine's workers stream their data from the store. The rows are
written as LIBSVM text (column j of X becomes feature index j, 0-based, exactly; labels 0/1)
and ingested by the engine's own ingest, so the staged dataset is bit for bit what
`virga ingest --format libsvm` would make of that text. The dataset is removed when its job ends.
"""
import os
import tempfile
import uuid

import numpy as np

from ._engine import _virga


def _csr(X):
    import scipy.sparse as sp
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float32, copy=True)
    else:
        X = sp.csr_matrix(np.asarray(X, dtype=np.float32))
    X.eliminate_zeros()
    X.sort_indices()
    return X


def write_libsvm(path, X, y01):
    """Writes rows of X (2-d, any layout) with labels y01 (0/1) as LIBSVM text, column j as
    index j. Values are float32 printed with 9 significant digits, which round-trips."""
    X = _csr(X)
    ind = X.indices.astype(np.int64)
    if np.all(X.data == 1.0):
        tokens = np.char.add(ind.astype(str), ":1")
    else:
        tokens = np.char.add(np.char.add(ind.astype(str), ":"),
                             np.char.mod("%.9g", X.data.astype(np.float64)))
    tokens = tokens.tolist()
    labels = ["1" if v else "0" for v in np.asarray(y01).astype(bool)]
    ptr = X.indptr
    with open(path, "w", encoding="ascii") as f:
        for r, label in enumerate(labels):
            row = tokens[ptr[r]:ptr[r + 1]]
            f.write(label + (" " + " ".join(row) if row else "") + "\n")


def stage(session, X, y01, prefix="fit"):
    """Ingests (X, y01) into the session's store as a dataset with a train split only;
    returns its name."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    fd, path = tempfile.mkstemp(prefix="virga-stage-", suffix=".svm")
    os.close(fd)
    try:
        write_libsvm(path, X, y01)
        _virga.ingest(session.store, "libsvm", [path], name, test_fraction=0.0)
    finally:
        os.unlink(path)
    return name


def drop_dataset(session, name):
    """Removes a dataset from the session's store: its manifest first (so it stops existing at
    once, docs/object-layout.md "The commit rule"), then its other objects."""
    prefix = f"datasets/{name}/"
    manifest = prefix + "manifest.json"
    _virga.store_delete(session.store, manifest)
    for key in _virga.store_list(session.store, prefix):
        _virga.store_delete(session.store, key)
