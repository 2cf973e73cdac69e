"""a9a end to end: scikit-learn's loader, fit and score through virga, against scikit-learn.

The data are not in the repository: they are read from ../shared/data/libsvm-a9a next to the
checkout (or $VIRGA_DATA_DIR/libsvm-a9a); absent, the test is skipped with a loud message.
"""
import os

import pytest

import virga

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("VIRGA_DATA_DIR") or os.path.join(HERE, "..", "..", "..", "shared", "data")
A9A = os.path.join(DATA, "libsvm-a9a")


@pytest.fixture(scope="module")
def a9a():
    if not (os.path.exists(os.path.join(A9A, "a9a")) and os.path.exists(os.path.join(A9A, "a9a.t"))):
        pytest.skip(f"*** SKIPPED: a9a data absent: no {A9A}/a9a and a9a.t (set $VIRGA_DATA_DIR "
                    "to the directory holding libsvm-a9a/) ***")
    from sklearn.datasets import load_svmlight_file
    # a9a is 1-based with indices 1..123; scikit-learn's loader makes that 0-based columns
    # 0..122 (zero_based="auto"); a9a.t lacks index 123, hence n_features on both.
    X, y = load_svmlight_file(os.path.join(A9A, "a9a"), n_features=123)
    Xt, yt = load_svmlight_file(os.path.join(A9A, "a9a.t"), n_features=123)
    return X, y, Xt, yt


def test_a9a_auc_matches_scikit_learn(a9a, session):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    X, y, Xt, yt = a9a
    ours = virga.LogisticRegression(session=session, workers=2, verbose=0).fit(X, y)
    assert list(ours.classes_) == [-1.0, 1.0] and ours.n_features_in_ == 123
    auc = roc_auc_score(yt, ours.predict_proba(Xt)[:, 1])
    ref = roc_auc_score(yt, LogisticRegression(max_iter=1000).fit(X, y).predict_proba(Xt)[:, 1])
    print(f"a9a test AUC: virga {auc:.4f}, scikit-learn {ref:.4f}")
    assert abs(auc - ref) <= 0.005, (auc, ref)
    assert ours.score(Xt, yt) > 0.84


def test_a9a_ingested_model_refuses_a_shifted_matrix(a9a, session):
    X, y, Xt, yt = a9a
    train, _ = session.load_libsvm(os.path.join(A9A, "a9a"), test_fraction=0.0)
    m = virga.LogisticRegression(session=session, workers=2, epochs=1, verbose=0)
    m.fit(train, test=session.load_libsvm(os.path.join(A9A, "a9a.t"), test_fraction=1.0)[1])
    assert m.n_features_in_ == 124  # the file's indices 1..123 as given
    with pytest.raises(ValueError, match="1-based"):
        m.predict_proba(Xt)  # 123 columns, shifted by scikit-learn's loader
    from sklearn.datasets import load_svmlight_file
    Xf, yf = load_svmlight_file(os.path.join(A9A, "a9a.t"), zero_based=True, n_features=124)
    assert m.score(Xf, yf) > 0.8
