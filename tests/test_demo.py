"""`workbench demo`, the main job behind `make demo`, end to end on real datasites."""

import json
import subprocess
import sys

import psutil
import pytest


def workbench_processes() -> set[int]:
    """Pids of datasite processes this machine is running (launcher and server children)."""
    found = set()
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "workbench.remote" in cmdline and "workbench-demo-" in cmdline:
            found.add(process.info["pid"])
    return found


@pytest.mark.slow
def test_demo_prints_one_aggregate_row_per_factory_and_stops_everything():
    before = workbench_processes()
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "demo", "--json",
         "--legacy-images", "3", "--hires-images", "1"],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)  # stdout holds exactly one JSON object
    rows = {row["factory"]: row for row in summary["factories"]}
    assert set(rows) == {"factory-a", "factory-b"}
    assert rows["factory-a"]["images"] == 3 and rows["factory-b"]["images"] == 1
    for row in rows.values():
        assert set(row) == {"factory", "images", "mean_count", "agglomeration_pct",
                            "d10_um", "d50_um", "d90_um"}
        assert row["mean_count"] > 10  # synthetic frames hold dozens of crystals
        assert 0 <= row["agglomeration_pct"] <= 100
        assert 0 < row["d10_um"] <= row["d50_um"] <= row["d90_um"] < 200
    assert workbench_processes() <= before, "the demo left datasite processes running"
