"""Fixtures: one session over a temporary store, and generated Criteo-format data."""
import os
import subprocess
import time

import pytest

import virga


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory):
    return tmp_path_factory.mktemp("virga")


@pytest.fixture(scope="session")
def session(tmp_root):
    s = virga.connect(store=str(tmp_root / "store"), registry_dir=str(tmp_root / "jobs"))
    yield s
    s.close()


@pytest.fixture(scope="session")
def criteo(session, tmp_root):
    """(train, test) handles on 20,000 generated rows, 10% test."""
    path = tmp_root / "criteo.tsv"
    report = virga.datagen_criteo(path, rows=20000, seed=7)
    assert report["rows"] == 20000
    return session.load_criteo(path, test_fraction=0.1, hash_bits=18, name="criteo20k")


def pid_alive(pid):
    """True if the process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_s3rver(data_dir, *buckets):
    """s3rver (the build's launcher, $VIRGA_S3RVER) on a free loopback port: (process, port).
    Skips the test, loudly, when ctest did not say where it is."""
    script = os.environ.get("VIRGA_S3RVER", "")
    if not script or not os.path.exists(script):
        pytest.skip("*** SKIPPED: VIRGA_S3RVER (the build's s3rver launcher) is not set; ctest sets it ***")
    cmd = ["node", "--openssl-legacy-provider", script, "--dir", str(data_dir)]
    for b in buckets:
        cmd += ["--bucket", b]
    return start_port_process(cmd, str(data_dir) + ".out")


def start_port_process(cmd, out_path):
    """Starts `cmd`, which prints "PORT <n>" first once it listens: (process, port)."""
    out = open(out_path, "w+")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
    text = ""
    for _ in range(200):
        out.seek(0)
        text = out.read()
        if text.startswith("PORT "):
            return proc, int(text.split()[1])
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("did not start: %s (output %r)" % (cmd, text))


class env_vars:
    """Sets environment variables for a block and restores them after."""

    def __init__(self, values):
        self.values = values

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in self.values}
        os.environ.update(self.values)

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
