"""Bad input raises Python exceptions carrying the engine's message."""
import pytest

import virga


def test_bad_line_names_file_and_line(session, tmp_path):
    good = "1\t" + "\t".join(["1"] * 13) + "\t" + "\t".join(["68fd1e64"] * 26)
    path = tmp_path / "bad.tsv"
    path.write_text(good + "\n" + good + "\n" + "x\tnot\ta\tcriteo\tline\n")
    with pytest.raises(virga.InvalidArgumentError) as e:
        session.load_criteo(path)
    msg = str(e.value)
    assert f"{path}:3" in msg, msg
    assert e.value.code == "Invalid argument"
    assert isinstance(e.value, ValueError) and isinstance(e.value, virga.Error)


def test_missing_file_and_dataset(session, tmp_path):
    with pytest.raises(virga.Error, match="absent.tsv"):
        session.load_libsvm(tmp_path / "absent.tsv")
    with pytest.raises(virga.NotFoundError, match="no-such-dataset"):
        session.dataset("no-such-dataset")


def test_bad_options(session, criteo):
    train, test = criteo
    with pytest.raises(virga.InvalidArgumentError, match="nope"):
        virga.LogisticRegression(optimizer="nope", session=session).fit(train, test=test)
    with pytest.raises(virga.InvalidArgumentError, match="learning_rate"):
        virga.LogisticRegression(learning_rate=-1.0, session=session).fit(train, test=test)
    with pytest.raises(virga.InvalidArgumentError, match="minmaxx"):
        session.normalize(train, method="minmaxx")


def test_corrupt_model_file(tmp_path):
    path = tmp_path / "junk.vmdl"
    path.write_bytes(b"not a model file at all")
    with pytest.raises(virga.Error, match="junk.vmdl"):
        virga.load(path)
