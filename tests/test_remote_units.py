"""workbench.remote pieces that need no running datasite: config, identity, output rule,
code findings, batching, entry functions, folder checks and CLI bad inputs."""

from __future__ import annotations

import re
import stat
import subprocess
import sys

import cv2
import numpy as np
import pytest

from workbench.errors import WorkbenchError
from workbench.remote._entry_function import entry_function, entry_source
from workbench.remote.code_findings import scan_code
from workbench.remote.config import OutputRule, config_from_dict, load_config
from workbench.remote.counting import mean_intensity
from workbench.remote.identity import admin_password, load_or_create_identity
from workbench.remote.output_rule import check_output, output_rule_violation, too_few_images
from workbench.remote.upload import batch_slices, image_batch, mock_batch, read_image_folder


def run_workbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args], capture_output=True, text=True, timeout=120
    )


# -- config ---------------------------------------------------------------------------
def test_shipped_factory_configs_load():
    a = load_config("datasites/factory-a.toml")
    b = load_config("datasites/factory-b.toml")
    assert (a.camera, b.camera) == ("legacy", "hires")
    assert a.host == b.host == "127.0.0.1"
    assert a.port != b.port
    assert a.state_dir.parts[-3:] == ("datasites", "state", "factory-a")
    assert a.password_env == "WORKBENCH_FACTORY_A_PASSWORD"
    assert a.output_rule == OutputRule(1024, 32, 200)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('name = "factory-x"\nport = [', "not valid TOML"),
        ('name = "Factory X"\n', "'name' must be"),
        ('name = "factory-x"\nport = "8080"\n', "'port' must be an integer"),
        ('name = "factory-x"\nport = 70000\n', "outside 1..65535"),
        ('name = "factory-x"\ncolour = 1\n', "unknown key 'colour'"),
        ('name = "factory-x"\ncamera = "webcam"\n', "unknown camera"),
        ('name = "factory-x"\nn_consumers = 0\n', "at least 1"),
        ('name = "factory-x"\n[output_rule]\nmax_numbers = 0\n', "must be positive"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path, text, complaint):
    path = tmp_path / "factory-x.toml"
    path.write_text(text)
    with pytest.raises(WorkbenchError, match=complaint) as error:
        load_config(path)
    assert str(path) in str(error.value)


def test_missing_config_names_the_file(tmp_path):
    with pytest.raises(WorkbenchError, match="no such datasite config file"):
        load_config(tmp_path / "nope.toml")


# -- identity and password --------------------------------------------------------------
def test_identity_is_pinned_and_private(tmp_path):
    first = load_or_create_identity(tmp_path)
    assert load_or_create_identity(tmp_path) == first
    mode = stat.S_IMODE((tmp_path / "identity.json").stat().st_mode)
    assert mode == 0o600


def test_damaged_identity_is_refused(tmp_path):
    (tmp_path / "identity.json").write_text("{}")
    with pytest.raises(WorkbenchError, match="damaged datasite identity"):
        load_or_create_identity(tmp_path)


def test_password_from_env_or_generated_private_file(tmp_path, monkeypatch):
    monkeypatch.delenv("WB_TEST_PASSWORD", raising=False)
    generated = admin_password(tmp_path, "WB_TEST_PASSWORD")
    assert len(generated) >= 20 and generated != "changethis"
    assert stat.S_IMODE((tmp_path / "admin-password").stat().st_mode) == 0o600
    assert admin_password(tmp_path, "WB_TEST_PASSWORD") == generated
    monkeypatch.setenv("WB_TEST_PASSWORD", "from-the-environment")
    assert admin_password(tmp_path, "WB_TEST_PASSWORD") == "from-the-environment"


# -- output rule ----------------------------------------------------------------------
RULE = OutputRule(max_numbers=1024, max_matrix_side=32, max_string_length=200)


@pytest.mark.parametrize(
    "value",
    [
        {"images": 12, "mean_count": 31.5, "csd_counts": list(range(20))},
        np.zeros((32, 32)),
        [[1, 2], [3, 4]],
        {"hist": np.arange(1000), "note": "x" * 200},
        None,
    ],
)
def test_aggregates_pass_the_output_rule(value):
    assert output_rule_violation(value, RULE) is None


@pytest.mark.parametrize(
    ("value", "rule_broken"),
    [
        ([np.zeros((512, 640), np.uint8)], "512 x 640 is larger than 32 x 32"),
        (np.zeros((4, 4, 3)), "3-D array"),
        (list(range(2000)), "2000 numbers, more than the 1024"),
        ({"file": "a" * 201}, "201 characters"),
        (b"raw bytes", "type bytes"),
        ([[0] * 40] * 40, "40 x 40"),
        ({"names": np.array(["a.png"])}, "dtype"),
        # Every byte counts: strings, dict keys and packed floats all hit the budget.
        (["f" * 200] * 100, "bytes as JSON, more than the 16384"),
        ({f"{i:0200d}": 0 for i in range(100)}, "bytes as JSON, more than the 16384"),
        (np.random.default_rng(0).random(1024).tolist(), "bytes as JSON, more than"),
    ],
)
def test_non_aggregates_are_refused_with_the_rule_named(value, rule_broken):
    assert rule_broken in output_rule_violation(value, RULE)


def test_the_researcher_is_told_the_rule_and_the_admin_the_numbers():
    broken = check_output({"k" * 300: 1}, RULE)
    assert broken.rule == "max_string_length" and "300 characters" in broken.detail
    assert too_few_images(3, RULE) is None
    assert too_few_images(2, RULE).rule == "min_images"
    assert too_few_images(2, OutputRule(min_images=2)) is None


def test_release_mode_and_sandbox_limits_come_from_the_config():
    config = config_from_dict(
        {"name": "factory-x", "release": "auto", "sandbox": {"timeout_s": 20, "memory_mb": 512}}
    )
    assert config.release == "auto"
    assert config.sandbox.timeout_s == 20.0 and config.sandbox.memory_mb == 512
    assert config_from_dict({"name": "factory-x"}).release == "review"  # the safe default
    for bad, complaint in [
        ({"release": "never"}, "release must be one of review, auto"),
        ({"sandbox": {"timeout_s": 0}}, "sandbox.timeout_s must be positive"),
        ({"sandbox": {"cores": 2}}, "unknown key 'cores' in [sandbox]"),
        ({"output_rule": {"min_images": "3"}}, "'min_images' must be an integer"),
    ]:
        with pytest.raises(WorkbenchError, match=re.escape(complaint)):
            config_from_dict({"name": "factory-x", **bad})


def test_output_rule_limits_come_from_the_config():
    assert output_rule_violation(list(range(10)), OutputRule(max_numbers=5)) is not None


# -- code findings --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("import os", "forbidden-import"),
        ("from subprocess import run", "forbidden-import"),
        ("import urllib.request", "forbidden-import"),
        ("from workbench.imaging.io import load_image", "forbidden-import"),
        ("open('/etc/passwd')", "forbidden-call"),
        ("eval('1')", "forbidden-call"),
        ("__import__('os')", "forbidden-call"),
        ("getattr(__builtins__, 'open')", "introspection"),
        ("getattr(x, name)", "introspection"),
        ("x.__class__.__subclasses__()", "introspection"),
        ("np.load('/data/other.npy')", "file-access"),
        ("p.write_text('x')", "file-access"),
        ("import pickle", "forbidden-import"),
        ("import socket", "forbidden-import"),
    ],
)
def test_forbidden_code_is_flagged(source, kind):
    found = scan_code(f"def f(images):\n    {source}\n")
    assert kind in [finding.kind for finding in found]
    assert all(finding.line == 2 for finding in found)


def test_counting_functions_have_no_findings():
    import inspect

    from workbench.remote import counting

    for function in (counting.count_crystals, counting.mean_intensity):
        assert scan_code(inspect.getsource(function)) == []


# -- batches, mocks, entry functions ------------------------------------------------
def test_batches_respect_count_and_size():
    assert batch_slices([1] * 45, max_images=20) == [slice(0, 20), slice(20, 40), slice(40, 45)]
    assert batch_slices([60, 60, 60], max_bytes=100) == [slice(0, 1), slice(1, 2), slice(2, 3)]
    assert batch_slices([]) == []


def test_mock_uses_camera_profile_and_public_parameters_only():
    legacy = mock_batch("legacy", shape=(96, 120))
    hires = mock_batch("hires", shape=(96, 120))
    assert legacy["images"][0].shape == (96, 120)
    assert hires["images"][0].shape == (96, 120, 3)
    assert (legacy["pixel_size_um"], hires["pixel_size_um"]) == (2.0, 0.64)
    again = mock_batch("legacy", shape=(96, 120))
    assert np.array_equal(legacy["images"][1], again["images"][1])


def test_entry_function_merges_batches_and_passes_progress():
    entry = entry_function(mean_intensity, ["images_000", "images_001"])
    first = image_batch([np.zeros((4, 4))], ["a"], "legacy", 2.0)
    second = image_batch([np.full((4, 4), 6.0), np.full((4, 4), 6.0)], ["b", "c"], "legacy", 2.0)
    calls = []

    class Progress:
        def init_progress(self, n):
            calls.append(("init", n))

        def increment_progress(self):
            calls.append("step")

    assert entry(Progress(), first, second) == {"images": 3, "mean_intensity": 4.0}
    assert calls == [("init", 3), "step", "step", "step"]


def test_entry_source_refuses_what_syft_cannot_ship():
    with pytest.raises(WorkbenchError, match="plain function"):
        entry_source(lambda images: 1, ["images_000"])

    def only_datasite(datasite):
        return 1

    with pytest.raises(WorkbenchError, match="first parameter"):
        entry_source(only_datasite, ["images_000"])


# -- folder checks --------------------------------------------------------------------
@pytest.fixture
def folder_with_bad_file(tmp_path):
    cv2.imwrite(str(tmp_path / "good.png"), np.full((80, 90), 7, np.uint8))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return tmp_path


def test_bad_file_refuses_the_upload_and_is_named(folder_with_bad_file):
    with pytest.raises(WorkbenchError, match="broken.png.*nothing was uploaded"):
        read_image_folder(folder_with_bad_file)


def test_skip_bad_leaves_the_bad_file_out(folder_with_bad_file):
    read = read_image_folder(folder_with_bad_file, skip_bad=True)
    assert read.files == ["good.png"]
    assert len(read.skipped) == 1 and "broken.png" in read.skipped[0]
    assert read.images[0].dtype == np.uint8


def test_empty_folder_is_refused(tmp_path):
    with pytest.raises(WorkbenchError, match="no image files"):
        read_image_folder(tmp_path)


# -- CLI bad inputs: one line, non-zero exit, no traceback ---------------------------
def _one_clean_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]


def test_cli_missing_config(tmp_path):
    _one_clean_error(
        run_workbench("datasite", "status", str(tmp_path / "nope.toml")), "no such datasite"
    )


def test_cli_bad_toml(tmp_path):
    path = tmp_path / "factory-x.toml"
    path.write_text('name = "factory-x"\nport = [')
    _one_clean_error(run_workbench("datasite", "up", str(path)), "not valid TOML")


def test_cli_status_of_a_datasite_that_is_down(tmp_path):
    path = tmp_path / "factory-x.toml"
    path.write_text('name = "factory-x"\nport = 18999\n')
    _one_clean_error(run_workbench("datasite", "status", str(path)), "is down")
    down = run_workbench("datasite", "down", str(path))
    assert down.returncode == 0 and "was not running" in down.stdout


def test_a_kept_output_is_released_once_whole_and_audited(tmp_path):
    from workbench.privacy import audit
    from workbench.remote.kept import export_kept, keep, kept_folder

    state = tmp_path / "state"
    state.mkdir()
    kept = keep(state, request="r1", function="f", researcher="ana@uni.example",
                files={"counter.pt": b"weights", "counter.json": b"{}"})  # fmt: skip
    with pytest.raises(WorkbenchError, match="not a plain file name"):
        keep(state, request="r1", function="f", researcher="a", files={"../x": b""})
    written = export_kept(state, kept.token, tmp_path / "out", by="admin@factory.example")
    assert sorted(p.read_bytes() for p in written) == [b"weights", b"{}"]
    (entry,) = audit.entries(state, kind="kept")
    assert entry["actor"] == "admin@factory.example" and entry["details"]["token"] == kept.token
    with pytest.raises(WorkbenchError, match="already exists"):
        export_kept(state, kept.token, tmp_path / "out", by="admin@factory.example")
    (kept_folder(state, kept.token) / "counter.pt").write_bytes(b"replaced")
    with pytest.raises(WorkbenchError, match="changed since it was kept"):
        export_kept(state, kept.token, tmp_path / "again", by="admin@factory.example")
    assert not (tmp_path / "again").exists() and len(audit.entries(state, kind="kept")) == 1
