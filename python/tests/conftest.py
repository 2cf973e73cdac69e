"""Fixtures: one session over a temporary store, and generated Criteo-format data."""
import os

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
