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


def coef_and_intercept(keys, weights, n_features):
    """coef_ (1 x n_features, float64; scipy.sparse CSR when n_features > DENSE_COEF_LIMIT)
    and intercept_ (shape (1,)) of a width-1 linear model's rows."""
    w = weights[:, 0].astype(np.float64)
    is_bias = keys == np.uint64(BIAS_KEY)
    intercept = np.array([w[is_bias][0] if is_bias.any() else 0.0])
    fk, fw = keys[~is_bias].astype(np.int64), w[~is_bias]
    inside = fk < n_features  # a key beyond the declared width cannot be scored by a column
    fk, fw = fk[inside], fw[inside]
    if n_features <= DENSE_COEF_LIMIT:
        coef = np.zeros((1, n_features))
        coef[0, fk] = fw
    else:
        import scipy.sparse as sp
        coef = sp.csr_matrix((fw, (np.zeros_like(fk), fk)), shape=(1, n_features))
    return coef, intercept
