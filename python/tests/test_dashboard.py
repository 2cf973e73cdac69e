"""connect(dashboard=True): the live dashboard runs with the session and stops with it."""
import json
import urllib.error
import urllib.request

import pytest

import virga


def test_dashboard_starts_and_stops_with_the_session(tmp_path, capsys):
    s = virga.connect(store=str(tmp_path / "store"), registry_dir=str(tmp_path / "jobs"),
                      dashboard=True)
    try:
        url = s.dashboard_url
        assert url.startswith("http://127.0.0.1:") and "token=" in url
        assert url in capsys.readouterr().out
        base, token = url.split("/?token=")
        req = urllib.request.Request(base + "/api/jobs", headers={"Authorization": "Bearer " + token})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = json.load(r)
        assert body["registry"] == str(tmp_path / "jobs") and body["jobs"] == []
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/api/jobs", timeout=10)
        assert e.value.code == 401
        proc = s._dashboard
    finally:
        s.close()
    assert proc.poll() is not None


def test_dashboard_needs_a_registry(tmp_path):
    with pytest.raises(virga.Error):
        virga.connect(store=str(tmp_path / "store"), registry_dir="-", dashboard=True)
