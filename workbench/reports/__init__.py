"""Parameterised QC reports: papermill-executed notebooks published as HTML.

Examples
--------
>>> from workbench.reports import list_templates
>>> "crystal_qc" in list_templates()
True
"""

from workbench.reports.execute import (
    coerce_parameters,
    find_template,
    list_templates,
    notebook_to_html,
    report_file_name,
    run_report,
    template_defaults,
)

__all__ = [
    "coerce_parameters",
    "find_template",
    "list_templates",
    "notebook_to_html",
    "report_file_name",
    "run_report",
    "template_defaults",
]
