"""The estimators of the models beyond the linear ones: defaults from the engine's registry,
training through jobs, predictions and metrics of each model's task, model files."""
import numpy as np
import pytest

import virga
from virga._engine import _virga


def test_defaults_are_the_registrys():
    reg = {m["name"]: m for m in _virga.models()}
    assert [m["name"] for m in _virga.models()][:2] == ["lr", "svm"]
    assert reg["mf"]["metric"] == "rmse" and reg["softmax"]["task"] == "multiclass"
    for cls, name in [(virga.MatrixFactorization, "mf"), (virga.Softmax, "softmax"),
                      (virga.FactorizationMachine, "fm"), (virga.FieldAwareFM, "ffm")]:
        p = cls().get_params()
        for k in ("optimizer", "learning_rate", "l2"):
            assert p[k] == reg[name][k], (name, k)
    assert virga.MatrixFactorization(rank=16).get_params()["rank"] == 16
    m = virga.Softmax(classes=4, workers=2)
    assert virga.Softmax(**m.get_params()).get_params() == m.get_params()


@pytest.fixture(scope="module")
def ratings(session, tmp_root):
    """A planted rank-2 model over 100 users x 80 items, noise 0.2."""
    rng = np.random.default_rng(3)
    p, q = rng.normal(0, 0.7, (100, 2)), rng.normal(0, 0.7, (80, 2))
    users, items = rng.integers(0, 100, 12000), rng.integers(0, 80, 12000)
    y = 3.0 + np.sum(p[users] * q[items], axis=1) + rng.normal(0, 0.2, len(users))
    path = tmp_root / "ratings.tsv"
    path.write_text("".join(f"{u}\t{i}\t{r:.4f}\n" for u, i, r in zip(users, items, y)))
    return session.load_ratings(path, test_fraction=0.2, name="planted-ratings")


def test_matrix_factorization(ratings, tmp_root):
    train, test = ratings
    m = virga.MatrixFactorization(rank=4, l2=0.002, workers=2, epochs=10, eval_interval=0.3)
    job = m.fit(train, test=test).job_  # fit returns the estimator (scikit-learn)
    assert job.result["metric"] == "rmse" and "test_logloss" not in job.result
    got = m.evaluate(test)
    assert got["rmse"] == pytest.approx(job.result["test_rmse"], abs=0.01)
    assert got["rmse"] < 0.35  # predicting the mean: ~0.75
    assert m.score(test) == -got["rmse"]
    assert m.predict(test).shape == (got["rows"],)
    m.save(tmp_root / "mf.vmdl")
    back = virga.load(tmp_root / "mf.vmdl")
    assert isinstance(back, virga.MatrixFactorization)
    assert back.evaluate(test)["rmse"] == pytest.approx(got["rmse"])


def test_softmax(session, tmp_root):
    rng = np.random.default_rng(4)
    w = rng.normal(0, 2, (10, 3))
    x = rng.normal(0, 1, (3000, 10))
    y = np.argmax(x @ w + rng.gumbel(size=(3000, 3)), axis=1)
    path = tmp_root / "classes.libsvm"
    path.write_text("".join(f"{c} " + " ".join(f"{j}:{v:.4f}" for j, v in enumerate(r)) + "\n"
                            for c, r in zip(y, x)))
    train, test = session.load_libsvm(path, test_fraction=0.2, name="planted-classes")
    m = virga.Softmax(workers=2, epochs=10, eval_interval=0.3)
    job = m.fit(train, test=test).job_  # fit returns the estimator (scikit-learn)
    assert job.result["metric"] == "logloss"
    ev = m.evaluate(test)
    assert ev["accuracy"] > 0.75 and ev["logloss"] < 0.6
    assert ev["logloss"] == pytest.approx(job.result["test_logloss"], abs=0.01)
    p = m.predict_proba(x[:5])
    assert p.shape == (5, 3) and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    assert list(m.classes_) == [0, 1, 2]
    assert set(m.predict(x[:50])) <= {0, 1, 2}
    # LogisticRegression on class labels 0..2 is multinomial: the same engine model.
    lr = virga.LogisticRegression(workers=2, epochs=10, eval_interval=0.3).fit(train, test=test)
    assert lr.job_.result["model"] == "softmax" and list(lr.classes_) == [0, 1, 2]
    assert lr.coef_.shape == (3, 10) and lr.intercept_.shape == (3,)
    p = lr.predict_proba(test)
    assert p.shape == (ev["rows"], 3) and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    got = lr.evaluate(test)
    assert got["logloss"] == pytest.approx(lr.job_.result["test_logloss"], abs=0.01)
    assert got["accuracy"] > 0.75
    # predict_proba of in-memory rows (from coef_ / intercept_) is the engine's prediction.
    sp = pytest.importorskip("scipy.sparse")
    X = sp.csr_matrix(x[:50].astype(np.float32))
    engine = lr.model.score_csr(X.indptr.astype(np.int64), X.indices.astype(np.int64), X.data)
    np.testing.assert_allclose(lr.predict_proba(x[:50]), np.reshape(engine, (50, 3)), atol=1e-5)


def test_search_ranks_by_the_primary_metric(ratings, session):
    train, test = ratings
    search = virga.GridSearch(virga.MatrixFactorization, {"l2": [0.002, 0.5]}, session=session,
                              max_concurrent=2)
    search.fit(train, test=test, epochs=5, workers=1, eval_interval=0.3)
    rows = search.results
    assert all(r["metric"] == "rmse" for r in rows)
    assert search.best_params_ == {"l2": 0.002}  # l2 0.5 shrinks everything to the mean
    assert search.best_loss_ == min(r["test_metric"] for r in rows)
    assert "best rmse" in search.summary()
