"""The estimators as scikit-learn estimators: check_estimator, Pipeline, cross_val_score,
GridSearchCV, pickle/joblib, every input kind, labels, widths, progress, Ctrl-C."""
import pickle
import re
import threading
import _thread
import time
import warnings

import numpy as np
import pytest

import virga

sklearn = pytest.importorskip("sklearn", reason="*** SKIPPED: scikit-learn (python3-sklearn) "
                              "is not installed ***")
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from conftest import pid_alive  # noqa: E402

# One worker, synchronous: refits are bit for bit identical (check_fit_idempotent, and the
# input-kind comparisons below).
EXACT = dict(workers=1, staleness=0)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=400, n_features=8, n_informative=5, random_state=0,
                               class_sep=1.5)  # scikit-learn's LogisticRegression: 0.94 accuracy
    return X, y


def _datasets(session):
    return {k.split("/")[1] for k in virga._virga.store_list(session.store, "datasets/")}


@pytest.mark.parametrize("cls", [virga.LogisticRegression, virga.LinearSVM])
def test_check_estimator_passes_every_check(cls, session, monkeypatch):
    from sklearn.utils.estimator_checks import check_estimator
    passed, failed = [], []
    models = []  # the engine model of every fit
    job_init = virga.job.Job.__init__

    def recording_init(self, session, opts, *args, **kw):
        models.append(opts["model"])
        job_init(self, session, opts, *args, **kw)
    monkeypatch.setattr(virga.job.Job, "__init__", recording_init)
    for est, check in check_estimator(cls(session=session, **EXACT), generate_only=True):
        name = getattr(check, "func", check).__name__
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                check(est)
            passed.append(name)
        except Exception as e:
            failed.append(f"{name}: {type(e).__name__}: {str(e)[:300]}")
    print(f"check_estimator {cls.__name__}: {len(passed)} passed, {len(failed)} failed")
    assert not failed, "\n".join(failed)
    assert len(passed) >= 40  # recognised as a classifier: the classifier checks ran too
    # LogisticRegression is checked as a multiclass classifier (its multinomial fits ran);
    # LinearSVM as a binary one.
    multinomial = models.count("softmax")
    print(f"check_estimator {cls.__name__}: {len(models)} fits, {multinomial} multinomial")
    assert (multinomial >= 5) if cls is virga.LogisticRegression else (multinomial == 0)


def test_fit_returns_self_and_fitted_attributes(session, data):
    X, y = data
    m = virga.LogisticRegression(session=session, **EXACT)
    assert m.fit(X, y) is m
    assert m.job_.status == "done"
    assert m.coef_.shape == (1, 8) and m.intercept_.shape == (1,)
    assert m.n_features_in_ == 8 and list(m.classes_) == [0, 1]
    # decision_function is exactly X . coef_ + intercept_, and predict/predict_proba follow it.
    np.testing.assert_allclose(m.decision_function(X), X @ m.coef_[0] + m.intercept_[0])
    p = m.predict_proba(X)
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-m.decision_function(X))))
    np.testing.assert_array_equal(m.predict(X), (m.decision_function(X) > 0).astype(int))
    assert m.score(X, y) > 0.8
    # The engine agrees: its evaluator on the model file gives the same probabilities.
    ev = m.evaluate(X, y)
    assert ev["rows"] == 400 and ev["accuracy"] == pytest.approx(m.score(X, y), abs=0.005)


def test_local_steps_reach_the_engine_and_train_what_minibatch_pushes_would(session, data):
    # One worker with local steps trains what pushing every minibatch would (docs/training.md).
    X, y = data
    a = virga.LogisticRegression(session=session, workers=1, verbose=0).fit(X, y, local_steps=16)
    b = virga.LogisticRegression(session=session, **EXACT, verbose=0).fit(X, y)
    assert a.job_.result["local_steps"] == 16 and b.job_.result["local_steps"] == 1
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-3, atol=1e-5)


def test_staged_datasets_are_removed(session, data):
    X, y = data
    before = _datasets(session)
    m = virga.LinearSVM(session=session, **EXACT).fit(X, y, test=(X[:50], y[:50]))
    assert _datasets(session) == before  # the staged train and eval datasets are gone
    assert m.job_.history  # evaluated live on the given test rows


def test_large_inputs_evaluate_on_a_sample(session, data, monkeypatch):
    import virga.estimators as est
    X, y = data
    monkeypatch.setattr(est, "_EVAL_ROWS", 100)
    before = _datasets(session)
    m = virga.LogisticRegression(session=session, **EXACT).fit(X, y)
    assert m.job_.options["test_dataset"].startswith("eval-")
    assert m.job_.options["dataset"].startswith("fit-")
    assert _datasets(session) == before


def test_every_input_kind_gives_the_same_model(session, data):
    sp = pytest.importorskip("scipy.sparse")
    X, y = data
    ref = virga.LogisticRegression(session=session, **EXACT).fit(X, y)
    for Xi in (sp.csr_matrix(X), sp.csc_matrix(X), X.astype(np.float32)):
        m = virga.LogisticRegression(session=session, **EXACT).fit(Xi, y)
        np.testing.assert_array_equal(m.coef_, ref.coef_)
        np.testing.assert_allclose(m.predict_proba(Xi), ref.predict_proba(X), rtol=1e-6)
    pd = pytest.importorskip("pandas", reason="*** SKIPPED: pandas (python3-pandas) absent ***")
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)])
    m = virga.LogisticRegression(session=session, **EXACT).fit(df, pd.Series(y))
    np.testing.assert_array_equal(m.coef_, ref.coef_)
    assert list(m.feature_names_in_) == list(df.columns)
    with pytest.warns(UserWarning, match="feature names"):
        m.predict(X)  # fitted with names, given none: scikit-learn's warning


def test_any_two_labels_map_to_classes(session, data):
    X, y = data
    for labels in (np.array(["no", "yes"]), np.array([-1, 1]), np.array([3.0, 7.0])):
        yy = labels[y]
        m = virga.LinearSVM(session=session, **EXACT).fit(X, yy)
        np.testing.assert_array_equal(m.classes_, labels)
        pred = m.predict(X)
        assert set(pred) <= set(labels) and (pred == yy).mean() > 0.8
    with pytest.raises(ValueError, match="exactly 2 classes, got 3"):
        virga.LinearSVM(session=session).fit(X, np.arange(len(y)) % 3)
    with pytest.raises(ValueError, match="Unknown label type"):
        virga.LinearSVM(session=session).fit(X, np.linspace(0, 1, len(y)))


def test_more_than_two_classes_is_multinomial_as_scikit_learn(session, tmp_path):
    """multi_class="auto": three classes train the engine's softmax; predict, predict_proba,
    decision_function, classes_, coef_ and intercept_ have scikit-learn's shapes, and the
    accuracy is scikit-learn's."""
    from sklearn.linear_model import LogisticRegression as SkLR
    X, y = make_classification(n_samples=900, n_features=10, n_informative=6, n_classes=3,
                               n_clusters_per_class=1, class_sep=1.2, random_state=1)
    labels = np.array(["bird", "cat", "dog"])[y]
    Xtr, Xte, ytr, yte = X[:700], X[700:], labels[:700], labels[700:]
    sk = SkLR(max_iter=1000).fit(Xtr, ytr)
    m = virga.LogisticRegression(session=session, **EXACT).fit(Xtr, ytr)
    assert m.job_.result["model"] == "softmax" and m.job_.result["metric"] == "logloss"
    np.testing.assert_array_equal(m.classes_, sk.classes_)
    assert m.coef_.shape == sk.coef_.shape == (3, 10)
    assert m.intercept_.shape == sk.intercept_.shape == (3,)
    p, d, pred = m.predict_proba(Xte), m.decision_function(Xte), m.predict(Xte)
    assert p.shape == sk.predict_proba(Xte).shape == (200, 3)
    assert d.shape == sk.decision_function(Xte).shape == (200, 3)
    assert pred.shape == (200,) and set(pred) <= set(sk.classes_)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(pred, m.classes_[np.argmax(p, axis=1)])
    acc, sk_acc = m.score(Xte, yte), sk.score(Xte, yte)
    print(f"3 classes: virga accuracy {acc:.4f}, scikit-learn {sk_acc:.4f}")
    assert acc >= sk_acc - 0.03
    ev = m.evaluate(Xte, yte)
    assert ev["accuracy"] == pytest.approx(acc) and ev["rows"] == 200
    from sklearn.metrics import log_loss
    assert ev["logloss"] == pytest.approx(log_loss(yte, p, labels=m.classes_), rel=1e-6)
    # The engine's own predictions (the model file) agree with the coefficients.
    m.save(tmp_path / "m.vmdl")
    back = virga.load(tmp_path / "m.vmdl")
    assert back.coef_.shape == (3, 10)
    np.testing.assert_allclose(back.coef_, m.coef_)
    # Two classes stay binary (one coefficient row), and the SVM stays binary-only.
    b = virga.LogisticRegression(session=session, **EXACT).fit(Xtr[ytr != "dog"],
                                                               ytr[ytr != "dog"])
    assert b.job_.result["model"] == "lr" and b.coef_.shape == (1, 10)
    assert b.predict_proba(Xte).shape == (200, 2) and b.decision_function(Xte).shape == (200,)
    with pytest.raises(ValueError, match="at least 2 classes, got 1 class"):
        virga.LogisticRegression(session=session).fit(Xtr, np.full(len(ytr), "cat"))


def test_width_mismatch_is_an_error(session, data):
    sp = pytest.importorskip("scipy.sparse")
    X, y = data
    m = virga.LogisticRegression(session=session, **EXACT).fit(X, y)
    for bad in (X[:, :7], np.hstack([X, X[:, :1]]), sp.csr_matrix(X[:, :5])):
        with pytest.raises(ValueError, match=f"X has {bad.shape[1]} features, but "
                           "LogisticRegression is expecting 8"):
            m.predict_proba(bad)
    with pytest.raises(ValueError, match="NaN"):
        m.predict(np.full((1, 8), np.nan))


def test_pipeline_cross_val_score_grid_search(session, data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), virga.LogisticRegression(session=session, **EXACT))
    assert pipe.fit(X, y).score(X, y) > 0.8
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.75, scores
    # In joblib's worker processes: the estimator and its session travel by pickle (the
    # session reopens on the same store there); synchronous fits give the same scores.
    np.testing.assert_array_equal(cross_val_score(pipe, X, y, cv=3, n_jobs=2), scores)
    grid = GridSearchCV(virga.LogisticRegression(session=session, **EXACT),
                        {"learning_rate": [0.001, 0.5], "epochs": [1, 5]}, cv=3,
                        scoring="roc_auc")
    grid.fit(X, y)
    assert len(grid.cv_results_["mean_test_score"]) == 4
    # A learning rate of 0.001 for one epoch barely moves the weights: the search must notice.
    assert grid.best_params_ != {"learning_rate": 0.001, "epochs": 1}
    assert grid.best_estimator_.coef_.shape == (1, 8)


def test_pickle_and_joblib_keep_the_weights(session, data, tmp_path):
    import joblib
    X, y = data
    m = virga.LinearSVM(session=session, **EXACT).fit(X, y)
    m2 = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(m2.coef_, m.coef_)
    np.testing.assert_array_equal(m2.predict_proba(X), m.predict_proba(X))
    assert m2.session is session  # the same session, in the same process
    assert not hasattr(m2, "job_")
    joblib.dump(m, tmp_path / "m.joblib")
    m3 = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(m3.decision_function(X), m.decision_function(X))
    m3.save(tmp_path / "m.vmdl")  # the engine's model file is kept too
    np.testing.assert_allclose(virga.load(tmp_path / "m.vmdl").coef_, m.coef_)
    c = clone(m)
    assert not hasattr(c, "coef_") and c.get_params() == m.get_params()


def test_dataset_and_store_path_inputs(session, criteo):
    train, test = criteo
    m = virga.LogisticRegression(session=session, workers=2, epochs=1, verbose=0)
    assert m.fit(train, test=test) is m
    assert m.n_features_in_ == 2 ** 18 and m.coef_.shape == (1, 2 ** 18)
    by_name = virga.LogisticRegression(session=session, epochs=1, **EXACT).fit(train.name)
    assert by_name.job_.options["dataset"] == train.name
    uri = session.object_uri(f"datasets/{train.name}")
    by_uri = virga.LogisticRegression(session=session, epochs=1, **EXACT).fit(uri)
    assert by_uri.job_.session is session  # the same store, in another spelling: this session
    np.testing.assert_array_equal(by_uri.coef_, by_name.coef_)
    assert by_uri.score(test) > 0.5
    with pytest.raises(ValueError, match="y must be None"):
        m.fit(train, np.zeros(3))


def test_other_hash_bits_are_refused(session, criteo, tmp_path):
    train, test = criteo  # hash_bits=18
    path = tmp_path / "c16.tsv"
    virga.datagen_criteo(path, rows=2000, seed=9)
    _, test16 = session.load_criteo(path, test_fraction=0.5, hash_bits=16)
    m = virga.LogisticRegression(session=session, epochs=1, **EXACT)
    with pytest.raises(virga.InvalidArgumentError, match="hash_bits=16"):
        m.fit(train, test=test16)  # evaluating on other hashing would train "fine", silently
    m.fit(train, test=test)
    with pytest.raises(ValueError, match="hash_bits=16"):
        m.predict_proba(test16)


def test_without_scikit_learn_the_same_contract():
    """The stand-in base classes (no python3-sklearn): fit/predict/score, params, widths."""
    import subprocess
    import sys
    code = """
import sys
sys.modules["sklearn"] = None  # as if not installed
import numpy as np, virga
rng = np.random.default_rng(0)
X = rng.normal(size=(300, 3)); y = np.where(X[:, 0] > 0, "b", "a")
m = virga.LogisticRegression(workers=1, staleness=0, verbose=0)
assert m.fit(X, y) is m and list(m.classes_) == ["a", "b"]
assert m.score(X, y) > 0.9 and m.coef_.shape == (1, 3)
assert type(m)(**m.get_params()).get_params() == m.get_params()
try:
    m.predict(X[:, :2])
except ValueError as e:
    assert "X has 2 features" in str(e)
else:
    raise AssertionError("width not checked")
try:
    virga.LinearSVM().predict(X)
except virga.NotFittedError:
    pass
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_one_based_libsvm_trap_is_impossible(session, tmp_path):
    from sklearn.datasets import load_svmlight_file
    rng = np.random.default_rng(5)
    lines = []
    for _ in range(600):
        feats = sorted(rng.choice(np.arange(1, 21), size=5, replace=False))  # 1-based, 1..20
        label = 1 if (1 in feats) or (2 in feats) else -1
        lines.append(f"{label} " + " ".join(f"{j}:1" for j in feats))
    path = tmp_path / "one_based.svm"
    path.write_text("\n".join(lines) + "\n")
    train, _ = session.load_libsvm(path, test_fraction=0.1)
    m = virga.LogisticRegression(session=session, epochs=10, **EXACT).fit(train)
    assert m.n_features_in_ == 21 and list(m.classes_) == [-1, 1]
    X0, y0 = load_svmlight_file(str(path))  # scikit-learn shifts 1-based files to 0-based
    assert X0.shape[1] == 20
    with pytest.raises(ValueError, match="1-based.*zero_based=True, n_features=21"):
        m.predict_proba(X0)  # width 20 vs 21
    X0w, _ = load_svmlight_file(str(path), n_features=21)  # right width, still shifted
    with pytest.raises(ValueError, match="column 0"):
        m.predict_proba(X0w)
    X1, y1 = load_svmlight_file(str(path), zero_based=True, n_features=21)  # as in the file
    assert m.score(X1, y1) > 0.9  # the right columns: the model works


def test_fit_wait_false_then_attributes(session, data):
    X, y = data
    m = virga.LogisticRegression(session=session, **EXACT).fit(X, y, wait=False)
    assert isinstance(m.job_, virga.Job)
    m.job_.wait()
    assert m.coef_.shape == (1, 8)  # loaded on first use
    assert m.score(X, y) > 0.8


def test_progress_text_and_notebook(session, data, capsys):
    from virga import progress
    X, y = data
    virga.LogisticRegression(session=session, verbose=2, **EXACT).fit(X, y)
    err = capsys.readouterr().err
    assert re.search(r"epoch (\d+)/\1 ", err) and "samples/s" in err and "loss 0." in err, err
    virga.LogisticRegression(session=session, verbose=0, **EXACT).fit(X, y)
    assert capsys.readouterr().err == ""
    virga.LogisticRegression(session=session, verbose=0, **EXACT).fit(X, y, progress="plot")
    assert re.search(r"epoch (\d+)/\1 ", capsys.readouterr().err)  # outside Jupyter: the text progress

    shown = []

    class Handle:
        def update(self, obj):
            shown.append(obj)

    display = progress.NotebookProgress(display=lambda obj, display_id: Handle())
    m = virga.LogisticRegression(session=session, **EXACT).fit(X, y)
    display.update(m.job_, final=True)
    assert "<table" in shown[-1] and "epoch" in shown[-1] and re.search(r">(\d+)/\1<", shown[-1])
    html = m.job_._repr_html_()
    assert "virga job" in html and "history" in html and m.job_.id in html


def test_in_a_notebook_fit_shows_html_progress_and_a_live_plot(session, data, monkeypatch):
    """Jupyter as IPython presents it (get_ipython() a ZMQInteractiveShell; display handles),
    faked: verbose=1 updates an HTML table in place, progress="plot" redraws a figure."""
    import sys
    import types
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    # pyplot hooks into the (fake) shell on first figure; undone after this test.
    monkeypatch.setattr(plt, "_REPL_DISPLAYHOOK", plt._REPL_DISPLAYHOOK)
    shown, figures = [], []

    class ZMQInteractiveShell:
        events = types.SimpleNamespace(register=lambda *a: None)  # pyplot hooks in here

    class Handle:
        def update(self, obj):
            shown.append(obj)

    def display(obj, display_id=None):
        if display_id:
            return Handle()
        figures.append(obj)

    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: ZMQInteractiveShell()
    ipd = types.ModuleType("IPython.display")
    ipd.display, ipd.HTML, ipd.clear_output = display, str, lambda wait=False: None
    ipython.display = ipd
    ipython.__path__ = []  # a package, for pyplot's import of IPython.core.pylabtools
    pylabtools = types.ModuleType("IPython.core.pylabtools")
    pylabtools.backend2gui = {}
    for name, mod in [("IPython", ipython), ("IPython.display", ipd),
                      ("IPython.core", types.ModuleType("IPython.core")),
                      ("IPython.core.pylabtools", pylabtools)]:
        monkeypatch.setitem(sys.modules, name, mod)
    X, y = data
    virga.LogisticRegression(session=session, **EXACT).fit(X, y)  # verbose=1: in a notebook
    assert shown and "<table" in shown[-1] and re.search(r">(\d+)/\1<", shown[-1])
    assert "done" in shown[-1]
    virga.LogisticRegression(session=session, verbose=0, **EXACT).fit(X, y, progress="plot")
    assert figures and all(isinstance(f, matplotlib.figure.Figure) for f in figures)


def test_keyboard_interrupt_kills_the_job(session, criteo):
    train, test = criteo
    m = virga.LogisticRegression(session=session, workers=2, epochs=200, eval_interval=0.3,
                                 verbose=0)
    seen = {}

    def interrupt():
        # Wait until workers run, note them, then do what Ctrl-C / Jupyter's interrupt does.
        for _ in range(200):
            job = m.__dict__.get("job_")
            if job is not None and job.worker_pids():
                seen["pids"] = job.worker_pids()
                break
            time.sleep(0.05)
        _thread.interrupt_main()

    t = threading.Thread(target=interrupt)
    t.start()
    with pytest.raises(KeyboardInterrupt):
        m.fit(train, test=test)
    t.join()
    job = m.job_
    assert job.done() and job.status == "killed", job.status
    assert seen.get("pids"), "workers never started"
    deadline = time.monotonic() + 5
    while any(pid_alive(p) for p in seen["pids"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(pid_alive(p) for p in seen["pids"])


def test_search_repr_html(session, criteo):
    train, test = criteo
    s = virga.GridSearch(virga.LogisticRegression(workers=1, epochs=1, verbose=0),
                         {"learning_rate": [0.05, 0.2]}, session=session)
    s.fit(train, test=test, progress=False)
    html = s._repr_html_()
    assert "virga search" in html and html.count("<tr>") == 3 and "learning_rate=0.2" in html


def test_numpydoc_every_parameter():
    import inspect
    for cls in (virga.LogisticRegression,):
        doc = cls.__doc__
        for p in inspect.signature(cls.__init__).parameters:
            if p != "self":
                assert p in doc, f"{cls.__name__} docstring lacks parameter {p}"
    for meth in ("fit", "predict", "predict_proba", "decision_function", "score", "evaluate"):
        doc = getattr(virga.LogisticRegression, meth).__doc__
        assert "Parameters\n        ----------" in doc and "Returns" in doc, meth
        for p in inspect.signature(getattr(virga.LogisticRegression, meth)).parameters:
            if p not in ("self", "job_options"):
                assert p in doc, f"{meth} docstring lacks {p}"
