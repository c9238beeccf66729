"""Privacy mechanisms without datasites: audit chain, pairwise masks, DP noise, budget."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from workbench.errors import WorkbenchError
from workbench.privacy import audit, budget, secure_sum

FACTORIES = ("factory-a", "factory-b", "factory-c")


# -- audit log ----------------------------------------------------------------------------
@pytest.fixture
def log(tmp_path):
    for seq in range(5):
        audit.append(tmp_path, "run", actor="datasite", request=f"r{seq}", n=seq)
    return tmp_path / audit.AUDIT_FILE


def test_a_whole_chain_verifies(log):
    assert audit.verify(log.parent) is None
    assert [e["seq"] for e in audit.entries(log.parent)] == [1, 2, 3, 4, 5]


def test_an_edited_entry_is_named(log):
    lines = log.read_text().splitlines()
    entry = json.loads(lines[2])
    entry["details"]["n"] = 99
    lines[2] = json.dumps(entry, sort_keys=True)
    log.write_text("\n".join(lines) + "\n")
    assert audit.verify(log.parent) == "entry 3 was edited (its hash does not match its content)"


def test_a_deleted_entry_is_named(log):
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    assert audit.verify(log.parent) == (
        "entry 2 is missing: the entry in its place says it is entry 3"
    )


def test_reordered_entries_are_named(log):
    lines = log.read_text().splitlines()
    lines[1], lines[3] = lines[3], lines[1]
    log.write_text("\n".join(lines) + "\n")
    assert "entry 2" in audit.verify(log.parent) or "entry 4" in audit.verify(log.parent)
    assert audit.verify(log.parent) is not None


def test_an_edit_that_recomputes_its_own_hash_still_breaks_the_chain(log):
    lines = log.read_text().splitlines()
    entry = json.loads(lines[1])
    entry["actor"] = "someone else"
    entry["hash"] = audit.entry_hash(entry)
    lines[1] = json.dumps(entry, sort_keys=True)
    log.write_text("\n".join(lines) + "\n")
    assert audit.verify(log.parent) == (
        "entry 3 does not follow entry 2 (one was removed or moved)"
    )


def test_unknown_kinds_are_refused(tmp_path):
    with pytest.raises(WorkbenchError, match="unknown entry kind"):
        audit.append(tmp_path, "whatever", actor="x")


# -- secure aggregation ----------------------------------------------------------------------
def round_of(values: dict[str, list[float]], round_id: str = "round-1") -> dict[str, list[int]]:
    keys = {name: secure_sum.generate_key() for name in values}
    public = {name: secure_sum.public_key_hex(key) for name, key in keys.items()}
    return {
        name: secure_sum.masked_vector(values[name], keys[name], name, public, round_id)
        for name in values
    }


def test_the_pooled_sum_is_exact():
    rng = np.random.default_rng(1)
    values = {name: list(rng.integers(0, 5000, 26).astype(float)) for name in FACTORIES}
    released = round_of(values)
    assert secure_sum.unmasked_sum(list(released.values())) == [
        float(sum(column)) for column in zip(*values.values(), strict=True)
    ]


def test_one_factory_missing_gives_nonsense_not_the_sum():
    values = {name: [100.0] * 8 for name in FACTORIES}
    released = round_of(values)
    partial = secure_sum.unmasked_sum([released["factory-a"], released["factory-b"]])
    assert partial != [200.0] * 8


def test_a_released_vector_alone_is_uniform_in_the_ring():
    # One factory's masked vector, over many rounds of the same small clear value: each
    # byte of the 64-bit words is uniform (chi-square), so the value cannot be read.
    words = np.concatenate(
        [
            np.asarray(round_of({n: [7.0] * 64 for n in FACTORIES}, f"r{i}")["factory-b"],
               dtype=np.uint64)
            for i in range(40)
        ]
    )  # fmt: skip
    counts = np.bincount(words.view(np.uint8), minlength=256)
    assert stats.chisquare(counts).pvalue > 1e-3
    top_bits = (words >> np.uint64(63)).astype(int)
    assert abs(top_bits.mean() - 0.5) < 0.05  # the sign bit of the encoding is hidden too


def test_the_masks_cancel_only_within_their_round():
    a = round_of({n: [1.0] for n in FACTORIES}, "r1")
    b = round_of({n: [1.0] for n in FACTORIES}, "r2")
    assert secure_sum.unmasked_sum([a["factory-a"], a["factory-b"], b["factory-c"]]) != [3.0]


# -- differential privacy -------------------------------------------------------------------
def test_laplace_noise_has_the_declared_scale():
    epsilon, sensitivity = 0.5, 4.0
    draws = np.array(
        [budget.laplace_release([0.0] * 50, epsilon=epsilon, sensitivity=sensitivity)[0]
         for _ in range(100)]
    ).ravel()  # fmt: skip
    scale = sensitivity / epsilon  # Laplace: mean |x| = b, var = 2 b^2
    assert np.mean(np.abs(draws)) == pytest.approx(scale, rel=0.08)
    assert stats.kstest(draws, "laplace", args=(0, scale)).pvalue > 1e-3


def test_gaussian_shares_add_up_to_the_declared_noise():
    sigma = budget.gaussian_sigma(1.0, 1e-6, 10.0)
    shares = np.array(
        [
            np.sum([budget.gaussian_share([0.0] * 40, epsilon=1.0, delta=1e-6, sensitivity=10.0,
                                          shares=3) for _ in range(3)], axis=0)
            for _ in range(100)
        ]
    ).ravel()  # fmt: skip
    assert np.std(shares) == pytest.approx(sigma, rel=0.08)
    # The classic analytic bound needs more noise than OpenDP's zCDP accounting.
    assert sigma < 10.0 * math.sqrt(2 * math.log(1.25 / 1e-6)) / 1.0


def test_clamping_bounds_one_image():
    row = budget.clamp_image_row([3, 10_000, -5, 4000, 4000], n_counts=2, max_per_image=500)
    assert row[0] == 1 and row[1] == 500 and row[2] == 0 and sum(row[3:]) == pytest.approx(500)


def test_the_budget_refuses_once_spent(tmp_path):
    budget.record_spend(tmp_path, "ana@uni.example", "r1", 2.0, 1e-6)
    assert budget.spent(tmp_path, "ana@uni.example") == 2.0
    assert budget.check_budget(tmp_path, "ana@uni.example", 1.0, budget=3.0) == 0.0
    with pytest.raises(WorkbenchError, match="has 1 of ε = 3 left"):
        budget.check_budget(tmp_path, "ana@uni.example", 1.5, budget=3.0)
    assert budget.check_budget(tmp_path, "bo@uni.example", 3.0, budget=3.0) == 0.0  # per researcher
