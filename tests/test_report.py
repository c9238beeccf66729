"""Report machinery: templates, parameters, papermill execution, HTML, atomic writes."""

import nbformat
import pytest

from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.reports import (
    coerce_parameters,
    find_template,
    list_templates,
    report_file_name,
    run_report,
    template_defaults,
)


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
    assert "<img" in page and "data:image/png;base64," in page
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
