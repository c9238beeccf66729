"""Spreading the suite over pytest-xdist workers without splitting what must stay together.

Every test file is one ``xdist_group`` (module-scoped datasites start once per file, as
with ``--dist loadfile``); the whole security suite is one group, because its attack
campaigns leave and clean up markers in /tmp that another worker's campaign would see.
"""

from pathlib import Path

import pytest

SECURITY = Path(__file__).parent / "security"


# Before xdist's own hook, which turns the markers into the groups it schedules by.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.path))
        group = "security" if SECURITY in path.parents else str(path)
        item.add_marker(pytest.mark.xdist_group(group))
