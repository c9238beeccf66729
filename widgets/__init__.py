"""ipywidgets UIs of the workbench, for JupyterLab; no business logic of their own.

- :class:`ReviewInbox` (factory admin): code requests, findings, trial on mock,
  approve / deny with a reason, compute on private data and release.
- :class:`DatasetBrowser` (researcher): datasets on every datasite, mock thumbnails.
- :class:`RequestTracker` (researcher): status per (request, factory), results.
- :class:`ResultView`: counts per factory and the crystal size distribution.
- :class:`AnnotationWidget` (factory): mark crystals on an image, saved as labels at
  the factory for ``workbench finetune --labels``.

Every action calls a function of :mod:`workbench.remote` (the annotation widget: of
:mod:`workbench.imaging.annotations`); this package never imports syft itself.
"""

from widgets.annotate import AnnotationWidget
from widgets.browser import DatasetBrowser
from widgets.inbox import ReviewInbox
from widgets.results import ResultView, plot_counts, plot_csd, results_table
from widgets.tracker import RequestTracker

__all__ = [
    "AnnotationWidget",
    "DatasetBrowser",
    "RequestTracker",
    "ResultView",
    "ReviewInbox",
    "plot_counts",
    "plot_csd",
    "results_table",
]
