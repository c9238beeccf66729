"""Pixels through the side doors of a run: exception messages, printed output, progress."""

from __future__ import annotations

import pytest

from workbench.remote import client
from workbench.remote._syft_calls import quiet

pytestmark = pytest.mark.slow


def latest_job(site, name):
    datasite_client = next(iter(site.researcher.values()))
    return client._latest_job(datasite_client, client._latest_code(datasite_client, name))


def researcher_logs(site, name) -> str:
    try:
        with quiet():
            return str(latest_job(site, name).logs(_print=False))
    except Exception as error:  # syft raises its own types: refused is fine
        return f"refused: {type(error).__name__}"


def test_exception_message_with_pixels_is_not_shown(sites, hardened_campaign):
    hardened = sites["h"]
    got = hardened_campaign.row("exception_pixels")
    assert "error" in got
    pixels = hardened.pixel_text()
    assert pixels not in got["error"] and pixels[:20] not in got["error"]
    assert pixels[:20] not in researcher_logs(hardened, "exception_pixels")
    job = latest_job(hardened, "exception_pixels")
    assert pixels[:20] not in str(job.result)


def test_printed_pixels_are_withheld(sites, hardened_campaign):
    hardened = sites["h"]
    assert hardened_campaign.row("print_pixels") == {"images": 3}
    logs = researcher_logs(hardened, "print_pixels")
    assert hardened.pixel_text()[:20] not in logs


def progress_numbers(site) -> tuple[int, int]:
    first = site.images[0].ravel()
    return (
        100000 + int(first[0]) * 256 + int(first[1]),
        50000 + int(first[2]) * 256 + int(first[3]),
    )


def test_progress_numbers_chosen_by_the_function(sites, hardened_campaign, plain_campaign):
    """init_progress(n) / set_progress(k) with n, k made of pixel values."""
    plain, hardened = sites["u"], sites["h"]
    assert plain_campaign.row("progress_pixels") == {"images": 3}
    n_iters, reached = progress_numbers(plain)
    job = latest_job(plain, "progress_pixels")
    assert (job.n_iters, job.current_iter) == (n_iters, reached)

    n_iters, reached = progress_numbers(hardened)
    job = latest_job(hardened, "progress_pixels")
    seen = {job.n_iters, job.current_iter}
    assert n_iters not in seen and reached not in seen
    assert all(value is None or 0 <= value <= 100 for value in seen)  # a coarse percentage
    progress = client.status_table(hardened.researcher, "progress_pixels").iloc[0]["progress"]
    assert str(n_iters) not in progress and str(reached) not in progress
