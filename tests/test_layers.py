"""Imports point down the layers of DESIGN.md; only workbench/remote imports syft."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package -> module prefixes it must never import
FORBIDDEN = {
    "workbench/synth": (
        "syft",
        "workbench.imaging",
        "workbench.remote",
        "workbench.reports",
        "widgets",
        "workbench.floor",
    ),
    "workbench/imaging": (
        "syft",
        "workbench.synth",
        "workbench.lab",
        "workbench.remote",
        "workbench.reports",
        "widgets",
        "workbench.floor",
    ),
    # Experiment harnesses: may import synth and imaging, nothing that serves or shows.
    "workbench/lab": (
        "syft",
        "workbench.remote",
        "workbench.reports",
        "widgets",
        "workbench.floor",
    ),
    "workbench/remote": ("widgets", "workbench.reports", "workbench.floor"),
    "workbench/reports": ("syft", "widgets", "workbench.floor"),
    "widgets": ("syft", "workbench.floor"),
    "workbench/privacy": (
        "syft",
        "workbench.imaging",
        "workbench.synth",
        "workbench.remote",
        "workbench.reports",
        "widgets",
        "workbench.floor",
        "workbench.sandbox",
    ),
    # The sandbox runs researcher code: it knows nothing of syft, datasites or images.
    "workbench/sandbox": (
        "syft",
        "workbench.imaging",
        "workbench.synth",
        "workbench.remote",
        "workbench.reports",
        "widgets",
        "workbench.floor",
    ),
    "workbench/floor": ("syft", "widgets", "workbench.reports"),
}
# The floor uses workbench/remote for tools (publish, adopt, hash checks) only.
FLOOR_MAY_IMPORT_FROM_REMOTE = ("workbench.remote.tools",)


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_down(package):
    offending = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imported_modules(path):
            if any(
                name == banned or name.startswith(banned + ".") for banned in FORBIDDEN[package]
            ):
                offending.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offending, "\n".join(offending)


def test_floor_uses_remote_only_for_tools():
    offending = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / "workbench/floor").rglob("*.py"))
        for name in imported_modules(path)
        if name.startswith("workbench.remote") and name not in FLOOR_MAY_IMPORT_FROM_REMOTE
    ]
    assert not offending, "\n".join(offending)
