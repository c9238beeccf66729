"""Run a parameterised report notebook with papermill and publish it as one HTML file.

A report template is a notebook in ``reports/templates/`` whose cell tagged
``parameters`` declares every parameter with its default (papermill's convention).
:func:`run_report` checks the parameters against those defaults, executes the
notebook, converts it to HTML without input cells, with a header that lists the
parameters, and writes it atomically: a temporary file renamed on success, so a
failed run never leaves a half-written report behind.

A template reports a user error (unknown factory, empty dataset) by raising
:class:`~workbench.errors.WorkbenchError` in a cell; :func:`run_report` turns it into
one :class:`WorkbenchError` with the same sentence.

Examples
--------
>>> from workbench.reports import run_report
>>> run_report("crystal_qc", {"factory": "factory-a", "batch": "B-0042"})  # doctest: +SKIP
PosixPath('.../reports/out/crystal_qc__factory-factory-a__batch-B-0042.html')
"""

from __future__ import annotations

import ast
import html
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import AsyncKernelManager

from workbench.errors import WorkbenchError
from workbench.files import write_atomically

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = REPO_ROOT / "reports" / "templates"
OUT_DIR = REPO_ROOT / "reports" / "out"
KERNEL_NAME = "python3"
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def list_templates(templates_dir: str | Path | None = None) -> list[str]:
    """Names of the report templates (notebook stems) in `templates_dir`.

    Examples
    --------
    >>> "crystal_qc" in list_templates()
    True
    """
    folder = Path(templates_dir) if templates_dir is not None else TEMPLATES_DIR
    return sorted(path.stem for path in folder.glob("*.ipynb"))


def find_template(name: str, templates_dir: str | Path | None = None) -> Path:
    """Path of the template called `name`, or WorkbenchError naming the known ones.

    Examples
    --------
    >>> find_template("crystal_qc").name
    'crystal_qc.ipynb'
    """
    folder = Path(templates_dir) if templates_dir is not None else TEMPLATES_DIR
    path = folder / f"{name}.ipynb"
    if "/" in name or not path.is_file():
        known = ", ".join(list_templates(folder)) or "none"
        raise WorkbenchError(f"unknown report template {name!r}: choose one of {known}")
    return path


def template_defaults(template: str | Path) -> dict[str, Any]:
    """Parameters a template declares, with their default values, in cell order.

    Parameters
    ----------
    template : str or Path
        Path of a notebook with a cell tagged ``parameters``.

    Returns
    -------
    dict
        Parameter name -> default (a Python literal; the source text if it is not one).

    Examples
    --------
    >>> template_defaults(find_template("crystal_qc"))["csd_bins"]
    20
    """
    import papermill

    try:
        declared = papermill.inspect_notebook(str(template))
    except ValueError as error:  # no kernel or language in the notebook's metadata
        raise WorkbenchError(f"report template {Path(template).name}: {error}") from None
    if not declared:
        raise WorkbenchError(f"report template {Path(template).name}: no cell tagged 'parameters'")
    defaults = {}
    for name, spec in declared.items():
        try:
            defaults[name] = ast.literal_eval(spec["default"])
        except (ValueError, SyntaxError):
            defaults[name] = spec["default"]
    return defaults


def coerce_parameters(defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Check `given` against a template's `defaults` and convert text to the default's type.

    Values typed on a command line arrive as text; each is converted to the type of
    the parameter's default (bool, int, float, str). A parameter whose default is
    ``None`` or a list takes any Python literal, else the text itself.

    Raises
    ------
    WorkbenchError
        For a parameter the template does not declare or a value of the wrong type.

    Examples
    --------
    >>> coerce_parameters({"csd_bins": 20, "batch": ""}, {"csd_bins": "30"})
    {'csd_bins': 30}
    """
    coerced = {}
    for name, value in given.items():
        if name not in defaults:
            known = ", ".join(defaults)
            raise WorkbenchError(f"unknown report parameter {name!r}: choose among {known}")
        coerced[name] = _coerce(name, value, defaults[name])
    return coerced


def _coerce(name: str, value: Any, default: Any) -> Any:
    kind = type(default)
    if not isinstance(value, str) or kind is str:
        if default is None or isinstance(value, kind) or (kind is float and _is_int(value)):
            return value
        raise WorkbenchError(
            f"report parameter {name}={value!r}: must be {kind.__name__}, like {default!r}"
        )
    text = value.strip()
    if kind is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
    elif kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    else:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return value
    raise WorkbenchError(
        f"report parameter {name}={value!r}: must be {kind.__name__}, like {default!r}"
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def report_file_name(
    template: str, parameters: Mapping[str, Any], names: Sequence[str] | None = None
) -> str:
    """File name of a report: the template name, then parameters and their values.

    Parameters
    ----------
    template : str
        Template name.
    parameters : mapping
        Parameter values.
    names : sequence of str, optional
        The parameters that name a report (a template's ``name_parameters``), in
        order; those with an empty value are left out. Every one of `parameters`
        when None.

    Characters other than letters, digits, ``.``, ``_`` and ``-`` become ``-``.

    Examples
    --------
    >>> report_file_name("crystal_qc", {"factory": "factory-a", "batch": "B-0042"})
    'crystal_qc__factory-factory-a__batch-B-0042.html'
    >>> report_file_name("crystal_qc", {"factory": "factory-a", "batch": "", "email": "x"},
    ...                  ["factory", "batch"])
    'crystal_qc__factory-factory-a.html'
    """
    chosen = list(parameters) if names is None else names
    parts = [template] + [
        f"{name}-{parameters[name]}" for name in chosen if str(parameters.get(name, ""))
    ]
    return "__".join(re.sub(r"[^A-Za-z0-9._-]+", "-", str(part)) for part in parts) + ".html"


def run_report(
    template: str,
    parameters: Mapping[str, Any] | None = None,
    out_dir: str | Path | None = None,
    templates_dir: str | Path | None = None,
    timeout_s: float = 600.0,
    progress: bool = False,
) -> Path:
    """Execute a report template with `parameters` and write it as HTML into `out_dir`.

    Parameters
    ----------
    template : str
        Template name, a notebook stem in `templates_dir` (see :func:`list_templates`).
    parameters : mapping, optional
        Values for the template's parameters; text is converted to each default's type.
    out_dir : str or Path, optional
        Where the HTML goes; ``reports/out/`` of the repository by default.
    templates_dir : str or Path, optional
        Where templates are looked up; ``reports/templates/`` by default.
    timeout_s : float
        Longest time one cell may run.
    progress : bool
        Show papermill's cell progress bar on stderr.

    Returns
    -------
    Path
        The HTML report, named by :func:`report_file_name` after the template's
        ``name_parameters`` (notebook metadata ``workbench``), else the given ones.

    Raises
    ------
    WorkbenchError
        For an unknown template or parameter, a bad value, or a failed cell; no report
        file is written then.

    Examples
    --------
    >>> path = run_report("crystal_qc", {"factory": "factory-a"})  # doctest: +SKIP
    """
    import papermill

    path = find_template(template, templates_dir)
    defaults = template_defaults(path)
    given = coerce_parameters(defaults, parameters or {})
    out = Path(out_dir) if out_dir is not None else OUT_DIR
    out.mkdir(parents=True, exist_ok=True)
    settings = nbformat.read(path, as_version=4).metadata.get("workbench", {})
    names = settings.get("name_parameters")
    target = out / report_file_name(template, {**defaults, **given} if names else given, names)
    with tempfile.TemporaryDirectory(prefix="workbench-report-") as work:
        executed = Path(work) / path.name
        try:
            papermill.execute_notebook(
                str(path),
                str(executed),
                parameters=given,
                kernel_name=KERNEL_NAME,
                progress_bar=progress,
                request_save_on_cell_execute=False,
                execution_timeout=timeout_s,
                cwd=os.getcwd(),
                # The kernel logs its own shutdown after a failed cell; the user gets
                # one error line from us instead.
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
                kernel_manager_class=QuietKernelManager,
            )
        except papermill.PapermillExecutionError as failed:
            raise _report_error(template, failed) from None
        notebook = nbformat.read(executed, as_version=4)
    page = notebook_to_html(notebook, settings.get("title", template), {**defaults, **given})
    write_atomically(target, page)
    return target


class QuietKernelManager(AsyncKernelManager):
    """A kernel whose process stderr stays off the user's terminal.

    Cell output travels over the kernel protocol, not the process's stderr; what
    lands there is the kernel's own logging, e.g. a tornado traceback when it is shut
    down after a failed cell, which must not follow the one ``error:`` line.
    """

    async def start_kernel(self, **kwargs: Any) -> None:
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        await super().start_kernel(**kwargs)


def _report_error(template: str, failed: Exception) -> WorkbenchError:
    # A WorkbenchError raised by a cell already is the one sentence for the user.
    if failed.ename == "WorkbenchError":
        return WorkbenchError(f"report {template}: {failed.evalue}")
    return WorkbenchError(
        f"report {template}: cell {failed.exec_count} failed with {failed.ename}: {failed.evalue}"
    )


def notebook_to_html(
    notebook: nbformat.NotebookNode, title: str, parameters: Mapping[str, Any]
) -> str:
    """An executed notebook as one self-contained HTML page: outputs only, parameters on top.

    Plots are embedded as base64 PNG ``<img>`` tags, so the page needs no other file.
    Text written to stderr (library warnings, progress bars) is left out: a report
    shows results, not logs.

    Examples
    --------
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("Hello")])
    >>> "factory-a" in notebook_to_html(nb, "QC", {"factory": "factory-a"})
    True
    """
    from nbconvert import HTMLExporter

    stamped = nbformat.from_dict(notebook)
    for cell in stamped.cells:
        if cell.cell_type == "code":
            cell.outputs = [out for out in cell.outputs if out.get("name") != "stderr"]
    stamped.cells.insert(0, nbformat.v4.new_markdown_cell(_header(title, parameters)))
    exporter = HTMLExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    page, _ = exporter.from_notebook_node(stamped, resources={"metadata": {"name": title}})
    return page


def _header(title: str, parameters: Mapping[str, Any]) -> str:
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = "\n".join(f"| `{name}` | {_cell(value)} |" for name, value in parameters.items())
    return f"# {title}\n\nGenerated {generated}.\n\n| parameter | value |\n|---|---|\n{rows}\n"


def _cell(value: Any) -> str:
    # Text as it is (an empty one marked), anything else as Python writes it.
    text = (value or "(empty)") if isinstance(value, str) else repr(value)
    return html.escape(text).replace("|", "&#124;")


