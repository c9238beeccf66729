"""What crosses the sandbox boundary: arrays and plain metadata in, JSON out.

A call is written as two length-prefixed JSON headers (the function's source and
name, then the value tree of its arguments with every array replaced by a reference)
followed by the arrays in ``.npy`` format; no pickle is ever read on either side. A
result is plain data: None, bools, numbers, strings, lists and dicts with string keys;
anything else is refused with its type named.

Examples
--------
>>> import io, numpy as np
>>> stream = io.BytesIO()
>>> batch = {"images": [np.zeros((2, 3), np.uint8)], "camera": "legacy"}
>>> write_call(stream, "def f(images):\\n    return 1\\n", "f", {"images": batch})
>>> _ = stream.seek(0)
>>> read_function(stream)[1]
'f'
>>> read_inputs(stream)["images"]["images"][0].shape
(2, 3)
>>> plain_result({"n": np.int64(3), "d": [1.5, None]})
{'n': 3, 'd': [1.5, None]}
"""

from __future__ import annotations

import json
import numbers
import struct
from typing import Any, BinaryIO

import numpy as np

from workbench.errors import WorkbenchError

_ARRAY = "\x00array"  # key of an array reference in the header; not a key data uses
_LENGTH = struct.Struct("<Q")
_MAX_DEPTH = 16


def write_call(stream: BinaryIO, source: str, function_name: str, kwargs: dict[str, Any]) -> None:
    """Write which function to run (`source`, `function_name`), then its `kwargs`.

    `kwargs` are plain values and numeric arrays. They are encoded before anything is
    written, so an input that cannot cross fails with nothing sent.

    Raises
    ------
    WorkbenchError
        If a value is of a type that cannot cross the boundary (named in the message).
    """
    arrays: list[np.ndarray] = []
    tree = _encode(kwargs, arrays, "inputs", 0)
    _write_header(stream, {"source": source, "function": function_name})
    _write_header(stream, tree)
    writer = _PipeEnd(stream.write)
    for array in arrays:
        np.lib.format.write_array(writer, array, allow_pickle=False)
    stream.flush()


def read_function(stream: BinaryIO) -> tuple[str, str]:
    """Read the ``(source, function_name)`` that :func:`write_call` wrote first.

    A started sandbox waits here until its run is handed over; :func:`read_inputs`
    then reads the arguments.
    """
    header = _read_header(stream)
    return str(header["source"]), str(header["function"])


def read_inputs(stream: BinaryIO) -> dict[str, Any]:
    """Read the arguments :func:`write_call` wrote after the function."""
    tree = _read_header(stream)
    arrays: dict[int, np.ndarray] = {}
    return _decode(tree, arrays, _PipeEnd(stream.read))


def _write_header(stream: BinaryIO, tree: Any) -> None:
    header = json.dumps(tree).encode()
    stream.write(_LENGTH.pack(len(header)))
    stream.write(header)


def _read_header(stream: BinaryIO) -> Any:
    (length,) = _LENGTH.unpack(stream.read(_LENGTH.size))
    return json.loads(stream.read(length))


class _PipeEnd:
    """One end of a pipe with only ``read`` or ``write``.

    numpy then streams chunks instead of calling ``tofile``/``fromfile``, which seek
    (a pipe cannot).
    """

    def __init__(self, method) -> None:
        setattr(self, method.__name__, method)


class NotPlainDataError(TypeError):
    """A result holds a value that is not plain data (the message names it)."""


def plain_result(value: Any, where: str = "result", depth: int = 0) -> Any:
    """`value` as plain JSON data; numpy scalars become Python numbers.

    Raises
    ------
    NotPlainDataError
        Naming the first value that is not plain data and where it sits.

    Examples
    --------
    >>> try:
    ...     plain_result({"mask": np.zeros(3)})
    ... except NotPlainDataError as error:
    ...     print(error)
    result['mask'] is a ndarray: results are numbers, strings, lists and dicts (use .tolist())
    """
    if depth > _MAX_DEPTH:
        raise NotPlainDataError(f"{where} is nested deeper than {_MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, list | tuple):
        return [plain_result(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise NotPlainDataError(
                    f"{where} has a key of type {type(key).__name__} (keys are strings)"
                )
        return {
            key: plain_result(item, f"{where}[{key!r}]", depth + 1) for key, item in value.items()
        }
    hint = " (use .tolist())" if isinstance(value, np.ndarray) else ""
    raise NotPlainDataError(
        f"{where} is a {type(value).__name__}: results are numbers, strings, lists and dicts{hint}"
    )


def _encode(value: Any, arrays: list[np.ndarray], where: str, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise WorkbenchError(f"{where}: nested deeper than {_MAX_DEPTH} levels")
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise WorkbenchError(f"{where}: arrays of dtype {value.dtype} cannot enter the sandbox")
        arrays.append(np.ascontiguousarray(value))
        return {_ARRAY: len(arrays) - 1}
    if isinstance(value, list | tuple):
        return [_encode(item, arrays, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(key, str) and key != _ARRAY for key in value):
            raise WorkbenchError(f"{where}: dict keys must be strings")
        return {
            key: _encode(item, arrays, f"{where}[{key!r}]", depth + 1)
            for key, item in value.items()
        }
    try:
        return plain_result(value, where, depth)
    except NotPlainDataError as error:
        raise WorkbenchError(f"{error}; it cannot enter the sandbox") from None


def _decode(tree: Any, arrays: dict[int, np.ndarray], stream: _PipeEnd) -> Any:
    if isinstance(tree, list):
        return [_decode(item, arrays, stream) for item in tree]
    if isinstance(tree, dict):
        if set(tree) == {_ARRAY}:
            # Arrays follow the header in the order their references were made, which is
            # also the order this depth-first walk meets them.
            index = int(tree[_ARRAY])
            arrays[index] = np.lib.format.read_array(stream, allow_pickle=False)
            return arrays[index]
        return {key: _decode(item, arrays, stream) for key, item in tree.items()}
    return tree
