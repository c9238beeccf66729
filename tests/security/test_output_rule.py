"""Results that carry raw pixels inside the old per-item limits, and non-JSON results.

Each string is at most 200 characters and there are fewer than 1,024 numbers, so the
old output rule let all of them through; the byte budget (16 KB of compact JSON,
strings and dict keys included) and the JSON-only boundary refuse them.
"""

from __future__ import annotations

import re
import struct

import pytest
from conftest import MAX_RESULT_BYTES, MIN_IMAGES

pytestmark = pytest.mark.slow

BUDGET = re.compile(r"byte", re.IGNORECASE)


def assert_refused(got: dict, pattern, *leaked_fields: str) -> None:
    assert "error" in got, f"released: {str(got)[:300]}"
    assert re.search(pattern, got["error"]), got["error"]
    for name in leaked_fields:
        assert name not in got


def test_pixels_as_many_short_strings(sites, hardened_campaign, plain_campaign):
    got = plain_campaign.row("long_strings")
    assert bytes.fromhex("".join(got["chunks"])) == sites["u"].pixel_bytes(10000)

    assert_refused(hardened_campaign.row("long_strings"), BUDGET, "chunks")


def test_pixels_as_dict_keys(sites, hardened_campaign, plain_campaign):
    got = plain_campaign.row("many_keys")
    keys = sorted((offset, key) for key, offset in got.items())
    assert bytes.fromhex("".join(key for _, key in keys)) == sites["u"].pixel_bytes(10000)

    got = hardened_campaign.row("many_keys")
    assert_refused(got, BUDGET)
    assert len(got) == 1  # nothing but the error


def test_pixels_packed_into_floats(sites, hardened_campaign, plain_campaign):
    """1,024 floats, each the raw bytes of 8 pixels (struct), under the 1,024-number cap."""
    got = plain_campaign.row("packed_floats")
    assert len(got["values"]) == 1024
    assert struct.pack("<1024d", *got["values"]) == sites["u"].pixel_bytes(8192)

    assert_refused(hardened_campaign.row("packed_floats"), BUDGET, "values")


def test_bytes_result_refused_naming_its_type(sites, hardened_campaign, plain_campaign):
    got = plain_campaign.row("bytes_result")
    assert got["raw"] == sites["u"].pixel_bytes(64)

    assert_refused(hardened_campaign.row("bytes_result"), r"plain data|\bbytes\b", "raw")


def test_fewer_images_than_min_images(hardened_campaign, plain_campaign):
    """A request on a 2-image dataset: one image's worth of statistics is too close."""
    assert plain_campaign.row("count_images") == {"images": 2}

    got = hardened_campaign.row("count_images")
    assert_refused(got, rf"min_images|at least {MIN_IMAGES}", "images")


def test_a_normal_result_is_released(sites, hardened_campaign, plain_campaign):
    """The control: an aggregate within every rule comes back (release = "auto")."""
    for site, campaign in ((sites["h"], hardened_campaign), (sites["u"], plain_campaign)):
        got = campaign.row("normal_mean")
        mean = float(sum(frame.mean() for frame in site.images) / len(site.images))
        assert got["images"] == 3 and got["mean"] == pytest.approx(mean)
    assert len(str(got)) < MAX_RESULT_BYTES
