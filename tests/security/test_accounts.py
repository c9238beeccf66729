"""Accounts and sessions: guests, self-registration, role escalation, other researchers."""

from __future__ import annotations

import pytest
import security_attacks as attacks
import syft as sy
from conftest import DATASET, R1, R2, guest_view
from syft.service.user.user_roles import ServiceRole

from workbench.remote import client
from workbench.remote._syft_calls import code_inputs, quiet
from workbench.remote.admin import admin_login

pytestmark = pytest.mark.slow


def refused(call) -> str | None:
    """None if `call` went through (and did not answer with a SyftError), else why not."""
    try:
        with quiet():
            answer = call()
    except Exception as error:  # syft raises its own types
        return f"{type(error).__name__}: {error}"
    if type(answer).__name__ == "SyftError":
        return f"SyftError: {answer}"
    return None


def test_guest_session_lists_no_dataset_and_no_mock(sites):
    plain = guest_view(sites["u"].config.url)
    assert {DATASET, "two"} <= set(plain["datasets"])
    assert sites["u"].mock_shape in plain["mock_shapes"]

    got = guest_view(sites["h"].config.url)
    assert got["datasets"] == [] and got["mock_shapes"] == []
    assert got["refused"]


@pytest.mark.parametrize(
    "call",
    [
        "code.get_all",
        "user.get_current_user",
        "settings.get",
        "request.get_all",
        "dataset.get_all",
    ],
)
def test_guest_api_calls_refused(call, sites):
    """Every API call from an anonymous guest is refused (guest level or not)."""
    service, method = call.split(".")

    def as_guest():
        guest = sy.login_as_guest(url=sites["h"].config.url, verbose=False)
        return getattr(getattr(guest.api.services, service), method)()

    assert refused(as_guest)


def test_self_registration_refused(sites):
    hardened = sites["h"]
    url = hardened.config.url
    assert refused(
        lambda: sy.login_as_guest(url=url, verbose=False).register(
            name="Eve",
            email="eve@evil.example",
            password="eve-password-123",
            password_verify="eve-password-123",
        )
    )
    researcher = next(iter(hardened.researcher.values()))
    assert refused(
        lambda: researcher.register(
            name="Mallory",
            email="mallory@evil.example",
            password="mallory-password-1",
            password_verify="mallory-password-1",
        )
    )
    for email, password in (
        ("eve@evil.example", "eve-password-123"),
        ("mallory@evil.example", "mallory-password-1"),
    ):
        assert refused(lambda e=email, p=password: sy.login(url=url, email=e, password=p))
    with quiet():
        emails = {user.email for user in hardened.admin.client.users.get_all()}
    assert not {"eve@evil.example", "mallory@evil.example"} & emails


def test_role_escalation_refused(sites):
    hardened = sites["h"]
    researcher = next(iter(hardened.researcher.values()))
    with quiet():
        me = researcher.api.services.user.get_current_user()
        admin_user = next(
            user
            for user in hardened.admin.client.users.get_all()
            if user.email == hardened.config.admin_email
        )
    attempts = {
        "users.update(role=ADMIN)": lambda: researcher.users.update(
            uid=me.id, role=ServiceRole.ADMIN
        ),
        "user.update(role=DATA_OWNER)": lambda: researcher.api.services.user.update(
            uid=me.id, role=ServiceRole.DATA_OWNER
        ),
        "admin's password": lambda: researcher.api.services.user.update(
            uid=admin_user.id, password="pwned-pwned-123", password_verify="pwned-pwned-123"
        ),
        "admin's e-mail": lambda: researcher.api.services.user.update(
            uid=admin_user.id, email="eve@evil.example"
        ),
        "create an admin": lambda: researcher.api.services.user.create(
            name="M",
            email="m@evil.example",
            password="m-password-123",
            password_verify="m-password-123",
            role=ServiceRole.ADMIN,
        ),
        "guest sign-up on": lambda: researcher.api.services.settings.allow_guest_signup(
            enable=True
        ),
    }
    went_through = [what for what, call in attempts.items() if not refused(call)]
    assert went_through == []
    again = next(iter(hardened.login(R1).values()))
    with quiet():
        assert again.api.services.user.get_current_user().role == ServiceRole.DATA_SCIENTIST
        asset = next(d for d in again.datasets.get_all() if d.name == DATASET).asset_list[0]
    assert refused(lambda: asset.data["images"][0].shape)  # still no private pixels
    admin_login(hardened.config)  # the admin's password is unchanged


def test_researcher_cannot_approve_or_override_their_own_request(sites, hardened_campaign):
    """A researcher approving their own request or tagging it with the admin's override."""
    from workbench.remote.output_rule import OVERRIDE_TAG

    hardened = sites["h"]
    researcher = next(iter(hardened.researcher.values()))
    code = client._latest_code(researcher, "long_strings")
    request = client._request_for(researcher, code)
    assert refused(lambda: researcher.api.services.request.set_tags(request, [OVERRIDE_TAG]))
    assert refused(lambda: request.deposit_result({"chunks": []}, approve=True))
    with quiet():
        tags = next(
            r for r in hardened.admin.client.requests if r.code.service_func_name == "long_strings"
        ).tags
    assert OVERRIDE_TAG not in tags
    assert "refused by factory-h's output rule" in hardened_campaign.row("long_strings")["error"]

    # a fresh request the admin has not looked at: approving it oneself
    client.submit(hardened.researcher, attacks.self_approved, DATASET)
    pending = client._request_for(researcher, client._latest_code(researcher, "self_approved"))
    assert refused(lambda: pending.approve(disable_warnings=True))
    assert refused(lambda: researcher.api.services.request.apply(uid=pending.id))
    status = client.status_table(hardened.researcher, "self_approved").iloc[0]["request"]
    assert status == "pending"
    assert client.start_runs(hardened.researcher, "self_approved") == {}


def test_another_researchers_requests_and_results_stay_hidden(sites, hardened_campaign):
    hardened = sites["h"]
    own = next(iter(hardened.researcher.values()))
    other = next(iter(hardened.login(R2).values()))
    with quiet():
        assert list(other.requests) == []
        assert other.code.get_all() == []
        assert other.api.services.job.get_all() == []
    code = client._latest_code(own, "normal_mean")
    job = client._latest_job(own, code)
    assert refused(lambda: other.api.services.job.get(job.id))
    assert refused(lambda: other.api.services.action.get(job.result.id.id))
    assert refused(lambda: other.api.services.code.get_by_id(code.id))
    inputs = code_inputs(code)
    assert refused(lambda: other.api.services.code.call(uid=code.id, **inputs))
    row = client.collect({hardened.config.name: other}, "normal_mean").iloc[0]
    assert "mean" not in row.index
