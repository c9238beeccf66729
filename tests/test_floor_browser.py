"""The floor page in headless Chromium (Debian's ``chromium`` + ``chromium-driver``).

Two factories' floors run in this process; an operator of factory-x logs in, uploads
three frames, sees the same counts as ``workbench count --json`` and the overlays,
finds the batch in the history and its control chart, downloads the CSV, gets a
clear message for a non-image and an oversized file, and cannot open the admin page
or factory-y's data. The screenshots in ``docs/floor_*.png`` come from here
(``WORKBENCH_FLOOR_SCREENSHOTS=docs``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from workbench.floor import history
from workbench.floor.bench import http_session, upload_batch, wait_for_batch
from workbench.floor.demo import free_port, prepare_floor
from workbench.floor.service import floor_in_thread
from workbench.synth import synthesize, write_sample

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (make test installs them)",
)
OPERATOR = ("olga", "operator", "olga-password-1")
ADMIN = ("anna", "admin", "anna-password-1")
SHOTS = os.environ.get("WORKBENCH_FLOOR_SCREENSHOTS")


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    for seed in (11, 12, 13):
        write_sample(synthesize("legacy", seed=seed, density_per_mm2=18), folder, f"L3-{seed}")
    for truth in folder.glob("*.json"):
        truth.unlink()
    (folder / "notes.txt").write_text("not an image\n")
    big = np.random.default_rng(0).integers(0, 256, (1400, 1400), np.uint8)
    import cv2

    cv2.imwrite(str(folder / "huge.png"), big)  # about 2 MB of noise: over the 1 MB limit
    counted = subprocess.run(
        [sys.executable, "-m", "workbench", "count", *map(str, sorted(folder.glob("L3-*.png"))),
         "--json"], capture_output=True, text=True, timeout=120, check=True,
    )
    expected = {row["image"]: row for row in map(json.loads, counted.stdout.splitlines())}
    return folder, expected


def _seed_history(config) -> None:
    """Twelve earlier batches (made-up numbers, one of them off) so the chart has a story."""
    rng = np.random.default_rng(5)
    for week in range(12):
        mean = 118 if week != 8 else 190
        batch = history.create_batch(config.database, f"B-{41 + week:04d}", "earlier shift",
                                     ("classical-pipeline", "0.1.0", "0" * 64), ["seeded.png"])
        diameters = rng.normal(40 if week != 8 else 47, 9, int(mean)).clip(12).round(2)
        history.store_result(config.database, batch, 0, {
            "count": int(mean + rng.normal(0, 4)), "particles": int(mean * 0.7),
            "agglomerates": int(mean * 0.12), "artifacts_removed": 6,
            "agglomeration_pct": 44.0 + rng.normal(0, 2), "quality": "ok", "uncertainty": 1.6,
            "method": "classical", "seconds": 0.5, "diameters_um": diameters.tolist(),
            "csd_um": {"d10": 0.0, "d50": float(np.median(diameters)), "d90": 0.0},
        })
        with history.connect(config.database) as db:  # one batch a day, oldest first
            db.execute("UPDATE batches SET created = ? WHERE id = ?",
                       (time.time() - 86400 * (12 - week), batch))


@pytest.fixture(scope="module")
def floors(tmp_path_factory):
    root = tmp_path_factory.mktemp("floors")
    users = {name: (role, password) for name, role, password in (OPERATOR, ADMIN)}
    x = prepare_floor(root / "floor" / "factory-x.toml", "factory-x", root / "state-x",
                      users=users, adopt_locally=("classical-pipeline",), port=free_port(),
                      workers=2, max_image_mb=1)
    y = prepare_floor(root / "floor" / "factory-y.toml", "factory-y", root / "state-y",
                      users={"yuri": ("operator", "yuri-password-1")},
                      adopt_locally=("classical-pipeline",), port=free_port(), workers=1)
    _seed_history(x)
    with floor_in_thread(x), floor_in_thread(y):
        yield x, y


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def click_and_wait_for_next_page(browser, button, timeout):
    """Click a form's submit button and wait until the answer page has loaded.

    While Chromium swaps documents, asking about the old button fails either as a stale
    element or as an inspector error ("Node ... does not belong to the document");
    both mean the old page is gone.
    """
    button.click()

    def answered(driver) -> bool:
        try:
            button.is_enabled()
        except WebDriverException:  # StaleElementReferenceException is one of these
            return driver.execute_script("return document.readyState") == "complete"
        return False

    # a script run in the middle of the swap can fail the same way: ask again
    WebDriverWait(browser, timeout, ignored_exceptions=(WebDriverException,)).until(answered)


def log_in(browser, url, user, password):
    browser.delete_all_cookies()
    browser.get(f"{url}/login")
    browser.find_element(By.ID, "user").send_keys(user)
    browser.find_element(By.ID, "password").send_keys(password)
    button = browser.find_element(By.ID, "login")
    click_and_wait_for_next_page(browser, button, timeout=20)


def shot(browser, name, height=None):
    if SHOTS:
        width = 1280
        full = height or browser.execute_script("return document.body.scrollHeight")
        browser.set_window_size(width, min(full + 120, 2400))
        browser.save_screenshot(str(Path(SHOTS) / f"floor_{name}.png"))
        browser.set_window_size(1280, 1000)


def upload(browser, url, batch, files):
    browser.get(url + "/")
    browser.find_element(By.ID, "batch").send_keys(batch)
    browser.find_element(By.ID, "images").send_keys("\n".join(str(f) for f in files))
    button = browser.find_element(By.ID, "count")
    click_and_wait_for_next_page(browser, button, timeout=60)


def wait_done(browser, timeout=90):
    # data-status comes from the server: "done" only on the page reloaded after counting
    WebDriverWait(browser, timeout, poll_frequency=0.3).until(lambda b: b.execute_script(
        "const s = document.getElementById('batch'); return s && s.dataset.status") == "done")


def session_client(browser, config) -> httpx.Client:
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    return httpx.Client(base_url=config.url, cookies=cookies)


def test_wrong_password_is_refused(floors, browser):
    x, _ = floors
    log_in(browser, x.url, OPERATOR[0], "not-her-password")
    assert "Wrong user name or password." in browser.find_element(By.ID, "login-error").text
    browser.get(x.url + "/history")
    assert browser.current_url.endswith("/login")


def test_upload_three_frames_counts_match_workbench_count(floors, browser, frames):
    x, _ = floors
    folder, expected = frames
    log_in(browser, x.url, OPERATOR[0], OPERATOR[2])
    browser.get(x.url + "/")
    browser.find_element(By.ID, "batch").send_keys("B-0053")
    shot(browser, "upload")
    upload(browser, x.url, "B-0053", sorted(folder.glob("L3-*.png")))
    wait_done(browser)
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.image-row")
    seen = {}
    for row in rows:
        name = row.find_element(By.CSS_SELECTOR, "td.name").text
        seen[name] = {key: int(row.find_element(By.CSS_SELECTOR, f"td.{cls}").text)
                      for key, cls in (("count", "count"), ("particles", "particles"),
                                       ("agglomerates", "agglomerates"),
                                       ("artifacts_removed", "artifacts"))}
        assert row.find_element(By.CSS_SELECTOR, "td.quality").text == "ok"
    assert seen == {name: {key: row[key] for key in seen[name]}
                    for name, row in expected.items()}
    overlays = browser.find_elements(By.CSS_SELECTOR, "img.overlay")
    assert len(overlays) == 3
    assert all(browser.execute_script("return arguments[0].naturalWidth", img) == 1280
               for img in overlays)
    total = sum(row["count"] for row in expected.values())
    assert browser.find_element(By.ID, "total-count").text == str(total)
    assert browser.find_element(By.ID, "verdict").text.split()[0] in ("PASS", "FAIL")
    assert "classical-pipeline 0.1.0" in browser.find_element(By.CSS_SELECTOR, "p.meta").text
    shot(browser, "results")
    overlays[0].click()
    image = browser.find_element(By.ID, "overlay-full")
    WebDriverWait(browser, 10).until(lambda b: b.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth", image))
    browser.execute_script("const s = document.getElementById('zoom'); s.value = 200;"
                           "s.dispatchEvent(new Event('input'));")
    assert browser.execute_script("return arguments[0].width", image) == 2560
    browser.execute_script("const s = document.getElementById('zoom'); s.value = 100;"
                           "s.dispatchEvent(new Event('input'));")
    shot(browser, "overlay", height=1150)


def test_batch_in_history_chart_and_csv_match(floors, browser, frames):
    x, _ = floors
    _, expected = frames
    log_in(browser, x.url, OPERATOR[0], OPERATOR[2])
    browser.get(x.url + "/history")
    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "tr.batch-row td a")]
    assert names[0] == "B-0053" and len(names) == 13
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.control-chart")
    assert [c.get_attribute("data-points") for c in charts] == ["13", "13", "13"]
    assert charts[0].get_attribute("data-alarms") == "1"  # the seeded batch B-0049
    assert "out of control" in browser.find_element(
        By.CSS_SELECTOR, 'tr.batch-row.ooc').text
    shot(browser, "history")
    with session_client(browser, x) as client:
        batch_id = browser.find_element(By.CSS_SELECTOR, "tr.batch-row").get_attribute(
            "data-batch")
        per_image = list(csv.DictReader(io.StringIO(
            client.get(f"/batches/{batch_id}/results.csv").text)))
        batches = list(csv.DictReader(io.StringIO(client.get("/history.csv").text)))
    assert {row["image"]: int(row["count"]) for row in per_image} == {
        name: row["count"] for name, row in expected.items()}
    for row in per_image:
        assert float(row["d50_um"]) == expected[row["image"]]["csd_um"]["d50"]
    last = batches[-1]
    assert last["batch"] == "B-0053" and last["tool"] == "classical-pipeline"
    assert int(last["total_count"]) == sum(row["count"] for row in expected.values())
    assert len(last["tool_hash"]) == 64


def test_non_image_and_oversized_file_get_clear_messages(floors, browser, frames):
    x, _ = floors
    folder, _ = frames
    log_in(browser, x.url, OPERATOR[0], OPERATOR[2])
    upload(browser, x.url, "B-bad", [folder / "huge.png"])
    message = browser.find_element(By.CSS_SELECTOR, "p.upload-error").text
    assert message.startswith("huge.png: ") and "larger than the 1 MB" in message
    upload(browser, x.url, "B-bad", [folder / "notes.txt", folder / "L3-11.png"])
    wait_done(browser)
    error = browser.find_element(By.CSS_SELECTOR, "div.image-error").text
    assert error == "notes.txt: unsupported file type '.txt'; use BMP, JPEG, PNG, TIFF"
    assert len(browser.find_elements(By.CSS_SELECTOR, "td.count")) == 1


def test_operator_cannot_open_admin_or_another_factory(floors, browser):
    x, y = floors
    log_in(browser, x.url, OPERATOR[0], OPERATOR[2])
    browser.get(x.url + "/admin")
    assert "Operators cannot open the admin pages." in browser.find_element(
        By.ID, "page-error").text
    token = browser.get_cookie(f"floor_session_{x.factory}")["value"]
    # factory-y's floor knows nothing of factory-x's sessions or accounts
    with httpx.Client(base_url=y.url) as other:
        for cookie in (f"floor_session_{x.factory}", f"floor_session_{y.factory}"):
            response = other.get("/history", cookies={cookie: token})
            assert response.status_code == 303 and response.headers["location"] == "/login"
        assert other.get("/history.csv", cookies={f"floor_session_{y.factory}": token}
                         ).status_code == 303
    log_in(browser, y.url, OPERATOR[0], OPERATOR[2])
    assert "Wrong user name or password." in browser.find_element(By.ID, "login-error").text


def test_admin_page_lists_adopted_tool_with_its_check(floors, browser):
    x, _ = floors
    log_in(browser, x.url, ADMIN[0], ADMIN[2])
    browser.get(x.url + "/admin")
    table = browser.find_element(By.ID, "tools-table").text
    assert "classical-pipeline 0.1.0" in table and "files match the adopted hashes" in table


def test_two_operators_count_at_once_and_the_page_stays_responsive(floors, frames):
    x, _ = floors
    folder, expected = frames
    operators = [http_session(x.url, OPERATOR[0], OPERATOR[2]),
                 http_session(x.url, ADMIN[0], ADMIN[2])]
    batches = [upload_batch(client, name, "classical-pipeline 0.1.0", [folder / "L3-12.png"])
               for client, name in zip(operators, ("B-olga", "B-anna"), strict=True)]
    started = time.monotonic()
    assert operators[0].get("/history").status_code == 200
    assert time.monotonic() - started < 1.0  # while both images are being counted
    for client, batch in zip(operators, batches, strict=True):
        state, _ = wait_for_batch(client, batch, poll=0.1)
        assert state["rows"][0]["count"] == expected["L3-12.png"]["count"]
        client.close()
