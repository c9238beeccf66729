"""The ``workbench`` command itself: help everywhere, clean user errors."""

import subprocess
import sys

import pytest

from workbench.cli import COMMANDS


def run_workbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args], capture_output=True, text=True, timeout=120
    )


def test_top_level_help_lists_every_command():
    result = run_workbench("--help")
    assert result.returncode == 0
    for name in COMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_has_help(name):
    result = run_workbench(name, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    assert "Traceback" not in result.stderr


def test_unknown_command_is_one_clear_error():
    result = run_workbench("no-such-command")
    assert result.returncode != 0
    assert "No such command" in result.stderr
    assert "Traceback" not in result.stderr
