"""Real factory datasites on loopback (no mocking of syft): the researcher round trip,
review decisions, the release review, researcher isolation, restart, and the hardening.

One hardened datasite (``release = "review"``: the admin releases every result) is
shared by the module; a second, unhardened one runs beside it in the last test to show
that each gap is real without its patch. ``tests/security/`` attacks the sandbox.
"""

from __future__ import annotations

import os
import socket
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest

from workbench.errors import WorkbenchError
from workbench.remote import client, review
from workbench.remote._job_wait import latest_jobs
from workbench.remote._syft_calls import code_inputs, quiet, request_status, status_name
from workbench.remote.admin import add_researcher, admin_login
from workbench.remote.config import load_config
from workbench.remote.identity import load_or_create_identity
from workbench.remote.launch import running_datasites, start_datasite, stop_datasite
from workbench.remote.output_rule import OVERRIDE_TAG
from workbench.remote.upload import image_batch, upload_batches

pytestmark = pytest.mark.slow

DATASET = "line-1"
TIMEOUT = 180


# -- functions researchers submit (module level: syft ships their source) -----------
def pending_mean(images):
    import numpy as np

    return {"mean": float(np.mean([np.mean(frame) for frame in images["images"]]))}


def denied_mean(images):
    import numpy as np

    return {"mean": float(np.mean(images["images"][0]))}


def deposited_mean(images):
    import numpy as np

    return {"mean": float(np.mean(images["images"][0]))}


def slow_mean(images):
    import time

    import numpy as np

    time.sleep(2)
    return {"mean": float(np.mean([np.mean(frame) for frame in images["images"]]))}


def sneaky(images):
    import subprocess

    return {"who": subprocess.run(["id"], capture_output=True, text=True).stdout}


def raw_images(images):
    return images["images"][0][:40, :40].tolist()  # 40 x 40 raw pixels


def nonce_mean(images, datasite):
    import numpy as np

    datasite.init_progress(len(images["images"]))
    for _ in images["images"]:
        datasite.increment_progress()
    print("SECRET-PIXEL", int(images["images"][0][0, 0]))
    return {
        "images": len(images["images"]),
        "mean": float(np.mean([np.mean(frame) for frame in images["images"]])),
        "nonce": int(np.random.default_rng().integers(1 << 30)),
    }


# -- fixtures ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_config(folder, name):
    path = folder / f"{name}.toml"
    path.write_text(f'name = "{name}"\nport = {free_port()}\nstate = "state/{name}"\n')
    return load_config(path)


# Noise (syft compresses) over 1 MB in all, so syft keeps it as a blob file rather than
# inside the database.
PRIVATE = [np.random.default_rng(i).integers(0, 256, (640, 800), np.uint8) for i in range(3)]
PRIVATE_MEAN = float(np.mean([np.mean(frame) for frame in PRIVATE]))


def populate(config):
    """Dataset, two researchers; returns (admin client, {email: password})."""
    admin = admin_login(config)
    passwords = {
        email: add_researcher(admin, email, email.split("@")[0])
        for email in ("r1@uni.example", "r2@uni.example")
    }
    batch = image_batch(PRIVATE, ["a.png", "b.png", "c.png"], "legacy", 2.0)
    upload_batches(admin.client, DATASET, [batch], mock_shape=(64, 80), progress=False)
    return admin, passwords


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("datasites")
    config = write_config(folder, "factory-t")
    with running_datasites([config]):
        admin, passwords = populate(config)
        researcher = client.login([config], "r1@uni.example", passwords["r1@uni.example"])
        yield {"config": config, "admin": admin, "passwords": passwords, "r1": researcher}


def request_for(admin, function_name):
    return next(r for r in review.list_requests(admin) if r.code.service_func_name == function_name)


def round_trip(site_or_sites, function, *, override=False):
    """Submit, approve on every datasite, run, release what is held, wait; return the table."""
    sites = site_or_sites if isinstance(site_or_sites, list) else [site_or_sites]
    clients = {}
    for one in sites:
        clients.update(one["r1"])
    client.submit(clients, function, DATASET)
    for one in sites:
        review.approve(request_for(one["admin"], function.__name__), override=override)
    return run_and_release(sites, clients, function.__name__)


def run_and_release(sites, clients, function_name):
    client.start_runs(clients, function_name)
    table = client.wait_for_results(clients, function_name, timeout=TIMEOUT)
    if release_all(sites, function_name):
        table = client.wait_for_results(clients, function_name, timeout=TIMEOUT)
    return table


def release_all(sites, function_name) -> int:
    """Play the admins: release every held result of `function_name`; return how many."""
    released = 0
    for one in sites:
        for result in review.held(one["admin"]):
            if result.function == function_name:
                review.release(one["admin"], result)
                released += 1
    return released


def rerun(researcher, function_name):
    """Call an already-run function again, as a researcher could by hand."""
    factory, datasite_client = next(iter(researcher.items()))
    code = client._latest_code(datasite_client, function_name)
    inputs = code_inputs(code)
    with quiet():
        job = getattr(datasite_client.code, function_name)(**inputs, blocking=False)
        job.wait(timeout=TIMEOUT)
    return client._job_value(job)


# -- tests -----------------------------------------------------------------------------
def test_private_data_refused_before_approval(site):
    researcher = site["r1"]
    datasite_client = next(iter(researcher.values()))
    asset = datasite_client.datasets.get_all()[0].asset_list[0]
    with quiet():
        private = asset.data
    assert not isinstance(private, dict)  # syft answers "no access to the private data"
    assert [frame.shape for frame in asset.mock["images"]] == [(64, 80), (64, 80)]

    client.submit(researcher, pending_mean, DATASET)
    assert client.status_table(researcher, "pending_mean")["request"].tolist() == ["pending"]
    code = client._latest_code(datasite_client, "pending_mean")
    with pytest.raises(Exception, match="approval"), quiet():
        datasite_client.code.pending_mean(**code_inputs(code))
    assert client.start_runs(researcher, "pending_mean") == {}
    assert "mean" not in client.collect(researcher, "pending_mean").columns


def test_wrong_password_refused(site):
    config = site["config"]
    with pytest.raises(WorkbenchError, match="login to .* failed"):
        client.login([config], "r1@uni.example", "not-the-password")
    with pytest.raises(WorkbenchError, match="login to .* failed"):
        client.login([config], config.admin_email, "changethis")


def test_forbidden_code_is_flagged_and_not_approved_without_override(site):
    client.submit(site["r1"], sneaky, DATASET)
    request = request_for(site["admin"], "sneaky")
    found = review.findings(request)
    assert any("subprocess" in finding.message for finding in found)
    with pytest.raises(WorkbenchError, match="finding"):
        review.approve(request)
    assert client.status_table(site["r1"], "sneaky")["request"].tolist() == ["pending"]


def test_one_question_waits_at_the_datasite_for_the_end_of_a_run(site):
    researcher = site["r1"]
    client.submit(researcher, slow_mean, DATASET)
    review.approve(request_for(site["admin"], "slow_mean"))
    client.start_runs(researcher, "slow_mean")
    datasite_client = next(iter(researcher.values()))
    code = client._latest_code(datasite_client, "slow_mean")
    assert not latest_jobs(datasite_client, code.id)[0].resolved  # asked at once: running
    assert latest_jobs(datasite_client, code.id, wait_s=60)[0].resolved  # one question
    assert release_all([site], "slow_mean") == 1  # its result was held for review


def test_denied_request_never_yields_a_result(site):
    researcher = site["r1"]
    client.submit(researcher, denied_mean, DATASET)
    request = request_for(site["admin"], "denied_mean")
    with pytest.raises(WorkbenchError, match="reason"):
        review.deny(request, "  ")
    review.deny(request, "uses one image only; pool the batch")
    status = client.status_table(researcher, "denied_mean").iloc[0]
    assert status["request"] == "rejected" and "pool the batch" in status["reason"]
    assert client.start_runs(researcher, "denied_mean") == {}
    datasite_client = next(iter(researcher.values()))
    code = client._latest_code(datasite_client, "denied_mean")
    with pytest.raises(Exception), quiet():  # noqa: B017 - syft raises its own type
        datasite_client.code.denied_mean(**code_inputs(code))
    row = client.collect(researcher, "denied_mean").iloc[0]
    assert "mean" not in row.index and "rejected" in row["error"]
    # the status read from a request agrees with syft's (which asks the datasite twice)
    requests = review.list_requests(site["admin"])
    statuses = [(request_status(r), status_name(r.status)) for r in requests]
    assert all(ours == syfts for ours, syfts in statuses) and ("rejected", "rejected") in statuses


def test_raw_images_refused_by_output_rule_then_released_with_recorded_override(site):
    researcher, admin = site["r1"], site["admin"]
    refused = round_trip(site, raw_images).iloc[0]
    # The researcher learns which rule, not the numbers the function chose.
    assert "output rule max_matrix_side" in refused["error"] and "40" not in refused["error"]
    assert "result" not in refused.index or not isinstance(refused.get("result"), list)
    assert review.held(admin) == []  # a refused result is not even held

    trial_request = request_for(admin, "raw_images")
    trial = review.try_on_mock(admin, trial_request)
    assert trial.ok and "larger than 32 x 32" in review.result_violation(admin, trial)

    review.approve(trial_request, override=True)
    tags = request_for(admin, "raw_images").tags
    assert OVERRIDE_TAG in tags and any(tag.startswith(f"{OVERRIDE_TAG}-by:") for tag in tags)
    released = run_and_release([site], researcher, "raw_images").iloc[0]
    assert np.array_equal(released["result"], PRIVATE[0][:40, :40])


def test_release_review_holds_results_until_the_admin_decides(site):
    researcher, admin = site["r1"], site["admin"]
    client.submit(researcher, held_mean, DATASET)
    review.approve(request_for(admin, "held_mean"))
    client.start_runs(researcher, "held_mean")
    first = client.wait_for_results(researcher, "held_mean", timeout=TIMEOUT).iloc[0]
    assert "held for release review" in first["error"] and "mean" not in first.index
    assert client.status_table(researcher, "held_mean").iloc[0]["release"] == "held"
    waiting = [h for h in review.held(admin) if h.function == "held_mean"]
    assert [h.value["mean"] for h in waiting] == [pytest.approx(PRIVATE_MEAN)]
    assert client.start_runs(researcher, "held_mean") == {}  # no second run while held
    with pytest.raises(WorkbenchError, match="reason"):
        review.withhold(admin, waiting[0], " ")
    review.withhold(admin, waiting[0], "too close to one batch's value")
    status = client.status_table(researcher, "held_mean").iloc[0]
    assert status["release"] == "withheld" and "one batch" in status["reason"]
    assert "mean" not in client.wait_for_results(researcher, "held_mean", timeout=TIMEOUT)

    client.submit(researcher, released_mean, DATASET)
    review.approve(request_for(admin, "released_mean"))
    table = run_and_release([site], researcher, "released_mean")
    assert table.iloc[0]["mean"] == pytest.approx(PRIVATE_MEAN)
    assert not [h for h in review.held(admin) if h.function == "released_mean"]  # delivered


def held_mean(images):
    import numpy as np

    return {"mean": float(np.mean([np.mean(frame) for frame in images["images"]]))}


def released_mean(images):
    import numpy as np

    return {"mean": float(np.mean([np.mean(frame) for frame in images["images"]]))}


def test_print_output_withheld_and_single_run_enforced(site):
    researcher, admin = site["r1"], site["admin"]
    first = round_trip(site, nonce_mean).iloc[0]
    assert first["images"] == 3 and first["mean"] == pytest.approx(PRIVATE_MEAN)
    datasite_client = next(iter(researcher.values()))
    code = client._latest_code(datasite_client, "nonce_mean")
    with quiet():
        jobs = datasite_client.api.services.job.get_by_user_code_id(code.id)
        seen_by_researcher = " ".join(job.logs(_print=False) for job in jobs)
        seen_by_admin = " ".join(
            admin.client.api.services.log.get_stdout(job.log_id) for job in jobs
        )
    assert len(jobs) == 2  # the run whose result was held, and the one that delivered it
    assert "SECRET-PIXEL" not in seen_by_researcher and "withheld" in seen_by_researcher
    assert f"SECRET-PIXEL {PRIVATE[0][0, 0]}" in seen_by_admin
    second = rerun(researcher, "nonce_mean")
    assert isinstance(second, Exception) or second["nonce"] == first["nonce"]


def test_researchers_cannot_see_each_other(site):
    round_trip(site, deposited_mean)  # leaves r1 a request, a job and a result
    config, passwords = site["config"], site["passwords"]
    other = client.login([config], "r2@uni.example", passwords["r2@uni.example"])
    other_client = next(iter(other.values()))
    own_client = next(iter(site["r1"].values()))
    with quiet():
        assert list(other_client.requests) == []
        assert other_client.code.get_all() == []
        assert other_client.api.services.job.get_all() == []
    job = client._latest_job(own_client, client._latest_code(own_client, "deposited_mean"))
    with pytest.raises(Exception), quiet():  # noqa: B017 - syft raises its own type
        other_client.api.services.job.get(job.id)
    with pytest.raises(Exception), quiet():  # noqa: B017
        other_client.api.services.action.get(job.result.id.id)


def test_approve_with_result_releases_the_inspected_value(site):
    researcher, admin = site["r1"], site["admin"]
    client.submit(researcher, deposited_mean_v2, DATASET)
    request = request_for(admin, "deposited_mean_v2")
    with pytest.raises(WorkbenchError, match="output rule"):
        review.approve_with_result(admin, request, PRIVATE)
    review.approve_with_result(admin, request, {"mean": 12.5})
    assert client.collect(researcher, "deposited_mean_v2").iloc[0]["mean"] == 12.5


def deposited_mean_v2(images):
    import numpy as np

    return {"mean": float(np.mean(images["images"][0]))}


def datasite_snapshot(admin, researcher) -> dict:
    """What a restart must keep: datasets, users, requests with approvals, a result."""
    return {
        "datasets": [d.name for d in admin.client.datasets.get_all()],
        "users": sorted(u.email for u in admin.client.users.get_all()),
        "requests": sorted(
            (r.code.service_func_name, str(r.status), tuple(r.tags))
            for r in review.list_requests(admin)
        ),
        "result": client.collect(researcher, "deposited_mean_v2").iloc[0]["mean"],
    }


def test_restart_keeps_everything(site):
    config, admin = site["config"], site["admin"]
    before = datasite_snapshot(admin, site["r1"])
    stop_datasite(config)
    start_datasite(config)
    admin = admin_login(config)
    researcher = client.login([config], "r1@uni.example", site["passwords"]["r1@uni.example"])
    site.update(admin=admin, r1=researcher)
    after = datasite_snapshot(admin, researcher)
    assert after == before
    assert round_trip(site, after_restart_mean).iloc[0]["images"] == 3  # jobs still run
    # Private blobs live in the factory's state folder, not in the system temp folder.
    uid = load_or_create_identity(config.state_dir).server_uid_hex
    assert list((config.state_dir / uid / "blob").iterdir())
    assert not (Path(tempfile.gettempdir()) / "syft" / uid).exists()
    assert stat.S_IMODE(config.state_dir.stat().st_mode) == 0o700  # owner only


def after_restart_mean(images):
    return {"images": len(images["images"])}


def listening_addresses(config) -> set[str]:
    """IPv4 addresses the datasite's processes listen on (from /proc, no tools needed)."""
    leader = int(config.state_file("datasite.pid").read_text())
    inodes = set()
    for entry in Path("/proc").iterdir():
        try:
            if (
                not entry.name.isdigit()
                or int((entry / "stat").read_text().rsplit(") ", 1)[-1].split()[2]) != leader
            ):
                continue
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    addresses = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
            hex_ip = fields[1].split(":")[0]
            addresses.add(".".join(str(int(hex_ip[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return addresses


def test_every_listening_socket_is_on_loopback(site):
    assert listening_addresses(site["config"]) == {"127.0.0.1"}


def test_two_datasites_at_once_and_each_gap_without_hardening(site, tmp_path):
    plain = write_config(tmp_path, "factory-u")
    with running_datasites([plain], hardening=False):
        admin, passwords = populate(plain)
        other = {
            "admin": admin,
            "r1": client.login([plain], "r1@uni.example", passwords["r1@uni.example"]),
        }
        both = {**site["r1"], **other["r1"]}
        assert set(client.datasets_table(both)["factory"]) == {"factory-t", "factory-u"}

        results = round_trip([site, other], nonce_mean_both).set_index("factory")
        means = results.loc[["factory-t", "factory-u"], "mean"].tolist()
        assert means == pytest.approx([PRIVATE_MEAN, PRIVATE_MEAN])

        plain_client = next(iter(other["r1"].values()))
        job = client._latest_job(plain_client, client._latest_code(plain_client, "nonce_mean_both"))
        with quiet():
            assert "SECRET-PIXEL" in job.logs(_print=False)  # gap 2 without the wrap
        again = rerun(other["r1"], "nonce_mean_both")  # gap 1: it runs a second time
        assert again["nonce"] != results.loc["factory-u", "nonce"]
        released = round_trip(other, raw_images).iloc[0]  # gap 3: pixels leave
        assert np.array_equal(released["result"], PRIVATE[0][:40, :40])
        assert "0.0.0.0" in listening_addresses(plain)  # gap 4: job queue on all interfaces


def nonce_mean_both(images, datasite):
    import numpy as np

    print("SECRET-PIXEL", int(images["images"][0][0, 0]))
    return {
        "mean": float(np.mean([np.mean(frame) for frame in images["images"]])),
        "nonce": int(np.random.default_rng().integers(1 << 30)),
    }


# -- fine-tuning at the factory: the weights stay there ---------------------------------
def quick_finetune(images):
    from workbench.lab.finetune import finetune_batch
    from workbench.sandbox.keep import keep_folder

    return finetune_batch(images, keep_folder(), steps=3)


def labelled_folder(folder: Path, n_frames: int) -> tuple[Path, Path]:
    """`n_frames` synthetic frames as PNG files and their label files (truth as marks)."""
    import cv2

    from workbench.imaging.annotations import Annotation, marks_from_truth, save_annotation
    from workbench.synth import synthesize

    images, labels = folder / "frames", folder / "labels"
    images.mkdir()
    for seed in range(n_frames):
        sample = synthesize("legacy", seed=300 + seed, shape=(256, 320))
        cv2.imwrite(str(images / f"f{seed}.png"), sample.image)
        marks = tuple(marks_from_truth(sample.truth))
        save_annotation(Annotation(f"f{seed}.png", "legacy", 2.0, marks), labels)
    return images, labels


def test_finetuned_weights_stay_at_the_factory_until_the_admin_releases_them(site, tmp_path):
    from widgets.inbox import kept_html
    from workbench.imaging.model import load_counter
    from workbench.privacy import audit
    from workbench.remote.kept import kept_folder, kept_outputs
    from workbench.remote.upload import upload_folder

    researcher, admin, config = site["r1"], site["admin"], site["config"]
    images, labels = labelled_folder(tmp_path, 4)
    upload_folder(admin.client, images, "labelled", "legacy", progress=False, labels=labels)
    datasite_client = next(iter(researcher.values()))
    dataset = next(d for d in datasite_client.datasets.get_all() if d.name == "labelled")
    mock = dataset.asset_list[0].mock
    assert len(mock["labels"]) == len(mock["images"]) and mock["labels"][0]  # synthetic marks

    client.submit(researcher, quick_finetune, "labelled")
    review.approve(request_for(admin, "quick_finetune"))
    row = run_and_release([site], researcher, "quick_finetune").iloc[0]
    assert row["labelled"] == 4 and row["trained_on"] == 3 and row["checked_on"] == 1
    assert 0 <= row["accuracy_after"] <= 1

    kept = [k for k in kept_outputs(config.state_dir) if k.function == "quick_finetune"]
    assert len(kept) == 1 and kept[0].researcher == "r1@uni.example"
    assert sorted(kept[0].files) == ["counter.json", "counter.pt"]
    assert kept[0].files["counter.pt"]["sha256"] == row["weights_sha256"]  # named, not sent
    weights = kept_folder(config.state_dir, kept[0].token) / "counter.pt"
    assert load_counter(weights).sha256 == row["weights_sha256"]  # usable at the factory
    assert stat.S_IMODE(weights.stat().st_mode) == 0o600
    logged = [e for e in audit.entries(config.state_dir) if e["kind"] == "kept"]
    assert [e["details"]["token"] for e in logged] == [kept[0].token]
    assert kept[0].token in kept_html(config.state_dir)  # the admin's inbox, "Kept files"

    listed = run_workbench("datasite", "kept", str(config.path))
    assert listed.returncode == 0 and kept[0].token in listed.stdout, listed.stderr
    out = tmp_path / "released"
    released = run_workbench(
        "datasite", "kept", str(config.path), "--release", kept[0].token, "--out", str(out)
    )
    assert released.returncode == 0, released.stderr
    assert (out / "counter.pt").read_bytes() == weights.read_bytes()
    again = run_workbench(
        "datasite", "kept", str(config.path), "--release", kept[0].token, "--out", str(out)
    )
    assert again.returncode != 0 and "already exists" in again.stderr
    assert "Traceback" not in again.stderr
    logged = [e for e in audit.entries(config.state_dir) if e["kind"] == "kept"]
    assert logged[-1]["details"]["released_to"] == str(out)


def run_workbench(*args: str):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "workbench", *args], capture_output=True, text=True, timeout=120
    )
