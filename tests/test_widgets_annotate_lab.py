"""The annotation widget in a real JupyterLab 4, clicked in headless Chromium.

A notebook showing :class:`widgets.AnnotationWidget` runs in a JupyterLab started
for the test; the canvas of ``annotate.js`` must draw the picture, a mouse click on
it must reach the Python side as a crystal mark at that image pixel, and the Save
button must write the label file. This is the only test of the front end itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import cv2
import httpx
import nbformat
import pytest

from workbench.floor.demo import free_port
from workbench.synth.generate import synthesize

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER), reason="needs chromium and chromedriver (make browser)"
    ),
]
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import (  # noqa: E402
    ElementClickInterceptedException,
    ElementNotInteractableException,
    NoSuchElementException,
    TimeoutException,
)
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SHAPE = (384, 480)  # rows, cols of the frame
CELL = """from widgets import AnnotationWidget
widget = AnnotationWidget("frame.png", "labels", prefill=False)
widget"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab serving a folder with frame.png and annotate.ipynb; yields (url, folder)."""
    folder = tmp_path_factory.mktemp("lab")
    cv2.imwrite(str(folder / "frame.png"), synthesize("legacy", seed=9, shape=SHAPE).image)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, folder / "annotate.ipynb")
    port = free_port()
    settings = folder / ".jupyter"
    environment = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(settings),
        "JUPYTERLAB_SETTINGS_DIR": str(settings / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(settings / "workspaces"),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
         "--ServerApp.token=", "--ServerApp.password=", "--allow-root",
         f"--ServerApp.root_dir={folder}"],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, server)
        yield url, folder
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:  # a shutdown can hang on a request with no network
            server.kill()
            server.wait()


def _wait_until_serving(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"jupyter lab ended with {server.returncode}")
        try:
            if httpx.get(f"{url}/api/status", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.5)
    pytest.fail("jupyter lab did not answer within 120 s")


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1100",
        "--disable-gpu",
    ):
        options.add_argument(argument)  # fmt: skip
    driver = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER)
    )
    yield driver
    driver.quit()


def _clicked(by: str, selector: str):
    """A wait condition: the element is there and took a click (JupyterLab lays out late)."""

    def condition(browser) -> bool:
        try:
            browser.find_element(by, selector).click()
        except (
            NoSuchElementException,
            ElementNotInteractableException,
            ElementClickInterceptedException,
        ):
            return False
        return True

    return condition


def _run_until_canvas(browser, tries: int = 3, seconds_each: int = 90):
    """Run the cell until its output shows the widget's canvas; return the canvas.

    A click on Run can be lost while JupyterLab still lays out the notebook (seen on
    a loaded 2-core CI machine: the status said Idle, the cell never ran), so the
    click is repeated. A failure names what the status bar and the output showed.
    """
    run = '.jp-NotebookPanel-toolbar [data-jp-item-name="run"]'
    for _ in range(tries):
        WebDriverWait(browser, 180).until(_clicked(By.CSS_SELECTOR, run))
        try:
            return WebDriverWait(browser, seconds_each).until(
                lambda b: b.find_elements(By.CSS_SELECTOR, ".jp-OutputArea canvas")
            )[0]
        except TimeoutException:
            continue
    outputs = [o.text for o in browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea")]
    pytest.fail(
        f"no widget canvas after {tries} runs; status bar: "
        f"{browser.find_element(By.ID, 'jp-main-statusbar').text!r}; outputs: {outputs!r}"
    )


def _click_image_pixel(browser, canvas, x: int, y: int) -> None:
    box = browser.execute_script("return arguments[0].getBoundingClientRect()", canvas)
    dx = (x + 0.5) / SHAPE[1] * box["width"] - box["width"] / 2
    dy = (y + 0.5) / SHAPE[0] * box["height"] - box["height"] / 2
    ActionChains(browser).move_to_element_with_offset(
        canvas, round(dx), round(dy)
    ).click().perform()


def test_a_click_in_jupyterlab_marks_that_pixel_and_save_writes_it(lab, browser):
    url, folder = lab
    wait = WebDriverWait(browser, 180)
    browser.get(f"{url}/lab/tree/annotate.ipynb")
    wait.until(lambda b: "| Idle" in b.find_element(By.ID, "jp-main-statusbar").text)
    canvas = _run_until_canvas(browser)
    wait.until(lambda b: b.execute_script("return arguments[0].width", canvas) == SHAPE[1])
    _click_image_pixel(browser, canvas, 120, 90)
    wait.until(lambda b: "1 crystals" in b.find_element(By.CSS_SELECTOR, ".jp-OutputArea").text)

    buttons = browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea button")
    next(b for b in buttons if b.text.strip() == "Save").click()
    labels = folder / "labels" / "frame.labels.json"
    wait.until(lambda _: labels.exists())
    [mark] = json.loads(labels.read_text())["objects"]
    assert mark["kind"] == "crystal"
    assert abs(mark["centroid_xy"][0] - 120) <= 1.5 and abs(mark["centroid_xy"][1] - 90) <= 1.5
