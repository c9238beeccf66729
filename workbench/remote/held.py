"""Results held at the factory until its admin releases them (``release = "review"``).

A finished run of researcher code on private data does not go to the researcher:
the datasite writes its value into ``state/held/<token>.json`` (mode 0600, the state
folder is 0700) and ends the job with :data:`HELD_MESSAGE`. The admin reads the held
values (:func:`held_results`), and releases one or withholds it with a reason by
tagging the code request (:func:`release_tag`, :func:`withheld_tags`); request tags
can only be set by the admin. The researcher's next run of that request then gets
exactly the released value, without the code running again, or the reason.

The token is random: the researcher sees it in the request's tags, and a hash of
the value there would let them test guesses of a small result.

Examples
--------
>>> import tempfile
>>> state = tempfile.mkdtemp()
>>> held = hold(state, code_id="c1", function="f", researcher="ana@uni.example", value={"n": 3})
>>> [h.value for h in held_results(state)]
[{'n': 3}]
>>> pending_for_code(state, "c1").token == held.token
True
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HELD_FOLDER = "held"
HELD_MESSAGE = "held for release review"
RELEASED_TAG = "workbench:released:"
WITHHELD_TAG = "workbench:withheld:"
WITHHELD_REASON_TAG = "workbench:withheld-reason:"
APPROVED_CODE_TAG = "workbench:approved-code:"
_TOKEN_IN_MESSAGE = re.compile(HELD_MESSAGE + r" by .* \(ref ([0-9a-f]{16})\)")


@dataclass(frozen=True)
class HeldResult:
    """One result waiting at the factory.

    Attributes
    ----------
    token : str
        Random id, also in the release tag.
    code_id, function, researcher : str
        The request's code, its function name and who asked.
    held_at : str
        When the run finished (UTC, ISO 8601).
    value : object
        Exactly what the researcher gets if it is released.
    size_bytes : int
        Size of `value` as compact JSON.
    delivered : bool
        True once the researcher has received it.
    """

    token: str
    code_id: str
    function: str
    researcher: str
    held_at: str
    value: Any
    size_bytes: int
    delivered: bool = False


def hold(
    state_dir: str | Path, *, code_id: str, function: str, researcher: str, value: Any
) -> HeldResult:
    """Keep `value` at the factory; return its record."""
    folder = Path(state_dir) / HELD_FOLDER
    folder.mkdir(mode=0o700, exist_ok=True)
    text = json.dumps(value, separators=(",", ":"))
    held = HeldResult(
        token=secrets.token_hex(8),
        code_id=code_id,
        function=function,
        researcher=researcher,
        held_at=datetime.now(UTC).isoformat(timespec="seconds"),
        value=value,
        size_bytes=len(text.encode()),
    )
    _write(folder / f"{held.token}.json", held)
    return held


def held_results(state_dir: str | Path, *, delivered: bool = False) -> list[HeldResult]:
    """Held results, oldest first; with `delivered`, also those already received."""
    folder = Path(state_dir) / HELD_FOLDER
    records = [_read(path) for path in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    records = [record for record in records if delivered or not record.delivered]
    return sorted(records, key=lambda record: record.held_at)


def pending_for_code(state_dir: str | Path, code_id: str) -> HeldResult | None:
    """The undelivered held result of one request's code, if any."""
    return next((h for h in held_results(state_dir) if h.code_id == code_id), None)


def mark_delivered(state_dir: str | Path, held: HeldResult, delivered: bool = True) -> None:
    """Record that the researcher received `held` (the file stays, for the record).

    ``delivered=False`` takes that back: the delivering run died before syft stored
    the value (see :mod:`workbench.remote._recovery`).
    """
    record = HeldResult(**{**held.__dict__, "delivered": delivered})
    _write(Path(state_dir) / HELD_FOLDER / f"{held.token}.json", record)


def release_tag(held: HeldResult) -> str:
    """The request tag that releases `held`."""
    return f"{RELEASED_TAG}{held.token}"


def decision_tags(held: HeldResult) -> list[str]:
    """The tags of either decision on `held` (released or withheld)."""
    return [release_tag(held), f"{WITHHELD_TAG}{held.token}"]


def withheld_tags(held: HeldResult, reason: str) -> list[str]:
    """The request tags that withhold `held`, with the reason the researcher sees."""
    return [f"{WITHHELD_TAG}{held.token}", f"{WITHHELD_REASON_TAG}{reason}"]


def approved_code_tag(code_hash: str) -> str:
    """The request tag with which the admin's review approves exactly this code."""
    return f"{APPROVED_CODE_TAG}{code_hash}"


def held_message(function: str, factory: str, token: str) -> str:
    """What the researcher's run says while its result waits (see :func:`token_in`).

    Examples
    --------
    >>> token_in(held_message("f", "factory-a", "0123456789abcdef"))
    '0123456789abcdef'
    """
    return f"result of {function} {HELD_MESSAGE} by {factory}'s admin (ref {token})"


def token_in(message: str) -> str | None:
    """The held result's token in a run's message, if the run's result was held."""
    found = _TOKEN_IN_MESSAGE.search(message or "")
    return found.group(1) if found else None


def withheld_reason(tags: list[str]) -> str | None:
    """The admin's reason among a request's tags, if a result was withheld."""
    return next(
        (t[len(WITHHELD_REASON_TAG) :] for t in tags if t.startswith(WITHHELD_REASON_TAG)), None
    )


def _write(path: Path, held: HeldResult) -> None:
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(held.__dict__, out)
    os.replace(temporary, path)  # never a half-written record


def _read(path: Path) -> HeldResult:
    return HeldResult(**json.loads(path.read_text()))
