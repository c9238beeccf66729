"""Spreading the suite over pytest-xdist workers without splitting what must stay together.

Every test file runs on one worker (its module-scoped datasites start once, as with
``--dist loadfile``), and the whole security suite runs on one worker, because its
attack campaigns start shared datasites once per session and leave and clear markers
in /tmp that a campaign on another worker would see. (xdist's own ``loadgroup`` marks
do not take with pytest 9, whose node ids can no longer be suffixed.)

The longest files start first, so that the two workers end together: xdist's own
order (most tests first) left a two-minute file such as ``test_demo.py`` to the end
while the other worker stood idle.
"""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

SECURITY = "tests/security/"
# Seconds each took on the 2-core machine (setup included, 2026-12-03), longest first;
# every other file follows in collection order.
LONGEST_FIRST = (
    SECURITY,  # ~300
    "tests/test_pooling.py",  # ~200
    "tests/test_remote_datasite.py",  # ~175
    "tests/test_faults.py",  # ~170
    "tests/test_notebooks.py",  # ~155
    "tests/test_demo.py",  # ~140
    "tests/test_report.py",  # ~125
    "tests/test_remote_scale.py",  # ~110
    "tests/test_remote_postgres.py",  # ~70
    "tests/test_widgets.py",  # ~50
    "tests/test_tools.py",  # ~40
)


def _scope(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return SECURITY if path.startswith(SECURITY) else path


def _start_rank(nodeid: str) -> int:
    scope = _scope(nodeid)
    return LONGEST_FIRST.index(scope) if scope in LONGEST_FIRST else len(LONGEST_FIRST)


class FileAndSecurityScheduling(LoadScopeScheduling):
    """One scope per test file, and one for everything under tests/security/."""

    def _split_scope(self, nodeid: str) -> str:
        return _scope(nodeid)


def pytest_collection_modifyitems(items) -> None:
    items.sort(key=lambda item: _start_rank(item.nodeid))  # stable: a file keeps its order


def pytest_xdist_make_scheduler(config, log) -> FileAndSecurityScheduling:
    config.option.loadscopereorder = False  # keep the order above
    return FileAndSecurityScheduling(config, log)
