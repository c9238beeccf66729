"""The output rule: what a result may hold before it leaves a factory.

A released result is an aggregate: numbers, short lists, small dicts and histograms,
short strings. :func:`output_rule_violation` walks a value and names the first rule it
breaks, or returns None. The datasite applies it to every non-admin run (see
``_hardening.py``); the review functions apply it to trial runs and deposited results.

Examples
--------
>>> import numpy as np
>>> from workbench.remote.config import OutputRule
>>> output_rule_violation({"count": 12, "csd_um": [10.5, 20.1, 31.0]}, OutputRule()) is None
True
>>> output_rule_violation(np.zeros((512, 640)), OutputRule())
'a 2-D array of 512 x 640 is larger than 32 x 32'
"""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass

import numpy as np

from workbench.remote.config import OutputRule

_MAX_DEPTH = 8  # nesting deeper than this is not a summary any more
# Request tag an admin sets (through review.approve(..., override=True)) to release a
# result that breaks the rule; the datasite checks for it before refusing.
OVERRIDE_TAG = "workbench:override"


@dataclass(frozen=True)
class Violation:
    """A broken part of the output rule.

    Attributes
    ----------
    rule : str
        The rule's field name (``max_numbers``, ``max_result_bytes``...), or ``type``.
        This is all a researcher is told: the details carry numbers the function chose.
    detail : str
        One sentence for the factory admin.
    """

    rule: str
    detail: str


def output_rule_violation(value: object, rule: OutputRule) -> str | None:
    """One sentence naming the first part of the output rule that `value` breaks, or None.

    See :func:`check_output`.

    Examples
    --------
    >>> output_rule_violation("x" * 300, OutputRule())
    'a string of 300 characters is longer than the 200 allowed'
    """
    broken = check_output(value, rule)
    return broken.detail if broken else None


def check_output(value: object, rule: OutputRule) -> Violation | None:
    """The first part of the output rule that `value` breaks, or None.

    Allowed: None, bools, numbers (Python or numpy scalars), strings up to
    ``rule.max_string_length``, lists/tuples/dicts of those (string or number keys),
    1-D arrays, and 2-D arrays or lists of lists up to ``rule.max_matrix_side`` on a
    side; at most ``rule.max_numbers`` numbers in all, and at most
    ``rule.max_result_bytes`` bytes as compact JSON (strings and keys count, so no
    part of a result is unbounded). Anything else (bytes, images, tensors, data
    frames, objects) is refused.

    Parameters
    ----------
    value : object
        A function's result.
    rule : OutputRule
        The datasite's limits.

    Returns
    -------
    Violation or None
        The broken rule, or None when `value` may be released.

    Examples
    --------
    >>> from workbench.remote.config import OutputRule
    >>> check_output(list(range(2000)), OutputRule()).detail
    'the result holds 2000 numbers, more than the 1024 allowed'
    >>> check_output(b"raw", OutputRule()).rule
    'type'
    >>> check_output({f"k{i:05d}": True for i in range(2000)}, OutputRule()).rule
    'max_result_bytes'
    """
    try:
        numbers_held = _count_numbers(value, rule, depth=0)
    except _RuleBrokenError as broken:
        return Violation(broken.rule, str(broken))
    if numbers_held > rule.max_numbers:
        return Violation(
            "max_numbers",
            f"the result holds {numbers_held} numbers, more than the {rule.max_numbers} allowed",
        )
    size = len(json.dumps(value, separators=(",", ":"), default=_array_as_list).encode())
    if size > rule.max_result_bytes:
        return Violation(
            "max_result_bytes",
            f"the result is {size} bytes as JSON, more than the {rule.max_result_bytes} allowed",
        )
    return None


def too_few_images(n_images: int, rule: OutputRule) -> Violation | None:
    """The ``min_images`` rule: a request runs only on at least that many images.

    Examples
    --------
    >>> too_few_images(2, OutputRule()).detail
    'the request reads 2 images, fewer than the 3 required'
    """
    if n_images >= rule.min_images:
        return None
    return Violation(
        "min_images",
        f"the request reads {n_images} images, fewer than the {rule.min_images} required",
    )


def _array_as_list(value: object) -> object:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(type(value).__name__)


class _RuleBrokenError(Exception):
    """Raised inside the walk with the sentence naming the broken rule."""

    def __init__(self, detail: str, rule: str) -> None:
        super().__init__(detail)
        self.rule = rule


def _count_numbers(value: object, rule: OutputRule, depth: int) -> int:
    if depth > _MAX_DEPTH:
        raise _RuleBrokenError(f"the result is nested deeper than {_MAX_DEPTH} levels", "depth")
    if value is None or isinstance(value, bool | np.bool_):
        return 0
    if isinstance(value, numbers.Number | np.number):
        return 1
    if isinstance(value, str):
        if len(value) > rule.max_string_length:
            raise _RuleBrokenError(
                f"a string of {len(value)} characters is longer than the "
                f"{rule.max_string_length} allowed",
                "max_string_length",
            )
        return 0
    if isinstance(value, np.ndarray):
        return _count_array(value, rule)
    if isinstance(value, list | tuple):
        _check_matrix_shape(value, rule)
        return sum(_count_numbers(item, rule, depth + 1) for item in value)
    if isinstance(value, dict):
        return sum(
            _count_numbers(key, rule, depth + 1) + _count_numbers(item, rule, depth + 1)
            for key, item in value.items()
        )
    raise _RuleBrokenError(
        f"values of type {type(value).__name__} are not allowed "
        "(only numbers, short strings, lists, dicts and small arrays)",
        "type",
    )


def _count_array(array: np.ndarray, rule: OutputRule) -> int:
    if array.dtype.kind not in "biuf":
        raise _RuleBrokenError(
            f"arrays of dtype {array.dtype} are not allowed (numbers only)", "type"
        )
    if array.ndim > 2:
        raise _RuleBrokenError(f"a {array.ndim}-D array is not allowed (at most 2-D)", "type")
    if array.ndim == 2:
        _check_side(array.shape, rule)
    return int(array.size)


def _check_matrix_shape(items: list | tuple, rule: OutputRule) -> None:
    # A list of equal-length lists of numbers is a matrix: same limit as a 2-D array.
    rows = [row for row in items if isinstance(row, list | tuple)]
    if len(items) > 1 and len(rows) == len(items):
        _check_side((len(rows), max(len(row) for row in rows)), rule)


def _check_side(shape: tuple[int, int], rule: OutputRule) -> None:
    side = rule.max_matrix_side
    if shape[0] > side or shape[1] > side:
        raise _RuleBrokenError(
            f"a 2-D array of {shape[0]} x {shape[1]} is larger than {side} x {side}",
            "max_matrix_side",
        )
