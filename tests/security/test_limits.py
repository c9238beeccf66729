"""Resource attacks, tried on the hardened datasite only (they would hurt a shared host).

Each run must end as a failed job whose error names the limit it hit, and the
datasite must keep serving: it answers, and a normal request queued behind the
attacks (and a fresh one submitted after them) returns its result.
"""

from __future__ import annotations

import re

import pytest
import security_attacks as attacks
from conftest import DATASET, RESULT_TIMEOUT

from workbench.remote import client, review
from workbench.remote.launch import is_answering

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("name", "limit", "success_field"),
    [
        ("endless_sleep", "timeout", "slept"),
        ("cpu_spin", "cpu", "spins"),
        ("memory_bomb", "memory", "held_mb"),
        ("fork_bomb", "processes", "forked"),
        ("big_file", "file size", "written_mb"),
        # the private /tmp is full: any name for its size limit will do
        ("tmpfs_fill", "file size|tmp[ a-z]*|disk[ a-z]*|space|memory", "written_mb"),
    ],
)
def test_limit_ends_the_run_and_names_it(name, limit, success_field, sites, hardened_campaign):
    got = hardened_campaign.row(name)
    assert success_field not in got, f"{name} was not stopped: {got}"
    assert is_answering(sites["h"].config)
    # e.g. "run of cpu_spin stopped by factory-h's cpu limit (3 CPU s)"
    assert re.search(rf"stopped by factory-h's ({limit}) limit", got.get("error", "")), got


def test_datasite_keeps_serving_after_the_limit_attacks(sites, hardened_campaign):
    hardened = sites["h"]
    queued = hardened_campaign.row("after_bombs_mean")  # queued behind the bombs
    mean = float(sum(frame.mean() for frame in hardened.images) / 3)
    assert queued.get("mean") == pytest.approx(mean), queued

    researcher = hardened.researcher
    client.submit(researcher, attacks.still_serving, DATASET)
    request = next(
        r
        for r in review.list_requests(hardened.admin)
        if r.code.service_func_name == "still_serving"
    )
    review.approve(request)
    client.start_runs(researcher, "still_serving")
    got = client.wait_for_results(researcher, "still_serving", timeout=RESULT_TIMEOUT)
    assert got.iloc[0].get("images") == 3
    assert is_answering(hardened.config)
