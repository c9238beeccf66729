"""Report machinery: templates, parameters, papermill execution, HTML, atomic writes."""

import inspect
import re
import subprocess
import sys

import nbformat
import pytest
from jupyter_datasites import (
    DATASET,
    PASSWORD_ENV,
    RESEARCHER,
    RESEARCHER_PASSWORD,
    private_batch,
    shared_sites,
)

from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.remote.code_findings import scan_code
from workbench.remote.config import OutputRule
from workbench.remote.output_rule import output_rule_violation
from workbench.remote.review import approve, held, list_requests, release
from workbench.reports import (
    coerce_parameters,
    find_template,
    list_templates,
    report_file_name,
    run_report,
    template_defaults,
)
from workbench.reports.qc_request import qc_function, qc_function_name, qc_result
from workbench.reports.qc_summary import qc_summary


def write_template(folder, name, parameters_source, *cells):
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    parameters = nbformat.v4.new_code_cell(parameters_source)
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, *[nbformat.v4.new_code_cell(cell) for cell in cells]]
    nbformat.write(notebook, folder / f"{name}.ipynb")
    return folder / f"{name}.ipynb"


@pytest.fixture
def templates(tmp_path):
    folder = tmp_path / "templates"
    folder.mkdir()
    write_template(
        folder,
        "tiny",
        "factory = 'factory-a'\nbatch = ''\ncsd_bins = 20\nscale = 1.5\nstrict = False",
        "from workbench.errors import WorkbenchError\n"
        "if factory == 'nowhere':\n"
        "    raise WorkbenchError(f'unknown factory {factory!r}: choose factory-a')",
        "print(f'crystals per batch: {csd_bins * 7}')",
        "import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\n"
        "%matplotlib inline\nplt.plot([1, 2, 3])\nplt.show()",
    )
    write_template(folder, "broken", "x = 1", "1 / 0")
    return folder


def test_the_shipped_template_declares_the_qc_parameters():
    assert "crystal_qc" in list_templates()
    defaults = template_defaults(find_template("crystal_qc"))
    for name in ("factory", "dataset", "batch", "csd_bins", "method"):
        assert name in defaults


def test_unknown_template_names_the_known_ones(templates):
    with pytest.raises(WorkbenchError, match="unknown report template 'nope'.*tiny"):
        find_template("nope", templates)
    with pytest.raises(WorkbenchError, match="unknown report template"):
        find_template("../templates/tiny", templates)


def test_parameters_take_the_type_of_their_default(templates):
    defaults = template_defaults(templates / "tiny.ipynb")
    assert defaults == {
        "factory": "factory-a",
        "batch": "",
        "csd_bins": 20,
        "scale": 1.5,
        "strict": False,
    }
    given = {"csd_bins": "30", "scale": "2", "strict": "yes", "batch": "42"}
    assert coerce_parameters(defaults, given) == {
        "csd_bins": 30,
        "scale": 2.0,
        "strict": True,
        "batch": "42",
    }
    assert coerce_parameters(defaults, {"scale": 3}) == {"scale": 3}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"colour": "red"}, "unknown report parameter 'colour'"),
        ({"csd_bins": "many"}, "csd_bins='many': must be int"),
        ({"strict": "perhaps"}, "strict='perhaps': must be bool"),
        ({"csd_bins": 2.5}, "csd_bins=2.5: must be int"),
    ],
)
def test_bad_parameters_are_one_clear_error(templates, given, message):
    with pytest.raises(WorkbenchError, match=message):
        coerce_parameters(template_defaults(templates / "tiny.ipynb"), given)


def test_file_name_holds_the_given_parameters():
    name = report_file_name("crystal_qc", {"factory": "factory-a", "batch": "B/0042 x"})
    assert name == "crystal_qc__factory-factory-a__batch-B-0042-x.html"


def test_report_is_html_with_header_outputs_and_plot_but_no_code(templates, tmp_path):
    out = tmp_path / "out"
    path = run_report("tiny", {"batch": "B-0042", "csd_bins": "3"}, out, templates)
    assert path == out / "tiny__batch-B-0042__csd_bins-3.html"
    page = path.read_text()
    assert "crystals per batch: 21" in page
    assert re.search(r'<img [^>]*src="data:image/png;base64,', page)
    assert "B-0042" in page and "factory-a" in page  # header lists every parameter
    assert "matplotlib.use" not in page  # no input cells
    assert [p.name for p in out.iterdir()] == [path.name]


def test_failing_report_writes_nothing(templates, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(WorkbenchError) as raised:
        run_report("tiny", {"factory": "nowhere"}, out, templates)
    assert str(raised.value) == "report tiny: unknown factory 'nowhere': choose factory-a"
    with pytest.raises(
        WorkbenchError, match=r"report broken: cell \d+ failed with ZeroDivisionError"
    ):
        run_report("broken", {}, out, templates)
    assert list(out.iterdir()) == []


def run_cli(capsys, *args):
    """Run ``workbench report ARGS`` in this process; return (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as done:
        main(["report", *args])
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


def test_cli_bad_template_or_parameter_is_one_line_and_exit_2(tmp_path, capsys):
    out = tmp_path / "out"
    for args, message in [
        (("no_such_report",), "error: unknown report template 'no_such_report'"),
        (("crystal_qc", "-p", "colour", "red"), "error: unknown report parameter 'colour'"),
        (("crystal_qc", "-p", "csd_bins", "x"), "error: report parameter csd_bins='x'"),
        (("crystal_qc", "-p", "batch", "1", "-p", "batch", "2"), "given more than once"),
    ]:
        status, _, stderr = run_cli(capsys, *args, "--out", str(out))
        assert status == 2, stderr
        assert message in stderr
        assert len(stderr.strip().splitlines()) == 1
        assert not out.exists() or not any(out.iterdir())


def test_cli_lists_templates_with_parameters(capsys):
    main(["report", "--list"])  # returns normally: exit status 0
    listed = capsys.readouterr().out
    assert "crystal_qc:" in listed and "csd_bins=20" in listed


# -- the crystal QC report against real loopback datasites -------------------------
@pytest.fixture(scope="session")
def sites(request, tmp_path_factory):
    return shared_sites(request, tmp_path_factory)


@pytest.fixture
def analyst(sites, monkeypatch):
    """QC settings of the analyst (the test researcher account); password in the env."""
    monkeypatch.setenv(PASSWORD_ENV, RESEARCHER_PASSWORD)
    return {"email": RESEARCHER, "password_env": PASSWORD_ENV, "datasites_dir": str(sites.folder)}


def approve_qc(sites, factory, name):
    pending = list_requests(sites.admins[factory], status="pending")
    (request,) = [r for r in pending if r.code.service_func_name == name]
    approve(request)


def release_qc(sites, factory, name):
    (result,) = [r for r in held(sites.admins[factory]) if r.function == name]
    release(sites.admins[factory], result)


@pytest.mark.slow
def test_qc_report_asks_for_approval_then_publishes_the_released_numbers(sites, analyst, tmp_path):
    out = tmp_path / "out"
    parameters = {"factory": "factory-a", "dataset": DATASET, "batch": "B-0042", "csd_bins": "8"}
    # The first run of a new batch submits the QC request and stops (the report's first
    # cell is this call; running it directly saves a kernel start).
    with pytest.raises(WorkbenchError, match="submitted: the factory admin must approve"):
        qc_result("factory-a", DATASET, "B-0042", 8, **analyst)
    name = qc_function_name(DATASET, "B-0042", 8, "auto")
    approve_qc(sites, "factory-a", name)
    with pytest.raises(WorkbenchError, match="waits for the factory admin's release"):
        qc_result("factory-a", DATASET, "B-0042", 8, **analyst)
    release_qc(sites, "factory-a", name)

    path = run_report("crystal_qc", {**parameters, **analyst}, out)
    assert path.name == (
        "crystal_qc__factory-factory-a__dataset-line-1__batch-B-0042__csd_bins-8__method-auto.html"
    )
    assert list(out.iterdir()) == [path]
    expected = qc_summary(private_batch("factory-a"), batch="B-0042", csd_bins=8)
    assert expected["images"] == 2 and expected["total_count"] > 0
    page = path.read_text()
    assert f"2 images, {expected['total_count']} crystals" in page
    assert f"d50 {expected['d50_um']:g} µm" in page
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) == 2  # both plots
    assert "qc_result(" not in page  # no input cells
    assert RESEARCHER_PASSWORD not in page


@pytest.mark.slow
def test_qc_result_names_a_missing_dataset_and_an_empty_batch(sites, analyst):
    settings = {**analyst, "csd_bins": 5}
    with pytest.raises(WorkbenchError, match="factory-b has no dataset 'line-9': choose one of"):
        qc_result("factory-b", "line-9", "B-0042", **settings)
    with pytest.raises(WorkbenchError, match="submitted"):
        qc_result("factory-b", DATASET, "B-9999", **settings)
    name = qc_function_name(DATASET, "B-9999", 5, "auto")
    approve_qc(sites, "factory-b", name)
    with pytest.raises(WorkbenchError, match="release"):
        qc_result("factory-b", DATASET, "B-9999", **settings)
    release_qc(sites, "factory-b", name)
    with pytest.raises(WorkbenchError, match="batch 'B-9999' has no images in dataset 'line-1'"):
        qc_result("factory-b", DATASET, "B-9999", **settings)


def test_qc_settings_are_checked_before_any_login(monkeypatch):
    monkeypatch.delenv("WORKBENCH_RESEARCHER_PASSWORD", raising=False)
    with pytest.raises(
        WorkbenchError, match="unknown factory 'factory-z': choose one of factory-a"
    ):
        qc_result("factory-z", email="x@y.example")
    with pytest.raises(WorkbenchError, match="csd_bins=0: must be a whole number from 1 to 100"):
        qc_result("factory-a", csd_bins=0, email="x@y.example")
    with pytest.raises(WorkbenchError, match="unknown method 'magic'"):
        qc_result("factory-a", method="magic", email="x@y.example")
    with pytest.raises(WorkbenchError, match="WORKBENCH_RESEARCHER_PASSWORD is not set"):
        qc_result("factory-a", email="x@y.example")


def test_qc_summary_keeps_only_the_batch_and_releases_aggregates_only():
    batch = private_batch("factory-a")
    whole, one = qc_summary(batch, csd_bins=6), qc_summary(batch, batch="B-0043", csd_bins=6)
    assert (whole["images"], one["images"]) == (3, 1)
    assert sum(whole["csd_counts"]) == whole["total_count"]
    assert len(whole["csd_edges_um"]) == 7
    assert output_rule_violation(whole, OutputRule()) is None
    assert not any("B-00" in str(value) for value in whole.values())  # no file names
    assert qc_summary(batch, batch="B-004")["images"] == 0  # a prefix is not a batch


def test_qc_function_source_is_what_the_admin_reads():
    function = qc_function(DATASET, "B-0042", 8, "auto")
    source = inspect.getsource(function)
    assert function.__name__ == qc_function_name(DATASET, "B-0042", 8, "auto")
    assert "qc_summary(images, batch='B-0042', csd_bins=8, method='auto'" in source
    assert scan_code(source) == []  # no automatic findings
    assert qc_function_name(DATASET, "B-0042", 8, "auto") != qc_function_name(
        DATASET, "B-0042", 9, "auto"
    )


@pytest.mark.slow
def test_cli_unknown_factory_is_one_line_and_no_report(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "report", "crystal_qc", "-p", "factory", "factory-z",
         "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: report crystal_qc: unknown factory 'factory-z': choose one of factory-a, factory-b"
    )
    assert list(out.iterdir()) == []
