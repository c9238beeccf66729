"""Rectangular pieces of a frame (one object each) and how they go into the frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Patch:
    """One object's contribution to the frame, in a rectangle at ``(row, col)``.

    Attributes
    ----------
    row, col : int
        Frame position of the patch's top-left pixel (may lie outside the frame).
    transmission : np.ndarray
        float32 ``(h, w)``: fraction of the light passing; 1 where the object is not.
    mask : np.ndarray
        bool ``(h, w)``: the pixels the object covers (its label).
    stain : np.ndarray or None
        float32 ``(h, w)``: extra optical density that absorbs blue more than red.
    """

    row: int
    col: int
    transmission: np.ndarray
    mask: np.ndarray
    stain: np.ndarray | None = None


def _overlap(patch: Patch, shape: tuple[int, int]) -> tuple[slice, slice, slice, slice] | None:
    h, w = patch.mask.shape
    r0, c0 = max(patch.row, 0), max(patch.col, 0)
    r1, c1 = min(patch.row + h, shape[0]), min(patch.col + w, shape[1])
    if r0 >= r1 or c0 >= c1:
        return None
    return (
        slice(r0, r1),
        slice(c0, c1),
        slice(r0 - patch.row, r1 - patch.row),
        slice(c0 - patch.col, c1 - patch.col),
    )


def visible_mask(patch: Patch, labels: np.ndarray) -> np.ndarray:
    """Part of the patch's mask inside the frame and not yet labelled, patch-sized.

    Examples
    --------
    >>> labels = np.zeros((4, 4), np.int32); labels[0, 0] = 1
    >>> p = Patch(-1, -1, np.ones((3, 3), np.float32), np.ones((3, 3), bool))
    >>> int(visible_mask(p, labels).sum())
    3
    """
    out = np.zeros_like(patch.mask)
    where = _overlap(patch, labels.shape)
    if where is not None:
        fr, fc, pr, pc = where
        out[pr, pc] = patch.mask[pr, pc] & (labels[fr, fc] == 0)
    return out


def paint(
    log_transmission: np.ndarray,
    labels: np.ndarray,
    patch: Patch,
    label: int,
    *,
    on_top: bool,
    stain: np.ndarray | None = None,
) -> None:
    """Add `patch` into the frame's log transmission (and stain); write its label.

    `on_top` writes the label over what is there (a crystal above another); otherwise
    only on unlabelled pixels (an imperfection never hides a crystal's label).

    Examples
    --------
    >>> log_t, labels = np.zeros((4, 4), np.float32), np.zeros((4, 4), np.int32)
    >>> p = Patch(1, 1, np.full((2, 2), 0.5, np.float32), np.ones((2, 2), bool))
    >>> paint(log_t, labels, p, 7, on_top=True)
    >>> int(labels.sum()), round(float(np.exp(log_t[1, 1])), 3)
    (28, 0.5)
    """
    where = _overlap(patch, labels.shape)
    if where is None:
        return
    fr, fc, pr, pc = where
    log_transmission[fr, fc] += np.log(patch.transmission[pr, pc])
    if stain is not None and patch.stain is not None:
        stain[fr, fc] += patch.stain[pr, pc]
    mask = patch.mask[pr, pc]
    if not on_top:
        mask = mask & (labels[fr, fc] == 0)
    labels[fr, fc][mask] = label
