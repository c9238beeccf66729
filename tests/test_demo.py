"""`workbench demo`, the main job behind `make demo`, end to end on real datasites."""

import json
import subprocess
import sys
import urllib.request

import psutil
import pytest


def processes_using(folder) -> set[int]:
    """Pids of processes whose command line names `folder` (datasites, the floor page)."""
    found = set()
    for process in psutil.process_iter(["pid", "cmdline"]):
        if str(folder) in " ".join(process.info["cmdline"] or []):
            found.add(process.info["pid"])
    return found


def run_workbench(*args):
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args], capture_output=True, text=True, timeout=900
    )


@pytest.mark.slow
def test_demo_prints_one_aggregate_row_per_factory_and_leaves_a_floor_page(tmp_path):
    state = tmp_path / "demo"
    done = run_workbench("demo", "--json", "--legacy-images", "3", "--hires-images", "3",
                         "--state", str(state))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)  # stdout holds exactly one JSON object
    rows = {row["factory"]: row for row in summary["factories"]}
    assert set(rows) == {"factory-a", "factory-b"}
    assert rows["factory-a"]["images"] == 3 and rows["factory-b"]["images"] == 3
    for row in rows.values():
        assert set(row) == {"factory", "images", "mean_count", "agglomeration_pct",
                            "d10_um", "d50_um", "d90_um"}  # fmt: skip
        assert row["mean_count"] > 2  # synthetic frames hold crystals
        assert 0 <= row["agglomeration_pct"] <= 100
        assert 0 < row["d10_um"] <= row["d50_um"] <= row["d90_um"] < 200
    # Each result was held for release and released by the admin: the log says so.
    assert done.stderr.count("result held for review") == 2
    floor = summary["floor"]
    assert floor["url"] in done.stderr and "workbench floor down" in done.stderr
    with urllib.request.urlopen(f"{floor['url']}/login", timeout=10) as page:
        assert page.status == 200
    stopped = run_workbench("floor", "down", floor["config"])
    assert stopped.returncode == 0, stopped.stderr
    assert processes_using(state) == set(), "the demo left processes running"


def test_demo_refuses_too_few_images_and_a_folder_that_is_not_its_own(tmp_path):
    done = run_workbench("demo", "--hires-images", "1", "--state", str(tmp_path / "d"))
    assert done.returncode == 2 and "--hires-images 1" in done.stderr
    assert "Traceback" not in done.stderr
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    done = run_workbench("demo", "--state", str(tmp_path / "mine"))
    assert done.returncode == 2 and "is not a demo folder" in done.stderr
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
