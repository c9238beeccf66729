"""`workbench audit` and `workbench privacy` on a factory's state folder (no datasite)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workbench.privacy import audit, budget
from workbench.remote.config import load_config


def run_workbench(*args):
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def factory(tmp_path):
    path = tmp_path / "factory-x.toml"
    path.write_text('name = "factory-x"\nport = 8099\n[privacy]\nepsilon_budget = 4.0\n')
    config = load_config(path)
    config.state_dir.mkdir(parents=True)
    audit.append(config.state_dir, "request", actor="ana@uni.example", request="r1")
    audit.append(
        config.state_dir,
        "decision",
        actor="admin@factory-x.example",
        request="r1",
        decision="approved",
    )
    budget.record_spend(config.state_dir, "ana@uni.example", "r1", 1.5, 1e-6)
    return config


def test_show_filters_and_prints_json(factory):
    shown = run_workbench("audit", "show", str(factory.path), "--researcher", "ana@uni.example")
    assert shown.returncode == 0 and "request" in shown.stdout and "budget" in shown.stdout
    assert "decision" not in shown.stdout
    as_json = run_workbench("audit", "show", str(factory.path), "--kind", "decision", "--json")
    assert [json.loads(line)["details"]["decision"] for line in as_json.stdout.splitlines()] == [
        "approved"
    ]
    bad = run_workbench("audit", "show", str(factory.path), "--kind", "gossip")
    assert bad.returncode == 2 and "not a kind of entry" in bad.stderr


def test_verify_catches_an_edit_and_export_refuses_a_broken_log(factory, tmp_path):
    good = run_workbench("audit", "verify", str(factory.path))
    assert good.returncode == 0 and "3 entries, chain whole" in good.stdout
    exported = tmp_path / "audit.jsonl"
    assert run_workbench("audit", "export", str(factory.path), str(exported)).returncode == 0
    assert len(exported.read_text().splitlines()) == 3
    log = factory.state_dir / audit.AUDIT_FILE
    log.write_text(log.read_text().replace('"approved"', '"denied"'))
    broken = run_workbench("audit", "verify", str(factory.path))
    assert broken.returncode == 1 and "entry 2 was edited" in broken.stderr
    again = run_workbench("audit", "export", str(factory.path), str(tmp_path / "again.jsonl"))
    assert again.returncode == 2 and "not exported" in again.stderr
    assert not (tmp_path / "again.jsonl").exists()


def test_pool_key_and_budget(factory):
    key = run_workbench("privacy", "pool-key", str(factory.path))
    assert key.returncode == 0 and key.stdout.startswith('factory-x = "')
    assert run_workbench("privacy", "pool-key", str(factory.path)).stdout == key.stdout  # kept
    table = run_workbench("privacy", "budget", str(factory.path))
    assert "ana@uni.example" in table.stdout and "1.5" in table.stdout and "2.5" in table.stdout
