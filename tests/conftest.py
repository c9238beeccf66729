"""Spreading the suite over pytest-xdist workers without splitting what must stay together.

Every test file runs on one worker (its module-scoped datasites start once, as with
``--dist loadfile``), and the whole security suite runs on one worker, because its
attack campaigns start shared datasites once per session and leave and clear markers
in /tmp that a campaign on another worker would see. (xdist's own ``loadgroup`` marks
do not take with pytest 9, whose node ids can no longer be suffixed.)
"""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

SECURITY = "tests/security/"


class FileAndSecurityScheduling(LoadScopeScheduling):
    """One scope per test file, and one for everything under tests/security/."""

    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        return SECURITY if path.startswith(SECURITY) else path


def pytest_xdist_make_scheduler(config, log) -> FileAndSecurityScheduling:
    return FileAndSecurityScheduling(config, log)
