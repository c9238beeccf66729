"""The floor without a browser: config, accounts, sessions, CSRF, history, control limits,
a tool whose files changed, and ``workbench floor up|status|down``."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from starlette.testclient import TestClient

from workbench.errors import WorkbenchError
from workbench.floor import accounts, history
from workbench.floor.app import create_app
from workbench.floor.config import BatchSpec, floor_config_from_dict, load_floor_config
from workbench.floor.demo import free_port, prepare_floor
from workbench.floor.runner import ImageJob, count_image
from workbench.floor.spc import control_limits
from workbench.remote.tools import adopted_tools
from workbench.synth import synthesize, write_sample


@pytest.fixture
def floor(tmp_path):
    return prepare_floor(tmp_path / "floor.toml", "factory-t", tmp_path / "state",
                         users={"olga": ("operator", "olga-password-1")},
                         adopt_locally=("classical-pipeline",), port=free_port(), workers=1)


def test_shipped_floor_configs_load_and_point_at_their_factory_state():
    for factory in ("factory-a", "factory-b"):
        config = load_floor_config(f"datasites/floor/{factory}.toml")
        assert config.factory == factory and config.host == "127.0.0.1"
        assert config.state_dir == (load_floor_config(f"datasites/floor/{factory}.toml")
                                    .path.parent.parent / "state" / factory).resolve()


@pytest.mark.parametrize(("raw", "message"), [
    ({"factory": "Factory A"}, "'factory' must be"),
    ({"factory": "f", "colour": 1}, "unknown key 'colour'"),
    ({"factory": "f", "port": "80"}, "'port' must be a int"),
    ({"factory": "f", "spec": {"d50_min_um": 50, "d50_max_um": 40}}, "must be below"),
    ({"factory": "f", "camera": "phone"}, "camera must be"),
])
def test_bad_floor_config_is_one_clear_error(raw, message):
    with pytest.raises(WorkbenchError, match=message):
        floor_config_from_dict(raw)


def test_passwords_are_scrypt_hashed_and_sessions_expire(floor):
    stored = accounts._db(floor.database)
    with stored as db:
        (hashed,) = db.execute("SELECT password FROM users WHERE name = 'olga'").fetchone()
    assert hashed.startswith("scrypt$") and "olga-password-1" not in hashed
    assert accounts.check_password(floor.database, "olga", "wrong-password") is None
    assert accounts.check_password(floor.database, "nobody", "olga-password-1") is None
    user = accounts.check_password(floor.database, "olga", "olga-password-1")
    token, session = accounts.start_session(floor.database, user, minutes=1)
    assert accounts.find_session(floor.database, token) == session
    with accounts._db(floor.database) as db:
        db.execute("UPDATE sessions SET expires = ?", (time.time() - 1,))
    assert accounts.find_session(floor.database, token) is None
    with pytest.raises(WorkbenchError, match="at least 10 characters"):
        accounts.add_user(floor.database, "short", "operator", "123")


def test_forms_without_the_session_csrf_token_are_refused(floor):
    with TestClient(create_app(floor), follow_redirects=False) as client:
        page = client.get("/login")
        nonce = page.text.split('name="nonce" value="')[1].split('"')[0]
        client.cookies.delete("floor_login")
        forged = client.post("/login", data={"nonce": nonce, "user": "olga",
                                             "password": "olga-password-1"})
        assert forged.status_code == 403  # no login cookie: a cross-site form
        page = client.get("/login")
        nonce = page.text.split('name="nonce" value="')[1].split('"')[0]
        assert client.post("/login", data={"nonce": nonce, "user": "olga",
                                           "password": "olga-password-1"}).status_code == 303
        refused = client.post("/batches", data={"csrf": "guess", "batch": "B-1"},
                              files=[("images", ("a.png", b"x", "image/png"))])
        assert refused.status_code == 403 and "form has expired" in refused.text
        headers = client.get("/").headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_a_changed_tool_file_refuses_the_run_naming_the_file(floor, tmp_path):
    (manifest, _), = adopted_tools(floor.state_dir).values()
    tampered = dataclasses.replace(
        manifest, files={**manifest.files, "workbench/imaging/segment.py": "0" * 64})
    frame = tmp_path / "0-frame.png"
    write_sample(synthesize("legacy", seed=3, density_per_mm2=10), tmp_path, "0-frame")
    batch = history.create_batch(floor.database, "B-1", "olga",
                                 ("classical-pipeline", "0.1.0", tampered.tool_hash), ["frame.png"])
    job = ImageJob(floor.database, batch, 0, frame, tmp_path / "0.overlay.jpg",
                   tampered.to_dict())
    assert "error" in count_image(job)
    (row,) = history.image_rows(floor.database, batch)
    assert row["status"] == "error"
    assert "workbench/imaging/segment.py has changed since it was adopted" in row["message"]
    assert not (tmp_path / "0.overlay.jpg").exists()


def test_upload_refused_when_the_adopted_tool_changed(floor, monkeypatch):
    from workbench.floor import app as floor_app

    def refuse(manifest):
        raise WorkbenchError(f"tool {manifest.label} refuses to run: "
                             "workbench/imaging/weights/counter.pt is missing")

    monkeypatch.setattr(floor_app, "verify_tool", refuse)
    with TestClient(create_app(floor)) as client:
        page = client.get("/login")
        nonce = page.text.split('name="nonce" value="')[1].split('"')[0]
        home = client.post("/login", data={"nonce": nonce, "user": "olga",
                                           "password": "olga-password-1"})
        csrf = home.text.split('name="csrf" value="')[1].split('"')[0]
        refused = client.post("/batches", data={"csrf": csrf, "batch": "B-2",
                                                "tool": "classical-pipeline 0.1.0"},
                              files=[("images", ("a.png", b"\x89PNG", "image/png"))])
    assert refused.status_code == 400
    assert "workbench/imaging/weights/counter.pt is missing" in refused.text
    assert history.recent_batches(floor.database, BatchSpec()) == []


def test_batch_summary_pools_crystals_and_checks_the_spec(floor):
    batch = history.create_batch(floor.database, "B-9", "olga", ("t", "1", "0" * 64),
                                 ["a.png", "b.png", "c.png"], errors={2: "c.png: bad"})
    for index, (count, agglomerated, sizes) in enumerate([(4, 50.0, [30, 31, 32, 33]),
                                                          (2, 0.0, [60, 61])]):
        history.store_result(floor.database, batch, index, {
            "count": count, "particles": count, "agglomerates": 0, "artifacts_removed": 0,
            "agglomeration_pct": agglomerated, "quality": "ok", "uncertainty": None,
            "method": "classical", "seconds": 0.1, "diameters_um": sizes,
            "csd_um": {"d10": 0, "d50": 0, "d90": 0}})
    summary = history.summarize(floor.database, batch, BatchSpec(35.0, 48.0, 30.0))
    assert (summary.status, summary.done, summary.failed, summary.total_count) == (
        "done", 2, 1, 6)
    assert summary.csd_um["d50"] == 32.5 and summary.agglomeration_pct == pytest.approx(100 / 3)
    assert summary.reasons == ["d50 32.5 µm below 35.0 µm", "agglomeration 33.3 % above 30.0 %"]
    row = summary.to_row()
    assert row["passed"] == "fail" and row["images"] == 2


def test_control_limits_mark_the_outlier_and_need_two_batches():
    values = np.r_[np.full(10, 100.0) + np.tile([-2.0, 2.0], 5), 160.0]
    limits = control_limits(values)
    assert limits.out_of_control == [10]
    assert limits.lower < 100 < limits.upper
    assert np.isnan(control_limits([3.0]).upper)


def test_floor_up_status_down_from_the_command_line(floor):
    def run(command, *args):
        return subprocess.run([sys.executable, "-m", "workbench", "floor", command,
                               str(floor.path), *args], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "NEW_PASSWORD": "a-new-password"})

    started = run("up")
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == f"floor up at {floor.url}"
    try:
        assert "up at" in run("status").stdout
        assert run("up").stderr.startswith("error: floor factory-t is already up")
        assert run("add-user", "ivan", "--password-env", "NEW_PASSWORD").returncode == 0
    finally:
        assert run("down").stdout.strip() == "floor factory-t stopped"
    down = run("status")
    assert down.returncode == 2 and "is down" in down.stderr
    assert [u.name for u in accounts.list_users(floor.database)] == ["ivan", "olga"]


def test_demo_floor_needs_an_adopted_tool(tmp_path):
    from workbench.floor.demo import start_demo_floor

    with pytest.raises(WorkbenchError, match="adopted no tool"):
        start_demo_floor(tmp_path, "factory-q")



def test_crystal_trend_report_reads_the_floor_history(floor, tmp_path):
    from workbench.reports import run_report

    for week, mean in enumerate([100, 101, 99, 100, 102, 98, 100, 101, 99, 100, 170, 100]):
        batch = history.create_batch(floor.database, f"W-{week}", "olga",
                                     ("classical-pipeline", "0.1.0", "a" * 64), ["f.png"])
        history.store_result(floor.database, batch, 0, {
            "count": mean, "particles": mean, "agglomerates": 0, "artifacts_removed": 0,
            "agglomeration_pct": 40.0, "quality": "ok", "uncertainty": 1.6,
            "method": "classical", "seconds": 0.4, "diameters_um": [40.0 + week % 2] * 5,
            "csd_um": {"d10": 40.0, "d50": 40.0, "d90": 40.0}})
    html = run_report("crystal_trend", {"factory": "factory-t", "last_n": 20,
                                        "floors_dir": str(floor.path.parent)},
                      out_dir=tmp_path / "out").read_text()
    assert "the last 12 counted batches, W-0 to W-11" in html
    assert "1 out of control on count, d50 or agglomeration" in html
    assert "classical-pipeline 0.1.0" in html and "<img" in html
    with pytest.raises(WorkbenchError, match="unknown factory 'factory-q'"):
        run_report("crystal_trend", {"factory": "factory-q",
                                     "floors_dir": str(floor.path.parent)},
                   out_dir=tmp_path / "out")
