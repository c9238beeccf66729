"""Wrap a researcher's ``f(images, datasite=None)`` into one syft function per dataset.

A dataset is stored as several assets (batches) and syft 0.9.5 passes each asset
as its own keyword argument (``**kwargs`` is refused by its client), so the
function a researcher writes for one image batch is wrapped in an entry function
with one parameter per asset. The entry merges the batches (lists are joined, the
rest comes from the first batch) and calls the researcher's function once::

    def count_crystals(datasite, images_000, images_001):
        def count_crystals(images, datasite=None):
            ...  # the researcher's source, unchanged
        batches = [images_000, images_001]
        merged = {key: ... for key in batches[0]}
        return count_crystals(merged, datasite=datasite)

syft reads a function's source with ``inspect.getsource``; the generated source is
registered in ``linecache`` under a unique pseudo file name so that works.
"""

from __future__ import annotations

import inspect
import itertools
import linecache
import textwrap
from collections.abc import Callable

from workbench.errors import WorkbenchError

_counter = itertools.count()


def entry_function(function: Callable, asset_params: list[str], preamble: str = "") -> Callable:
    """Build the entry function around `function` for assets named `asset_params`.

    Parameters
    ----------
    function : callable
        A plain top-level function whose first parameter takes one image batch dict
        (``images``, ``files``, ``camera``, ``pixel_size_um``); it may take
        ``datasite`` to report progress.
    asset_params : list of str
        One parameter name per asset, e.g. ``["images_000", "images_001"]``.
    preamble : str
        Lines that open the entry function's body (a pooling plan, for instance).

    Returns
    -------
    callable
        A function ``name(datasite, *asset_params)`` whose source ``inspect`` can read.

    Examples
    --------
    >>> import workbench.remote.counting as counting
    >>> entry = entry_function(counting.mean_intensity, ["images_000", "images_001"])
    >>> list(inspect.signature(entry).parameters)
    ['datasite', 'images_000', 'images_001']
    >>> batch = {"images": [[0, 2]], "files": ["a"], "camera": "legacy", "pixel_size_um": 2.0}
    >>> entry(None, batch, batch)["images"]
    2
    """
    source = entry_source(function, asset_params, preamble)
    filename = f"<workbench-entry-{next(_counter)}-{function.__name__}>"
    lines = source.splitlines(keepends=True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    namespace: dict = {}
    exec(compile(source, filename, "exec"), namespace)  # our own generated source
    return namespace[function.__name__]


def entry_source(function: Callable, asset_params: list[str], preamble: str = "") -> str:
    """Python source of the entry function (see the module docstring).

    Raises
    ------
    WorkbenchError
        If `function` is not a plain function whose source can be read.
    """
    if not inspect.isfunction(function) or function.__name__ == "<lambda>":
        raise WorkbenchError(f"{function!r}: submit a plain function defined with def")
    try:
        body = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        raise WorkbenchError(
            f"function {function.__name__}: its source cannot be read (define it in a file "
            "or a notebook cell)"
        ) from None
    if body.lstrip().startswith("@"):
        raise WorkbenchError(f"function {function.__name__}: submit it without decorators")
    parameters = list(inspect.signature(function).parameters)
    if not parameters or parameters[0] == "datasite":
        raise WorkbenchError(
            f"function {function.__name__}: its first parameter must take the image batch"
        )
    name = function.__name__
    progress = ", datasite=datasite" if "datasite" in parameters else ""
    batches = ", ".join(asset_params)
    return (
        f"def {name}(datasite, {batches}):\n"
        + textwrap.indent(preamble, "    ")
        + textwrap.indent(body, "    ")
        + f"    batches = [{batches}]\n"
        "    merged = {\n"
        "        key: [item for batch in batches for item in batch[key]]\n"
        "        if isinstance(value, list) else value\n"
        "        for key, value in batches[0].items()\n"
        "    }\n"
        f"    return {name}(merged{progress})\n"
    )
