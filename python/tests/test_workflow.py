"""The whole workflow on generated data, through the real engine and worker processes."""
import math

import numpy as np
import pytest

import virga


def test_load_normalize_fit_predict_save_load(session, criteo, tmp_path):
    train, test = criteo
    assert train.rows + test.rows == 20000 and test.rows > 0
    ntrain, ntest = session.normalize((train, test), method="minmax")
    assert ntrain.name != train.name and ntest.split == "test"
    assert ntrain.manifest["derived_from"].startswith("normalize(minmax)")

    m = virga.LogisticRegression(workers=2, epochs=2, eval_interval=0.5, session=session)
    job = m.fit(ntrain, test=ntest).job_
    assert job.status == "done", job.result
    assert job.result["epochs"] == 2
    hist = job.history
    assert hist and all({"seconds", "test_logloss", "test_auc"} <= set(h) for h in hist)
    assert job.worker_pids() == []

    proba = m.predict_proba(ntest)
    assert proba.shape == (ntest.rows, 2)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    metrics = m.evaluate(ntest)
    # The engine's final evaluation and the model file's scores agree.
    assert metrics["logloss"] == pytest.approx(job.result["test_logloss"], abs=1e-4)
    assert metrics["logloss"] < 0.69  # better than a coin
    acc = m.score(ntest)
    assert acc == pytest.approx(metrics["accuracy"]) and 0.5 < acc <= 1.0
    assert set(np.unique(m.predict(ntest))) <= {0, 1}

    path = tmp_path / "model.vmdl"
    m.save(path)
    m2 = virga.load(path)
    assert isinstance(m2, virga.LogisticRegression)
    assert m2.get_params()["optimizer"] == m.optimizer
    np.testing.assert_array_equal(m2.predict_proba(ntest), proba)


def test_numpy_and_scipy_inputs_agree(session, criteo):
    sp = pytest.importorskip("scipy.sparse")
    train, test = criteo
    m = virga.LinearSVM(workers=1, epochs=1, eval_interval=0.5, session=session)
    m.fit(train, test=test)
    rng = np.random.default_rng(0)
    width = m.n_features_in_  # the dataset's feature space: 2^18 hashed features
    assert width == 2 ** 18
    dense = np.zeros((5, width), dtype=np.float32)
    for r in range(5):
        dense[r, rng.choice(width, size=10, replace=False)] = 1.0
    p_dense = m.predict_proba(dense)
    p_sparse = m.predict_proba(sp.csr_matrix(dense))
    np.testing.assert_allclose(p_dense, p_sparse, rtol=1e-12)
    empty = m.predict_proba(np.zeros((1, width)))  # bias only
    assert empty.shape == (1, 2) and math.isfinite(empty[0, 1])
    assert m.evaluate(dense, y=np.ones(5))["rows"] == 5
    with pytest.raises(ValueError, match="X has 300 features, but LinearSVM is expecting"):
        m.predict_proba(np.zeros((1, 300)))  # a matrix of the wrong width is refused
