"""Resume from Python (Session.resume / Job.resume), mirroring `virga train --resume`: a
checkpointed job whose driver was SIGKILLed finishes from its last checkpoint."""
import glob
import os
import signal
import subprocess
import time

import pytest

import virga


def _checkpointed(store, job_id):
    return bool(glob.glob(os.path.join(store, "checkpoints", job_id, "ckpt-*", "MANIFEST.json")))


def test_resume_finishes_a_job_whose_driver_was_killed(session, criteo, tmp_root):
    train, _ = criteo
    store = session.store
    # The driver: a Python process running a checkpointed job, SIGKILLed after a checkpoint.
    script = (
        "import sys, virga\n"
        "s = virga.connect(store=sys.argv[1], registry_dir=sys.argv[2])\n"
        "j = virga.Job(s, {'dataset': sys.argv[3], 'model': 'lr', 'workers': 2, 'epochs': 300,\n"
        "                  'seed': 11, 'job_id': 'pyresume', 'checkpoint_interval': 0.2,\n"
        "                  'eval_interval': 0.2})\n"
        "j.wait()\n")
    env = dict(os.environ, VIRGA_HOME=str(tmp_root / "home"))
    driver = subprocess.Popen(["/usr/bin/python3", "-c", script, store, str(tmp_root / "jobs"),
                               train.name], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and driver.poll() is None:
        if _checkpointed(store, "pyresume"):
            break
        time.sleep(0.05)
    time.sleep(0.2)  # a little work after the checkpoint, redone by the resumed job
    assert driver.poll() is None, "the job ended before it could be killed"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert _checkpointed(store, "pyresume")

    job = session.resume("pyresume")
    assert job.id == "pyresume"
    assert job.options["dataset"] == train.name  # from the first run's options
    assert job.options["epochs"] == 300
    result = job.wait(timeout=120)
    assert result is not None, "the resumed job did not finish"
    assert result["state"] == "done"
    assert result["epochs"] == 300
    assert all(n == result["items_per_epoch"] for n in result["items_processed_per_epoch"])
    assert 0 < result["test_logloss"] < 0.69


def test_resume_of_a_job_without_checkpoints_says_why(session):
    with pytest.raises(virga.Error, match="can be resumed"):
        virga.Job.resume("never-ran", session=session)


def test_checkpoints_need_the_jobs_own_server(criteo):
    train, _ = criteo
    s = virga.Session(store=train.session.store, servers=["127.0.0.1:1"], token="t")
    try:
        with pytest.raises(virga.InvalidArgumentError, match="own server"):
            s.resume("pyresume")
    finally:
        s.close()
