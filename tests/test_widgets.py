"""The Jupyter widgets driven headless against real loopback datasites.

Each test sets widget values and clicks buttons through the widget API, then checks
the request's state on the datasite itself (as the researcher sees it).
"""

import subprocess
import sys

import ipywidgets
import numpy as np
import pandas as pd
import pytest
from jupyter_datasites import DATASET, RESEARCHER, RESEARCHER_PASSWORD, shared_sites

from widgets import DatasetBrowser, RequestTracker, ResultView, ReviewInbox
from widgets._html import FINDING_SHADE, code_html, png_bytes
from workbench.errors import WorkbenchError
from workbench.remote import client
from workbench.remote.counting import mean_intensity
from workbench.remote.review import approve, list_requests
from workbench.remote.submission import submit_once


@pytest.fixture(scope="session")
def sites(request, tmp_path_factory):
    return shared_sites(request, tmp_path_factory)


@pytest.fixture(scope="module")
def researcher(sites):
    return client.login(sites.configs.values(), RESEARCHER, RESEARCHER_PASSWORD)


# Functions the researcher submits (module level: syft reads their source).
def pixel_mean_probe(images, datasite=None):
    import numpy as np

    return {"images": len(images["images"]), "mean": round(float(np.mean(images["images"][0])), 3)}


def pixel_max_probe(images, datasite=None):
    import numpy as np

    return {"images": len(images["images"]), "max": int(np.max(images["images"][0]))}


def leaky_probe(images):
    import os

    return {"user": os.getlogin()}


def submit_to_a(researcher, function):
    requests = client.submit({"factory-a": researcher["factory-a"]}, function, DATASET)
    return str(requests["factory-a"].id)


def researcher_status(researcher, function):
    table = client.status_table({"factory-a": researcher["factory-a"]}, function.__name__)
    return table.iloc[0]


def test_widgets_do_not_import_syft():
    code = "import sys, widgets; print(sorted(m for m in sys.modules if m.split('.')[0] == 'syft'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
def test_inbox_shows_code_findings_and_trial_then_denies_only_with_a_reason(sites, researcher):
    request_id = submit_to_a(researcher, pixel_mean_probe)
    inbox = ReviewInbox(sites.admins["factory-a"])
    assert isinstance(inbox.widget, ipywidgets.VBox)
    inbox.select(request_id)
    assert "pixel_mean_probe" in inbox.summary.value and RESEARCHER in inbox.summary.value
    assert DATASET in inbox.summary.value
    assert "<span" in inbox.code_view.value and "pixel_mean_probe" in inbox.code_view.value
    assert "No findings" in inbox.findings_view.value
    assert any(request_id in str(value) for _, value in inbox.requests_list.options)

    inbox.try_button.click()
    assert "Trial on mock data" in inbox.trial_view.value
    assert "images: 2" in inbox.trial_view.value  # the mock holds 2 images
    assert "Passes the output rule" in inbox.trial_view.value

    assert inbox.deny_button.disabled  # no reason yet
    inbox.deny_button.click()  # a click through the API is refused with a message
    assert "reason" in inbox.message.value
    assert researcher_status(researcher, pixel_mean_probe)["request"] == "pending"

    inbox.reason.value = "Use the counting function from the library, please."
    assert not inbox.deny_button.disabled
    inbox.deny_button.click()
    status = researcher_status(researcher, pixel_mean_probe)
    assert status["request"] == "rejected"
    assert "counting function from the library" in status["reason"]
    assert inbox.status_of(request_id) == "rejected"
    assert inbox.approve_button.disabled and inbox.deny_button.disabled


@pytest.mark.slow
def test_inbox_refuses_code_with_findings_until_override(sites, researcher):
    request_id = submit_to_a(researcher, leaky_probe)
    inbox = ReviewInbox(sites.admins["factory-a"])
    inbox.status_filter.value = "pending"
    inbox.select(request_id)
    assert "import of os" in inbox.findings_view.value
    inbox.approve_button.click()
    assert "finding" in inbox.message.value
    assert researcher_status(researcher, leaky_probe)["request"] == "pending"

    inbox.override.value = True
    inbox.approve_button.click()
    assert "leaky_probe: approved" in inbox.message.value
    assert researcher_status(researcher, leaky_probe)["request"] == "approved"
    assert request_id not in inbox.requests  # it left the pending view
    inbox.select(request_id)
    assert inbox.status_filter.value == "all"
    assert "override" in inbox.summary.value and "admin@factory-a" in inbox.summary.value


@pytest.mark.slow
def test_inbox_releases_a_result_computed_on_private_data(sites, researcher):
    request_id = submit_to_a(researcher, pixel_max_probe)
    inbox = ReviewInbox(sites.admins["factory-a"])
    inbox.select(request_id)
    assert inbox.release_button.disabled
    inbox.compute_button.click()
    assert "not released yet" in inbox.private_view.value
    assert "images: 3" in inbox.private_view.value  # 3 private images
    assert not inbox.release_button.disabled
    seen = inbox.private_outcome.result
    inbox.release_button.click()
    assert "pixel_max_probe: result released" in inbox.message.value
    assert researcher_status(researcher, pixel_max_probe)["request"] == "approved"
    released = client.collect({"factory-a": researcher["factory-a"]}, "pixel_max_probe")
    assert released.drop(columns="factory").iloc[0].to_dict() == seen  # exactly what was shown


@pytest.mark.slow
def test_tracker_follows_requests_starts_approved_runs_and_shows_results(sites, researcher):
    client.submit(researcher, mean_intensity, DATASET)
    tracker = RequestTracker(researcher, ["mean_intensity"], interval_s=0.2)
    assert list(tracker.rows["factory"]) == ["factory-a", "factory-b"]
    assert set(tracker.rows["request"]) == {"pending"}
    for request in list_requests(sites.admins["factory-a"], status="pending"):
        if request.code.service_func_name == "mean_intensity":
            approve(request)
    tracker.refresh_button.click()
    assert list(tracker.rows["request"]) == ["approved", "pending"]
    tracker.run_button.click()
    assert "started mean_intensity on factory-a" in tracker.message.value
    client.wait_for_results(researcher, "mean_intensity", timeout=120)
    tracker.refresh_button.click()
    assert tracker.rows.iloc[0]["release"] == "held" and tracker.rows.iloc[0]["result"] is None

    inbox = ReviewInbox(sites.admins["factory-a"])  # the admin's side: the held result
    (token,) = [t for label, t in inbox.held_list.options if label.startswith("mean_intensity")]
    inbox.held_list.value = token
    assert "images: 3" in inbox.held_view.value
    assert "Passes the output rule" in inbox.held_view.value
    assert inbox.withhold_button.disabled  # no reason yet
    inbox.release_held_button.click()
    assert "result released" in inbox.message.value
    assert token not in [t for _, t in inbox.held_list.options]
    # The release, the hold and the run are in the audit tab, on a whole chain.
    assert "The hash chain is whole" in inbox.audit_view.value
    assert all(kind in inbox.audit_view.value for kind in ("release", "held", "run"))
    assert "Each researcher may spend" in inbox.budget_view.value

    tracker.run_button.click()  # fetches the released value
    client.wait_for_results(researcher, "mean_intensity", timeout=120)
    tracker.auto_refresh.value = True  # the background refresh fills in the result
    try:
        for _ in range(100):
            if tracker.rows["result"].iloc[0] is not None:
                break
            tracker._stop.wait(0.1)
    finally:
        tracker.close()
    row = tracker.rows.iloc[0]
    assert row["job"] == "completed" and row["result"]["images"] == 3
    assert "images=3" in tracker.table.value
    assert tracker.rows.iloc[1]["result"] is None

    view = ResultView(client.collect(researcher, "mean_intensity"))
    assert "factory-a" in view.table.value and "factory-b" in view.table.value


def pixel_min_probe(images, datasite=None):
    import numpy as np

    return {"min": int(np.min(images["images"][0]))}


@pytest.mark.slow
def test_submit_once_keeps_the_request_already_there(researcher):
    factory_a = {"factory-a": researcher["factory-a"]}
    assert submit_once(factory_a, pixel_min_probe, DATASET) == {"factory-a": "submitted"}
    assert submit_once(factory_a, pixel_min_probe, DATASET) == {"factory-a": "already submitted"}
    with pytest.raises(WorkbenchError, match="no dataset called 'line-9'"):
        submit_once(factory_a, pixel_min_probe, "line-9")


@pytest.mark.slow
def test_browser_shows_every_dataset_with_mock_thumbnails(researcher):
    browser = DatasetBrowser(researcher, mock_images=2, thumbnail_px=64)
    # Other tests may add datasets to the shared datasites: look at line-1 only.
    shown = zip(browser.cards, browser.cards_box.children, strict=True)
    line_1 = {card.factory: (card, row) for card, row in shown if card.dataset == DATASET}
    assert set(line_1) == {"factory-a", "factory-b"}
    card_a, row_a = line_1["factory-a"]
    card_b, _ = line_1["factory-b"]
    assert (card_a.camera, card_a.pixel_size_um) == ("legacy", 2.0)
    assert (card_b.camera, card_b.pixel_size_um) == ("hires", 0.64)
    assert card_a.images == 3 and card_a.assets == 1
    thumbnails = [child for child in row_a.children if isinstance(child, ipywidgets.Image)]
    assert len(thumbnails) == 2 and thumbnails[0].value[:4] == b"\x89PNG"
    assert "legacy" in row_a.children[0].value and "3 in 1 batch" in row_a.children[0].value


def test_result_view_plots_counts_and_csd():
    results = pd.DataFrame(
        [
            {"factory": "factory-a", "images": 3, "mean_count": 20.0, "total_count": 60,
             "agglomeration_pct": 10.0, "d10_um": 20.0, "d50_um": 35.0, "d90_um": 50.0,
             "csd_counts": [0, 5, 30, 25]},
            {"factory": "factory-b", "error": "no result: request pending"},
        ]
    )  # fmt: skip
    view = ResultView(results)
    assert "crystals per image" in view.table.value and "no result" in view.table.value
    bars = view.counts_figure.axes[0].patches
    assert [round(bar.get_height(), 1) for bar in bars] == [20.0]
    csd_axes = view.csd_figure.axes[0]
    assert csd_axes.get_xlabel() == "equivalent diameter (µm)"
    assert round(csd_axes.dataLim.y1) == 50  # the 20-30 µm bin holds 30 of 60 crystals
    assert csd_axes.dataLim.x1 == 40  # four 10 µm bins


def test_code_view_shades_the_lines_with_findings():
    plain, marked = code_html("x = 1\nimport os\n"), code_html("x = 1\nimport os\n", [2])
    assert FINDING_SHADE in marked and FINDING_SHADE not in plain


def test_thumbnails_keep_the_aspect_ratio_and_colour():
    import cv2

    rgb = np.zeros((300, 400, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    decoded = cv2.imdecode(np.frombuffer(png_bytes(rgb, 100), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (75, 100, 3)
    assert tuple(decoded[0, 0]) == (0, 0, 255)  # BGR: red stays red
