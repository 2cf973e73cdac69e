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


def test_label_that_does_not_fit_the_task_names_file_and_line(session, tmp_path):
    # The same rule as `virga ingest --task binary` (include/virga/parser.h, LabelCheck).
    path = tmp_path / "labels.txt"
    path.write_text("1 1:1\n0 2:1\n7 3:1\n")
    with pytest.raises(virga.InvalidArgumentError) as e:
        session.load_libsvm(path, task="binary", name="labels-binary")
    assert f"{path}:3: label 7 is not binary" in str(e.value), str(e.value)
    with pytest.raises(virga.InvalidArgumentError, match=r"labels.txt:3: label 7 is not a class of 0..2"):
        session.load_libsvm(path, classes=3, name="labels-classes")
    train, _ = session.load_libsvm(path, task="regression", name="labels-regression")
    assert train.manifest["train_rows"] + 0 >= 0


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
    with pytest.raises(virga.InvalidArgumentError, match="ftrl_beta"):
        virga.LogisticRegression(ftrl_beta=0.0, session=session).fit(train, test=test)
    with pytest.raises(virga.InvalidArgumentError, match="minmaxx"):
        session.normalize(train, method="minmaxx")


def test_corrupt_model_file(tmp_path):
    path = tmp_path / "junk.vmdl"
    path.write_bytes(b"not a model file at all")
    with pytest.raises(virga.Error, match="junk.vmdl"):
        virga.load(path)
