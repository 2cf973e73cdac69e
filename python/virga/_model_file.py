"""Reading the model file (docs/model-file.md) into numpy arrays.

The engine (_virga.Model.load) verifies a file's checksum and versions; this module only lays
its rows out as arrays, for coef_ / intercept_. Every byte layout rule used here is the
documented one: magic, u32 header length, JSON header, rows of (u64 key, width x f32), u64
checksum, all little-endian.
"""
import json
import struct

import numpy as np

BIAS_KEY = 2**64 - 1  # the intercept's key (kBiasKey)
_MAGIC = b"VIRGAMDL"


def parse(data):
    """(header dict, keys uint64[n], weights float32[n, width]) of model file bytes."""
    if len(data) < 20 or data[:8] != _MAGIC:
        raise ValueError("not a virga model file (bad magic)")
    (header_len,) = struct.unpack_from("<I", data, 8)
    header = json.loads(data[12:12 + header_len].decode("utf-8"))
    width = int(header["width"])
    rows = np.frombuffer(data, dtype=np.dtype([("key", "<u8"), ("w", "<f4", (width,))]),
                         count=int(header["rows"]), offset=12 + header_len)
    return header, rows["key"].copy(), rows["w"].reshape(-1, width).copy()


# Above this many features coef_ is a scipy.sparse row instead of a dense array (a hashed
# feature space of 2^32 would not fit in memory densely).
DENSE_COEF_LIMIT = 1 << 22


def coef_and_intercept(keys, weights, n_features, columns=1):
    """coef_ (columns x n_features, float64; scipy.sparse CSR when n_features >
    DENSE_COEF_LIMIT) and intercept_ (shape (columns,)) of a linear model's rows: the first
    `columns` floats of each row (1 for lr / svm, one per class for softmax)."""
    w = weights[:, :columns].astype(np.float64)
    is_bias = keys == np.uint64(BIAS_KEY)
    intercept = w[is_bias][0].copy() if is_bias.any() else np.zeros(columns)
    fk, fw = keys[~is_bias].astype(np.int64), w[~is_bias]
    inside = fk < n_features  # a key beyond the declared width cannot be scored by a column
    fk, fw = fk[inside], fw[inside]
    if n_features <= DENSE_COEF_LIMIT:
        coef = np.zeros((columns, n_features))
        coef[:, fk] = fw.T
    else:
        import scipy.sparse as sp
        rows = np.repeat(np.arange(columns)[None, :], len(fk), axis=0)
        coef = sp.csr_matrix((fw.ravel(), (rows.ravel(), np.repeat(fk, columns))),
                             shape=(columns, n_features))
    return coef, intercept
