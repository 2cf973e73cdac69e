"""The Python API against S3: s3rver (a real S3 implementation that checks SigV4
signatures) on 127.0.0.1, reached through the AWS conventions, raw data uploaded
with AWS's own client (awscli)."""
import os
import shutil
import subprocess

import pytest

import virga
from conftest import env_vars, start_s3rver


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    if shutil.which("aws") is None:
        pytest.skip("*** SKIPPED: awscli is not installed (scripts/install-deps.sh installs it) ***")
    proc, port = start_s3rver(tmp_path_factory.mktemp("s3rver") / "data", "pybucket")
    with env_vars({"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:%d" % port, "AWS_ACCESS_KEY_ID": "S3RVER",
                   "AWS_SECRET_ACCESS_KEY": "S3RVER", "AWS_REGION": "us-east-1"}):
        yield "http://127.0.0.1:%d" % port
    proc.terminate()
    proc.wait(10)


def test_ingest_from_s3_train_and_keep_the_model_in_s3(s3, tmp_path):
    raw = tmp_path / "clicks.tsv"
    virga.datagen_criteo(raw, rows=20000, seed=11)
    subprocess.run(["aws", "--endpoint-url", s3, "s3", "cp", "--only-show-errors", str(raw),
                    "s3://pybucket/raw/clicks.tsv"], check=True)
    s = virga.connect(store="s3://pybucket/store", registry_dir=str(tmp_path / "jobs"))
    try:
        train, test = s.load_criteo("s3://pybucket/raw/*.tsv", test_fraction=0.1, hash_bits=16,
                                    name="pyclicks")
        assert train.rows + test.rows == 20000
        m = virga.LogisticRegression(workers=2, epochs=2, eval_interval=0.5, session=s)
        job = m.fit(train, test=test).job_
        assert job.status == "done", job.result
        assert job.result_uri.startswith("s3://pybucket/store")
        assert m.evaluate(test)["logloss"] < 0.69
    finally:
        s.close()
    listing = subprocess.run(["aws", "--endpoint-url", s3, "s3", "ls", "--recursive",
                              "s3://pybucket/store/"], check=True, capture_output=True, text=True).stdout
    assert "datasets/pyclicks/manifest.json" in listing
    assert "/result.json" in listing and "model.vmdl" in listing


def test_wrong_credentials_are_a_clear_error(s3, tmp_path):
    os.environ["AWS_SECRET_ACCESS_KEY"] = "Zq9wrong"
    try:
        s = virga.connect(store="s3://pybucket/store", registry_dir=str(tmp_path / "jobs"))
        with pytest.raises(Exception) as e:
            s.dataset("pyclicks")
        assert "403" in str(e.value) and "Zq9wrong" not in str(e.value)
        s.close()
    finally:
        os.environ["AWS_SECRET_ACCESS_KEY"] = "S3RVER"
