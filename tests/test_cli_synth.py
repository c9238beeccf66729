"""``workbench synth``: files per image, one clear line for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workbench.cli import main


def run(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(["synth", *argv])
        raise SystemExit(0)
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


def test_writes_png_and_json_per_image(tmp_path, capsys):
    code, out, _ = run([str(tmp_path), "--n", "2", "--seed", "3", "--labels"], capsys)
    assert code == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        f"legacy_s3_000{i}{suffix}" for i in range(2) for suffix in (".json", ".labels.png", ".png")
    ]
    truth = json.loads((tmp_path / "legacy_s3_0000.json").read_text())
    assert truth["image"] == "legacy_s3_0000.png"
    assert "2 images" in out and "crystals" in out


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--camera", "webcam"], "camera"),
        (["--n", "0"], "at least 1"),
        (["--seed", "abc"], "--seed"),
        (["--density", "0"], "density"),
        (["--density", "-2"], "density"),
        (["--jpeg-quality", "500"], "JPEG"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, argv, reason):
    code, _, err = run([str(tmp_path / "out"), "--n", "1", *argv], capsys)
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and reason in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists(), "nothing written on bad input"


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for target in (blocker / "sub", blocker):
        code, _, err = run([str(target), "--n", "1"], capsys)
        assert code != 0
        assert len(err.strip().splitlines()) == 1 and "cannot be written" in err


def test_real_process_prints_no_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "synth", str(tmp_path), "--seed", "x1"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --seed 'x1': not a number (int)"
