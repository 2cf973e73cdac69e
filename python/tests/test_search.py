"""Concurrent search on one shared server and backend; kill; divergence; successive halving."""
import json
import math
import time

import pytest

import virga
from virga._engine import _virga
from virga.search import SuccessiveHalving

from conftest import pid_alive


def _wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def test_concurrent_search_kill_one_then_all(session, criteo):
    train, test = criteo
    search = virga.GridSearch(virga.LogisticRegression(workers=1, epochs=200, eval_interval=0.5),
                              {"learning_rate": [0.05, 0.1, 0.2]}, session=session,
                              max_concurrent=3)
    search.fit(train, test=test, wait=False)
    _wait_for(lambda: all(r["state"] == "running" and math.isfinite(r["test_logloss"])
                          for r in search.results), 60, "three running experiments with a loss")
    jobs = [e.job for e in search.experiments]
    assert len({j.id for j in jobs}) == 3
    assert len({tuple(j.options["servers"]) for j in jobs}) == 1  # one shared server
    pids = jobs[1].worker_pids()
    _wait_for(lambda: jobs[1].worker_pids(), 20, "worker of experiment 1")
    pids = jobs[1].worker_pids()

    t0 = time.monotonic()
    search.kill(1)
    jobs[1].wait(timeout=10)
    assert jobs[1].done() and time.monotonic() - t0 < 5
    assert search.results[1]["state"] == "killed"
    assert not any(pid_alive(p) for p in pids), pids
    assert all(not j.done() for j in (jobs[0], jobs[2]))  # the others go on

    search.kill_all()
    search.wait(timeout=15)
    assert search.done()
    assert [r["state"] for r in search.results] == ["killed"] * 3
    for r in search.results:
        assert r["cost_usd"] is not None and r["seconds"] > 0
    assert session.worker_functions() == [] or all(
        f["state"] not in ("starting", "running") for f in session.worker_functions())


def test_divergence_is_stopped(session, criteo):
    train, test = criteo
    m = virga.LogisticRegression(optimizer="sgd", learning_rate=1e38, workers=1, epochs=100,
                                 eval_interval=0.3, session=session)
    job = m.fit(train, test=test, wait=True, progress=False).job_
    losses = [h["test_logloss"] for h in job.history]
    assert job.status == "diverged" or any(math.isnan(x) for x in losses), (job.status, losses)
    assert job.result["epochs"] < 100


def test_successive_halving_rule():
    sh = SuccessiveHalving(eta=3)
    assert sh.rungs(9) == [1, 3]
    assert sh.decide(1, 0.5)        # first at a rung continues
    assert not sh.decide(1, 0.6)    # worse than the best third of [0.5]
    assert sh.decide(1, 0.4)
    assert not sh.decide(1, float("nan"))
    assert sh.used({"samples": 300}, 100) == 3.0
    hist = [{"samples": 50, "test_logloss": 0.7}, {"samples": 150, "test_logloss": 0.5},
            {"samples": 400, "test_logloss": 0.4}]
    assert sh.loss_at(hist, 1, 100) == pytest.approx(0.6)   # between 0.5 and 1.5 epochs
    assert sh.loss_at(hist, 0.2, 100) == 0.7                # first evaluation already past
    assert sh.loss_at(hist, 5, 100) is None                 # not reached yet
    with pytest.raises(ValueError):
        SuccessiveHalving(resource="time")


def test_search_results_and_best(session, criteo):
    train, test = criteo
    search = virga.RandomSearch(virga.LogisticRegression(workers=1, epochs=1, eval_interval=0.5),
                                {"learning_rate": [0.05, 0.1, 0.3], "minibatch": [20, 100]},
                                n_iter=2, seed=3, session=session, max_concurrent=2,
                                policy="asha")
    assert len(search.candidates) == 2
    search.fit(train, test=test, wait=True, progress=False)
    rows = search.results
    assert len(rows) == 2 and all(r["state"] in ("done", "stopped") for r in rows), rows
    assert search.best_params_ in [r["params"] for r in rows]
    best = search.best_estimator_
    assert best.predict_proba(test).shape == (test.rows, 2)
    assert math.isfinite(search.best_loss_)
    assert "best" in search.summary()
    # The summary, and every experiment's result, are in the session's store.
    key = f"searches/{search.search_id}/result.json"
    assert search.result_uri == session.object_uri(key)
    summary = json.loads(_virga.store_get(session.store, key))
    assert summary["search_id"] == search.search_id and summary["policy"] == "asha"
    assert summary["backend"] == "local" and summary["best_index"] == search.best_index_
    assert [r["job_id"] for r in summary["experiments"]] == [r["job_id"] for r in rows]
    for r in rows:
        stored = json.loads(_virga.store_get(session.store, f"jobs/{r['job_id']}/result.json"))
        assert stored["job_id"] == r["job_id"]


def test_registry_jobs_and_kill_from_outside(session, criteo, tmp_root):
    import subprocess
    train, test = criteo
    m = virga.LogisticRegression(workers=1, epochs=500, eval_interval=0.3, session=session)
    job = m.fit(train, test=test, wait=False).job_
    _wait_for(lambda: job.history, 30, "a first evaluation")
    registry = str(tmp_root / "jobs")
    listed = {j["job_id"]: j for j in virga.jobs(registry)}
    assert job.id in listed and listed[job.id]["alive"]
    out = subprocess.run([virga.worker_binary(), "jobs", "--registry", registry],
                         capture_output=True, text=True, check=True).stdout
    assert job.id in out
    subprocess.run([virga.worker_binary(), "kill", job.id, "--registry", registry], check=True)
    job.wait(timeout=10)
    assert job.status == "killed"
    with pytest.raises(virga.NotFoundError, match="no-such-job"):
        virga.kill("no-such-job", registry)


def test_plots_draw(session, criteo):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    train, test = criteo
    search = virga.GridSearch(virga.LogisticRegression(workers=1, epochs=1, eval_interval=0.3),
                              {"minibatch": [20, 200]}, session=session, max_concurrent=2)
    search.fit(train, test=test, progress=False)
    fig = search.plot()
    assert len(fig.axes[0].lines) == 2
    fig = search.experiments[0].job.plot()
    assert fig.axes[0].get_ylabel() == "test logloss"
