"""Requests: single use, code changed after approval, min_images padding, admin trials."""

from __future__ import annotations

import pytest
import security_attacks as attacks
import syft as sy
from conftest import DATASET, RESULT_TIMEOUT, SMALL_DATASET, marker_files

from workbench.remote import client, review
from workbench.remote._entry_function import entry_function
from workbench.remote._syft_calls import code_inputs, quiet

pytestmark = pytest.mark.slow


def asset_of(datasite_client, dataset: str):
    with quiet():
        found = next(d for d in datasite_client.datasets.get_all() if d.name == dataset)
    return found.asset_list[0]


def run_now(call):
    """The value a direct call gave the researcher (a job it starts is waited for)."""
    try:
        with quiet():
            answer = call()
            if type(answer).__name__ == "Job":
                answer.wait(timeout=RESULT_TIMEOUT)
                return client._job_value(answer)
            return answer
    except Exception as error:  # syft raises its own types
        return error


def call_again(datasite_client, name: str, **inputs):
    return run_now(lambda: getattr(datasite_client.code, name)(**inputs, blocking=False))


def test_single_use_request_runs_once(sites, hardened_campaign):
    hardened = sites["h"]
    first = hardened_campaign.row("normal_mean")
    researcher = next(iter(hardened.researcher.values()))
    code = client._latest_code(researcher, "normal_mean")
    second = call_again(researcher, "normal_mean", **code_inputs(code))
    assert isinstance(second, Exception) or second.get("nonce") == first["nonce"], second


def test_approved_code_on_another_dataset_is_refused(sites, hardened_campaign):
    """``normal_mean`` was approved on line-1; run by hand on the 2-image dataset."""
    hardened = sites["h"]
    researcher = next(iter(hardened.researcher.values()))
    got = call_again(researcher, "normal_mean", images_000=asset_of(researcher, SMALL_DATASET))
    small_mean = float(sum(frame.mean() for frame in hardened.small_images) / 2)
    assert not (isinstance(got, dict) and got.get("mean") == pytest.approx(small_mean)), got


def test_code_changed_after_approval_never_runs(sites, hardened_campaign, configs):
    """Approved ``swap_me`` v1; then v2 (same name, leaks pixels) by re-submission, by a
    crafted submission carrying v1's id, and by ``code.update``: only v1 ever runs."""
    hardened = sites["h"]
    researcher = next(iter(hardened.researcher.values()))
    asset = asset_of(researcher, DATASET)
    approved = attacks.swap_module(configs["folder"], "v1", attacks.SWAP_APPROVED)
    changed = attacks.swap_module(configs["folder"], "v2", attacks.SWAP_CHANGED)
    client.submit(hardened.researcher, approved, DATASET)
    request = next(
        r for r in review.list_requests(hardened.admin) if r.code.service_func_name == "swap_me"
    )
    review.approve(request)
    code_v1 = client._latest_code(researcher, "swap_me")

    entry = entry_function(changed, ["images_000"])
    with quiet():
        crafted = sy.syft_function(
            input_policy=sy.MixedInputPolicy(client=researcher, images_000=asset),
            output_policy=sy.SingleExecutionExactOutput(),
        )(entry)
    crafted.id = code_v1.id
    got = []
    for call in (
        lambda: researcher.api.services.code.submit(code=crafted),
        lambda: researcher.api.services.code.request_code_execution(code=crafted),
        lambda: researcher.api.services.code.update(id=code_v1.id, raw_code=crafted.code),
    ):
        try:
            with quiet():
                got.append(call())
        except Exception as error:
            got.append(error)
    client.submit(hardened.researcher, changed, DATASET)  # same name, new code, pending
    got.append(run_now(lambda: client.start_runs(hardened.researcher, "swap_me")))
    got.append(call_again(researcher, "swap_me", images_000=asset))
    got.append(
        run_now(
            lambda: researcher.api.services.code.call(
                uid=code_v1.id, images_000=asset, blocking=False
            ),
        )
    )
    got.append(client.collect(hardened.researcher, "swap_me").iloc[0].to_dict())
    private = hardened.images[0].ravel()[:90].tobytes().hex()
    assert "version': 2" not in str(got) and private not in str(got)
    assert any(isinstance(value, dict) and value.get("version") == 1 for value in got)
    with quiet():
        stored = hardened.admin.client.api.services.code.get_by_id(code_v1.id)
    assert 'version": 1' in stored.raw_code and "leak" not in stored.raw_code


@pytest.mark.parametrize("how", ["same asset twice", "researcher constant"])
def test_min_images_cannot_be_padded(how, sites, hardened_campaign):
    """The 2-image dataset, padded to look like 4 or 5 images: the function returns the
    mean of each of the 2 private images."""
    hardened = sites["h"]
    researcher = next(iter(hardened.researcher.values()))
    two = asset_of(researcher, SMALL_DATASET)
    if how == "same asset twice":
        function, inputs = attacks.padded_stats, {"images_000": two, "images_001": two}
        policy = sy.MixedInputPolicy(client=researcher, **inputs)
    else:
        function, inputs = attacks.constant_padded, {"images_000": two}
        policy = sy.MixedInputPolicy(
            client=researcher, images_000=two, padding=sy.Constant(val={"images": [0, 0, 0]})
        )
    with quiet():
        submitted = sy.syft_function(
            input_policy=policy, output_policy=sy.SingleExecutionExactOutput()
        )(function)
        researcher.code.request_code_execution(submitted)
        researcher.api.refresh_api_callback()
    request = next(
        r
        for r in review.list_requests(hardened.admin)
        if r.code.service_func_name == function.__name__
    )
    assert review.findings(request) == []
    review.approve(request)
    got = call_again(researcher, function.__name__, **inputs)
    true_means = [float(frame.mean()) for frame in hardened.small_images]
    assert not (isinstance(got, dict) and got.get("means") == pytest.approx(true_means)), got
    row = client.collect(hardened.researcher, function.__name__).iloc[0]
    assert "means" not in row.index
    assert "min_images" in str(row.get("error", "")), row.to_dict()


def test_admin_trial_on_mock_runs_in_the_sandbox(sites):
    """The admin's "Try on mock" runs the researcher's code: no host file, no admin env."""
    hardened = sites["h"]
    client.submit(hardened.researcher, attacks.trial_probe, DATASET)
    request = next(
        r for r in review.list_requests(hardened.admin) if r.code.service_func_name == "trial_probe"
    )
    before = marker_files()
    trial = review.try_on_mock(hardened.admin, request)
    touched = {name for name in marker_files() - before if name.startswith("wbsec-trial_probe")}
    assert touched == set()
    seen = str(trial.result)
    assert hardened.admin_password not in seen
    assert hardened.config.password_env not in seen
