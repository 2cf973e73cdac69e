"""Compute backends chosen by name; what jobs leave in the session's store."""
import json
import os

import numpy as np
import pytest

import virga
from virga._engine import _virga


def test_unknown_backend_lists_the_known_ones(monkeypatch):
    with pytest.raises(virga.InvalidArgumentError,
                       match=r"unknown compute backend 'nosuch' \(known: local, lambda\)"):
        virga.connect(backend="nosuch")
    with pytest.raises(virga.InvalidArgumentError, match=r"no setting 'region'.*worker_binary"):
        virga.connect(region="eu-west-1")
    with pytest.raises(virga.InvalidArgumentError, match="'seed'"):
        virga.connect(backend="local", seed="soon")
    monkeypatch.setenv("VIRGA_BACKEND", "nosuch")
    with pytest.raises(virga.InvalidArgumentError, match=r"'nosuch' \(from \$VIRGA_BACKEND\)"):
        virga.connect()


def test_backends_are_listed_with_their_settings():
    backends = {b["name"]: b for b in virga.backends()}
    assert "local" in backends and backends["local"]["help"]
    settings = {s["name"]: s for s in backends["local"]["settings"]}
    assert settings["worker_binary"]["env"] == "VIRGA_BINARY"
    assert {"worker_prefix", "work_dir", "memory_cap", "seed"} <= set(settings)


def test_backend_settings_reach_the_backend(session, criteo, tmp_path):
    work = tmp_path / "functions"
    with virga.connect(store=session.store, backend="local", work_dir=work, memory_cap=False,
                       seed=5, registry_dir="-") as s:
        assert s.backend_name == "local" and "backend='local'" in repr(s)
        m = virga.LogisticRegression(workers=1, epochs=1, session=s)
        job = m.fit(s.dataset(criteo[0].name)).job_
        assert job.status == "done", job.result
        assert job.options["backend"] == "local" and job.result["backend"] == "local"
        assert work.is_dir()  # the functions' files went there


def test_job_result_and_model_are_in_the_store(session, criteo):
    train, test = criteo
    m = virga.LogisticRegression(workers=1, epochs=1, session=session)
    job = m.fit(train, test=test).job_
    assert job.status == "done", job.result
    key = f"jobs/{job.id}/result.json"
    assert job.result_uri == session.object_uri(key)
    assert json.loads(_virga.store_get(session.store, key)) == job.result
    # The estimator's model is the job's model file in the store (a file:// store here).
    assert job.model_path == session.object_uri(f"jobs/{job.id}/model.vmdl")
    assert os.path.isfile(os.path.join(session.store, "jobs", job.id, "model.vmdl"))

    proba = m.predict_proba(test)
    for uri in ("mem://py-models/models/m.vmdl", session.object_uri("models/m.vmdl")):
        m.save(uri)
        m2 = virga.load(uri)
        assert isinstance(m2, virga.LogisticRegression)
        np.testing.assert_array_equal(m2.predict_proba(test), proba)
    with pytest.raises(virga.NotFoundError, match="models/absent.vmdl"):
        virga.load("mem://py-models/models/absent.vmdl")


def test_stages_run_on_the_sessions_backend(session, tmp_path):
    """A session given a backend ingests and normalizes on its functions (docs/stages.md):
    the same rows as in process, the large file cut into several tasks."""
    path = tmp_path / "big.tsv"
    virga.datagen_criteo(path, rows=30000, seed=3)
    inproc, _ = session.load_criteo(path, test_fraction=0.1, hash_bits=16, name="stage-inproc")
    with virga.connect(store=session.store, backend="local", memory_cap=False,
                       registry_dir="-") as s:
        assert s.stages_on_functions
        train, test = s.load_criteo(path, test_fraction=0.1, hash_bits=16, name="stage-fn",
                                    part_mb=1)
        a, b = inproc.manifest, train.manifest
        assert a["train_rows"] + a["test_rows"] == b["train_rows"] + b["test_rows"] == 30000
        assert a["num_features"] == b["num_features"]
        assert a["label"] == b["label"]
        # Written by several function tasks (parts of the one 4 MB file), in process never.
        assert any(p["key"].endswith("/part-00001-00000") for p in b["train"]), b["train"][:3]
        assert all(p["key"].rsplit("/", 1)[1].count("-") == 1 for p in a["train"])
        norm = s.normalize(train, method="standard", name="stage-fn-std")
        assert norm.manifest["train_rows"] == b["train_rows"]
        # functions=False: in this process.
        c, _ = s.load_criteo(path, hash_bits=16, name="stage-inproc2", functions=False)
        assert not any("part-00001-" in p["key"] for p in c.manifest["train"])
