"""Every notebook in notebooks/ runs top to bottom (papermill) against real datasites."""

import re
import threading
from pathlib import Path

import nbformat
import papermill
import pytest
from jupyter_datasites import (
    DATASET,
    PASSWORD_ENV,
    RESEARCHER,
    RESEARCHER_PASSWORD,
    private_batch,
    shared_sites,
)

from workbench.remote.admin import datasite_summary
from workbench.remote.review import approve, held, list_requests, release
from workbench.reports.qc_summary import qc_summary

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def sites(request, tmp_path_factory):
    return shared_sites(request, tmp_path_factory)


def execute(name, parameters, tmp_path):
    """Run notebooks/NAME as `make lab` would (working folder notebooks/); return it."""
    executed = tmp_path / name
    papermill.execute_notebook(
        str(NOTEBOOKS / name),
        str(executed),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(NOTEBOOKS),
        progress_bar=False,
        execution_timeout=600,  # generous: CI shares 2 cores with the datasites
    )
    return nbformat.read(executed, as_version=4)


def cell_outputs(notebook, fragment):
    """Outputs of the one code cell whose source contains `fragment`."""
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and fragment in c.source]
    return cell.outputs


def text_of(outputs):
    parts = [o.get("text", "") for o in outputs if o.output_type == "stream"]
    parts += [o.data.get("text/plain", "") for o in outputs if "data" in o]
    return "\n".join(parts)


def shows_widget(outputs):
    return any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)


def shows_png(outputs):
    return any("image/png" in o.get("data", {}) for o in outputs)


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == [
        "data_owner_review.ipynb",
        "researcher_quickstart.ipynb",
        "train_counter.ipynb",
    ]


def test_data_owner_notebook_uploads_a_folder_and_shows_the_inbox(sites, tmp_path):
    config = sites.configs["factory-a"]
    notebook = execute(
        "data_owner_review.ipynb",
        {
            "config": str(config.path),
            "images_dir": str(tmp_path / "images"),
            "dataset": "line-2",
            "example_images": 2,
        },
        tmp_path,
    )
    assert "line-2" in datasite_summary(sites.admins["factory-a"])["datasets"]
    assert "images=2" in text_of(cell_outputs(notebook, "upload_folder(admin"))
    assert shows_widget(cell_outputs(notebook, "ReviewInbox(admin"))
    assert "function" in text_of(cell_outputs(notebook, "requests_table("))


def approve_when_submitted(sites, function_names, stop):
    """Play both admins: approve the functions' requests, release their held results."""
    while not stop.wait(0.5):
        for admin in sites.admins.values():
            for request in list_requests(admin, status="pending"):
                if request.code.service_func_name in function_names:
                    approve(request)
            for result in held(admin):
                if result.function in function_names:
                    release(admin, result)


def test_researcher_notebook_submits_to_every_factory_and_plots_the_results(
    sites, tmp_path, monkeypatch
):
    monkeypatch.setenv(PASSWORD_ENV, RESEARCHER_PASSWORD)
    stop = threading.Event()
    admins = threading.Thread(
        target=approve_when_submitted,
        args=(sites, {"count_seed_crystals", "crystal_rows"}, stop),
        daemon=True,
    )
    admins.start()
    try:
        notebook = execute(
            "researcher_quickstart.ipynb",
            {
                "sites": [str(config.path) for config in sites.configs.values()],
                "email": RESEARCHER,
                "password_env": PASSWORD_ENV,
                "dataset": DATASET,
                "review_wait_s": 300,
                "run_timeout_s": 420,
                "release_wait_s": 300,
                "pooled_answers": True,
            },
            tmp_path,
        )
    finally:
        stop.set()
        admins.join(timeout=10)
    assert shows_widget(cell_outputs(notebook, "DatasetBrowser(factories)"))
    assert shows_png(cell_outputs(notebook, "draw_overlay("))
    assert shows_widget(cell_outputs(notebook, "RequestTracker(factories"))
    table = text_of(cell_outputs(notebook, "wait_for_results("))
    for factory in sites.configs:
        # The same images counted here directly give the same total as the approved run.
        expected = qc_summary(private_batch(factory))["total_count"]
        row = re.search(rf"{factory}\s+3\s+(\d+)", table)
        assert row is not None, table
        assert int(row.group(1)) == expected
    assert shows_png(cell_outputs(notebook, "plot_counts(results)"))
    assert shows_png(cell_outputs(notebook, "plot_csd(results)"))
    pooled = text_of(cell_outputs(notebook, "pooling.pooled("))
    expected = sum(qc_summary(private_batch(factory))["total_count"] for factory in sites.configs)
    secure_row = re.search(r"factory-a \+ factory-b\s+secure\s+6\s+(\d+)", pooled)
    assert secure_row is not None, pooled
    assert int(secure_row.group(1)) == expected  # the masked sum is exact
    assert "secure+dp" in pooled and "mock images" in pooled


def test_train_notebook_trains_a_few_steps_and_scores_them(tmp_path):
    out = tmp_path / "train"
    notebook = execute(
        "train_counter.ipynb", {"steps": 6, "pool_tiles": 4, "out": str(out)}, tmp_path
    )
    assert (out / "counter.pt").is_file() and (out / "checkpoint.pt").is_file()
    assert "6 steps in" in text_of(cell_outputs(notebook, "result = train("))
    scores = text_of(cell_outputs(notebook, "scores = pd.DataFrame"))
    assert "this run" in scores and "classical" in scores
    assert shows_png(cell_outputs(notebook, "draw_overlay("))
