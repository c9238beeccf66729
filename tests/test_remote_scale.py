"""The remote path at factory scale, on one real datasite with two job workers
(``n_consumers = 2``, ``release = "auto"``): an upload cut off by Ctrl-C resumes and
sends only what is missing, and two researchers' runs overlap in time.

The speed targets are measured by ``workbench bench-remote``, not here.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from workbench.remote import client, review
from workbench.remote._scratch import scratch_config
from workbench.remote.admin import add_researcher, admin_login
from workbench.remote.launch import running_datasites
from workbench.remote.upload import (
    UPLOAD_JOURNALS,
    image_batch,
    local_blob_folder,
    upload_batches,
    upload_folder,
)

pytestmark = pytest.mark.slow

TIMEOUT = 300
DATASET = "line-9"
RESEARCHERS = ("ana@uni.example", "ben@uni.example")


def slow_window(images):
    import time

    started = time.time()
    time.sleep(4)
    return {"images": len(images["images"]), "started": started, "ended": time.time()}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    config = scratch_config(root, "factory-s", release="auto", extra="n_consumers = 2\n")
    with running_datasites([config]):
        admin = admin_login(config)
        passwords = {email: add_researcher(admin, email, email[:3]) for email in RESEARCHERS}
        frames = [np.full((64, 80), 10 * i, np.uint8) for i in range(3)]
        batch = image_batch(frames, ["a.png", "b.png", "c.png"], "legacy", 2.0)
        upload_batches(admin.client, DATASET, [batch], mock_shape=(48, 64), progress=False)
        yield {"config": config, "admin": admin, "passwords": passwords, "root": root}


def upload_command(config, folder, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "workbench", "datasite", "upload", str(config.path), str(folder),
        "--name", "resumed", "--batch-mb", "1.5", "--quiet", *extra,
    ]  # fmt: skip


def test_an_interrupted_upload_resumes_and_sends_only_what_is_missing(site, tmp_path):
    config, admin = site["config"], site["admin"].client
    folder = tmp_path / "frames"
    folder.mkdir()
    # 24 batches of one frame each (1.5 MB batches).
    frames = [np.random.default_rng(i).integers(0, 256, (1024, 1280), np.uint8) for i in range(24)]
    for index, frame in enumerate(frames):  # 1.3 MB each: one frame per 1.5 MB batch
        cv2.imwrite(str(folder / f"frame-{index:02d}.png"), frame)
    journal = config.state_dir / UPLOAD_JOURNALS / "resumed.json"
    blob = local_blob_folder(config)
    blobs_before = set(blob.iterdir())

    def stored() -> int:
        try:
            return len(json.loads(journal.read_text())["batches"])
        except (OSError, ValueError):
            return 0

    # The uploader runs in slices of 10 ms, stopped while the journal is read, so the
    # Ctrl-C lands after its first stored batch however busy the machine is (polling a
    # free-running upload lost that race under a loaded test suite).
    # As from a terminal: this worker process may have come to ignore SIGINT (an earlier
    # test's launcher), and a child would inherit that and never see the Ctrl-C.
    uploading = subprocess.Popen(
        upload_command(config, folder),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + TIMEOUT
    while uploading.poll() is None and time.monotonic() < deadline:
        uploading.send_signal(signal.SIGSTOP)
        if stored() >= 1:
            break
        uploading.send_signal(signal.SIGCONT)
        time.sleep(0.01)
    uploading.send_signal(signal.SIGINT)  # Ctrl-C
    uploading.send_signal(signal.SIGCONT)
    out, err = uploading.communicate(timeout=TIMEOUT)
    kept = stored()
    assert uploading.returncode != 0, f"not interrupted ({kept} stored): {out} {err}"
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "interrupted" in errors[0] and "Traceback" not in err
    assert 1 <= kept < len(frames)
    # Nothing half-visible: the dataset does not exist for the admin, let alone researchers.
    assert "resumed" not in {dataset.name for dataset in admin.datasets.get_all()}

    again = subprocess.run(upload_command(config, folder), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"sent {len(frames) - kept}, {kept} stored by the interrupted upload" in again.stdout
    dataset = admin.datasets["resumed"]
    assert len(dataset.assets) == len(frames)
    # One blob file per frame: no batch twice, no half-written leftover.
    assert len(set(blob.iterdir()) - blobs_before) == len(frames)
    for index in (0, kept - 1, kept, len(frames) - 1):  # either side of the interruption
        stored_batch = dataset.assets[index].data
        assert stored_batch["files"] == [f"frame-{index:02d}.png"]
        assert np.array_equal(stored_batch["images"][0], frames[index])

    # Once the dataset is there, the same upload sends nothing (as the command would).
    third = upload_folder(
        admin,
        folder,
        "resumed",
        "legacy",
        max_batch_bytes=1_500_000,
        journal=journal,
        progress=False,
    )
    assert third.sent_assets == 0 and third.assets == len(frames)


def test_two_researchers_runs_overlap_in_time(site):
    config, admin = site["config"], site["admin"]
    researchers = [client.login([config], email, site["passwords"][email]) for email in RESEARCHERS]
    for researcher in researchers:
        client.submit(researcher, slow_window, DATASET)
    for request in review.list_requests(admin, "pending"):
        if request.code.service_func_name == "slow_window":
            review.approve(request)
    for researcher in researchers:
        assert list(client.start_runs(researcher, "slow_window")) == [config.name]
    windows = [
        client.wait_for_results(researcher, "slow_window", timeout=TIMEOUT).iloc[0]
        for researcher in researchers
    ]
    (start_a, end_a), (start_b, end_b) = [(row["started"], row["ended"]) for row in windows]
    assert all(row["images"] == 3 for row in windows)
    # With one worker the second run would start only after the first one ended.
    assert start_b < end_a and start_a < end_b
