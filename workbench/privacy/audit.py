"""An append-only, hash-chained audit log per factory (``state/audit.jsonl``).

Every entry records what happened (``kind``), who did it (``actor``), to which request,
when, and details; it carries the hash of the entry before it and its own hash over
all of that, certificate-transparency style. :func:`verify` walks the chain and names
the first entry that was edited, removed or reordered. Several processes of one
factory append (the datasite, its job workers, the admin's tools): a file lock keeps
the chain a chain.

Examples
--------
>>> import tempfile
>>> state = tempfile.mkdtemp()
>>> first = append(state, "request", actor="ana@uni.example", request="r1")
>>> second = append(state, "decision", actor="admin", request="r1", decision="approved")
>>> second["previous"] == first["hash"]
True
>>> verify(state) is None
True
>>> [entry["kind"] for entry in entries(state, request="r1")]
['request', 'decision']
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

AUDIT_FILE = "audit.jsonl"
GENESIS = "0" * 64
KINDS = (
    "request",
    "findings",
    "trial",
    "decision",
    "override",
    "run",
    "refusal",
    "held",
    "release",
    "withhold",
    "delivery",
    "adoption",
    "budget",
    "pooled",
    "kept",
)


def append(
    state_dir: str | Path, kind: str, *, actor: str, request: str = "", **details: Any
) -> dict:
    """Append one entry to the factory's log; return it (with its hash).

    Parameters
    ----------
    state_dir : str or Path
        The factory's state folder.
    kind : str
        One of :data:`KINDS`.
    actor : str
        Who: an e-mail, ``datasite`` for the server's own steps.
    request : str
        The code request (or tool) it concerns, if any.
    **details
        Plain JSON values (never pixels: sizes and hashes of values, not values).
    """
    if kind not in KINDS:
        raise WorkbenchError(f"audit: unknown entry kind {kind!r}")
    path = Path(state_dir) / AUDIT_FILE
    with _locked(path) as log:
        log.seek(0)
        lines = log.read().splitlines()
        previous = json.loads(lines[-1])["hash"] if lines else GENESIS
        entry = {
            "seq": len(lines) + 1,
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "kind": kind,
            "actor": actor,
            "request": request,
            "details": details,
            "previous": previous,
        }
        entry["hash"] = entry_hash(entry)
        log.seek(0, os.SEEK_END)
        log.write(json.dumps(entry, sort_keys=True) + "\n")
        log.flush()
        os.fsync(log.fileno())
    return entry


def entries(
    state_dir: str | Path,
    *,
    actor: str | None = None,
    request: str | None = None,
    since: str | None = None,
    kind: str | None = None,
) -> list[dict]:
    """The log's entries, oldest first, filtered by actor, request, kind and ISO date."""
    path = Path(state_dir) / AUDIT_FILE
    if not path.exists():
        return []
    found = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [
        entry
        for entry in found
        if (actor is None or entry["actor"] == actor)
        and (request is None or entry["request"] == request)
        and (kind is None or entry["kind"] == kind)
        and (since is None or entry["time"] >= since)
    ]


def verify(state_dir: str | Path) -> str | None:
    """None if the chain is whole; else one sentence naming the first broken entry.

    Examples
    --------
    >>> import tempfile
    >>> state = tempfile.mkdtemp()
    >>> _ = append(state, "run", actor="datasite", request="r1")
    >>> _ = append(state, "release", actor="admin", request="r1")
    >>> path = Path(state) / AUDIT_FILE
    >>> _ = path.write_text(path.read_text().replace('"run"', '"trial"'))
    >>> verify(state)
    'entry 1 was edited (its hash does not match its content)'
    """
    path = Path(state_dir) / AUDIT_FILE
    if not path.exists():
        return None
    previous = GENESIS
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            entry = json.loads(line)
        except ValueError:
            return f"line {number} is not a log entry"
        seq = entry.get("seq")
        if not isinstance(seq, int) or seq > number:
            return f"entry {number} is missing: the entry in its place says it is entry {seq}"
        if seq != number:
            return f"entry {seq} stands at position {number}: entries were reordered"
        if entry.get("previous") != previous:
            return f"entry {number} does not follow entry {number - 1} (one was removed or moved)"
        if entry_hash(entry) != entry.get("hash"):
            return f"entry {number} was edited (its hash does not match its content)"
        previous = entry["hash"]
    return None


def entry_hash(entry: dict) -> str:
    """SHA-256 over an entry's content and the hash before it (not its own hash)."""
    content = {key: value for key, value in entry.items() if key != "hash"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def value_digest(value: Any) -> str:
    """SHA-256 of a value as compact JSON: what the log keeps instead of the value."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@contextmanager
def _locked(path: Path) -> Iterator[Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "r+") as log:
        fcntl.flock(log, fcntl.LOCK_EX)
        try:
            yield log
        finally:
            fcntl.flock(log, fcntl.LOCK_UN)
