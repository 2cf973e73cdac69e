"""scikit-learn conventions of the estimators."""
import inspect

import pytest

import virga
from virga._engine import TRAIN_DEFAULTS


def _clone(est):
    try:
        from sklearn.base import clone
    except ImportError:  # the same contract, locally
        def clone(e):
            return type(e)(**e.get_params(deep=False))
    return clone(est)


@pytest.mark.parametrize("cls", [virga.LogisticRegression, virga.LinearSVM])
def test_defaults_are_the_engines(cls):
    params = cls().get_params()
    for k, v in params.items():
        if k not in ("session", "verbose"):
            assert v == TRAIN_DEFAULTS[k], k
    sig = inspect.signature(cls.__init__)
    assert set(params) == {p for p in sig.parameters if p != "self"}


def test_get_set_params_round_trip(session):
    m = virga.LogisticRegression(learning_rate=0.5, minibatch=200, session=session)
    p = m.get_params()
    assert p["learning_rate"] == 0.5 and p["minibatch"] == 200 and p["session"] is session
    assert m.set_params(workers=3, optimizer="adagrad") is m
    assert m.get_params()["workers"] == 3
    m2 = virga.LogisticRegression(**m.get_params())
    assert m2.get_params() == m.get_params()
    with pytest.raises(ValueError, match="(?i)invalid parameter 'nope'"):
        m.set_params(nope=1)
    assert "learning_rate=0.5" in repr(m)


def test_clone(session):
    m = virga.LinearSVM(l2=0.01, epochs=3, session=session)
    c = _clone(m)
    assert type(c) is virga.LinearSVM and c is not m
    assert c.get_params() == m.get_params()
    assert c.session is session  # a session is a shared handle, not copied
    assert not hasattr(c, "job_")


def test_unfitted_model_raises():
    with pytest.raises(virga.Error, match="not fitted"):
        virga.LogisticRegression().predict_proba([[1.0]])
