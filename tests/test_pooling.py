"""Pooled answers on three real loopback datasites: clear, secure, secure + DP, budget, audit."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.errors import WorkbenchError
from workbench.imaging.aggregate import pool
from workbench.privacy import audit, budget
from workbench.remote import client, counting, pooling, review
from workbench.remote._scratch import pooling_peers, scratch_config
from workbench.remote.admin import add_researcher, admin_login
from workbench.remote.launch import running_datasites, start_datasite, stop_datasite
from workbench.remote.upload import image_batch, upload_batches

pytestmark = pytest.mark.slow

NAMES = ["factory-a", "factory-b", "factory-c"]
RESEARCHER = "ana@uni.example"
PASSWORD = "a long researcher password"
DATASET = "line-1"
TIMEOUT = 240


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    from workbench.synth import synthesize

    root = tmp_path_factory.mktemp("pool")
    privacy = pooling_peers(root, NAMES, privacy="epsilon_budget = 2.0")
    # factory-a reviews every release; the others release what passes the rule.
    configs = [
        scratch_config(root, name, release="review" if name == "factory-a" else "auto",
                       extra=privacy[name])
        for name in NAMES
    ]  # fmt: skip
    with running_datasites(configs):
        admins = {}
        for index, config in enumerate(configs):
            admins[config.name] = admin_login(config)
            frames = [
                synthesize("legacy", seed=100 * index + i, shape=(256, 320)).image for i in range(3)
            ]
            batch = image_batch(frames, ["a", "b", "c"], "legacy", 2.0)
            upload_batches(admins[config.name].client, DATASET, [batch], mock_shape=(128, 160),
                           progress=False)  # fmt: skip
            add_researcher(admins[config.name], RESEARCHER, "Ana", PASSWORD)
        researcher = client.login(configs, RESEARCHER, PASSWORD)
        yield {"configs": {c.name: c for c in configs}, "admins": admins, "r": researcher}


def answer(sites, plan_kwargs, *, deny: str = ""):
    """Submit crystal_rows for pooling, let the admins act, run, release, combine."""
    researcher = sites["r"]
    pooling.submit_pooled(researcher, counting.crystal_rows, DATASET, **plan_kwargs)
    for name, admin in sites["admins"].items():
        (request,) = [
            r for r in review.list_requests(admin, "pending")
            if r.code.service_func_name == "crystal_rows"
        ]  # fmt: skip
        if name == deny:
            review.deny(request, "not this time")
        else:
            assert "WORKBENCH_POOL" in request.code.raw_code  # the admin reads the plan
            review.approve(request)
    client.start_runs(researcher, "crystal_rows")
    client.wait_for_results(researcher, "crystal_rows", timeout=TIMEOUT)
    for held in review.held(sites["admins"]["factory-a"]):
        review.release(sites["admins"]["factory-a"], held)
    client.wait_for_results(researcher, "crystal_rows", timeout=TIMEOUT)
    return pooling.combine(researcher, "crystal_rows")


def test_secure_pooled_sum_equals_the_sum_of_the_clear_answers(sites):
    clear = answer(sites, {"secure": False})
    assert clear.mode == "clear" and set(clear.per_factory) == set(NAMES)
    assert clear.aggregate.images == 9 and clear.aggregate.crystals > 0
    secure = answer(sites, {"secure": True})
    assert secure.mode == "secure" and secure.per_factory == {}
    assert secure.aggregate == pool(clear.per_factory.values())  # exact, to the crystal
    # What factory-a's admin released: a masked vector, and nothing in the clear.
    rows = client.collect(sites["r"], "crystal_rows").set_index("factory")
    assert "vector" not in rows.columns or rows["vector"].isna().all()
    masked = np.asarray(rows.loc["factory-a", "masked"], dtype=np.float64)
    assert masked.max() > 2**40  # ring elements, not counts


def test_a_factory_that_does_not_answer_refuses_the_pooled_answer(sites):
    with pytest.raises(WorkbenchError, match="factory-c"):
        answer(sites, {"secure": True}, deny="factory-c")


def test_dp_budget_is_spent_refused_once_gone_and_kept_across_a_restart(sites):
    noisy = answer(sites, {"secure": True, "epsilon": 1.5, "delta": 1e-6, "max_per_image": 200})
    assert noisy.mode == "secure+dp" and noisy.epsilon == 1.5
    config_b = sites["configs"]["factory-b"]
    assert budget.spent(config_b.state_dir, RESEARCHER) == 1.5
    left = client.collect(sites["r"], "crystal_rows").set_index("factory")["epsilon_left"]
    assert left.tolist() == [0.5, 0.5, 0.5]  # the researcher sees what is left
    with pytest.raises(WorkbenchError, match="privacy budget"):
        answer(sites, {"secure": True, "epsilon": 1.0, "delta": 1e-6})
    stop_datasite(config_b)
    start_datasite(config_b)
    sites["admins"]["factory-b"] = admin_login(config_b)
    sites["r"].update(client.login([config_b], RESEARCHER, PASSWORD))
    with pytest.raises(WorkbenchError, match="privacy budget"):
        answer(sites, {"secure": True, "epsilon": 1.0, "delta": 1e-6})
    assert budget.spent(config_b.state_dir, RESEARCHER) == 1.5  # a refusal spends nothing


def test_every_request_decision_and_release_is_in_a_whole_audit_log(sites):
    for name, config in sites["configs"].items():
        assert audit.verify(config.state_dir) is None
        kinds = [entry["kind"] for entry in audit.entries(config.state_dir)]
        assert kinds.count("request") >= 4 and "decision" in kinds and "pooled" in kinds
        released = "held" if name == "factory-a" else "release"
        assert kinds.count(released) >= 3
    held = audit.entries(sites["configs"]["factory-a"].state_dir, kind="release")
    assert held and all(entry["actor"] == "admin@factory-a.example" for entry in held)
