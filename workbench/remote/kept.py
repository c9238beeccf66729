"""Files a researcher's run left at the factory: kept there, never sent to the researcher.

A run that writes into its keep folder (:mod:`workbench.sandbox.keep`; the weights of a
counter fine-tuned on the factory's labelled frames, :func:`workbench.remote.counting.
finetune_counter`) gets its files stored here, in ``state/kept/<token>/`` (the state
folder is 0700, the files 0600), with a record of who asked and what each file's size
and sha256 are. The researcher gets the function's value only (which may name the
sha256 of what was kept: a number, not the weights).

The factory's admin lists what is kept (:func:`kept_outputs`, ``workbench datasite
kept``), uses it at the factory (``workbench count --weights state/kept/<token>/
counter.pt``), and may release it by copying it out (:func:`export_kept`, ``workbench
datasite kept --release TOKEN --out DIR``): that is the release decision for files,
which :func:`export_kept` records in the audit log. Weights learned from private images
can carry traces of them, so nothing leaves without that decision.

Examples
--------
>>> import tempfile
>>> state = tempfile.mkdtemp()
>>> kept = keep(state, request="r1", function="f", researcher="ana@uni.example",
...             files={"counter.pt": b"weights"})
>>> [k.files["counter.pt"]["bytes"] for k in kept_outputs(state)]
[7]
>>> (kept_folder(state, kept.token) / "counter.pt").read_bytes()
b'weights'
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.privacy import audit
from workbench.sandbox.keep import is_kept_name

KEPT_FOLDER = "kept"
RECORD = "kept.json"


@dataclass(frozen=True)
class KeptOutput:
    """The files one run left at the factory.

    Attributes
    ----------
    token : str
        Random id; the folder ``state/kept/<token>/`` holds the files.
    request, function, researcher : str
        The code request, its function and who asked.
    kept_at : str
        When the run finished (UTC, ISO 8601).
    files : dict
        ``{name: {"bytes": size, "sha256": hex digest}}``.
    """

    token: str
    request: str
    function: str
    researcher: str
    kept_at: str
    files: dict[str, dict]

    def describe_files(self) -> str:
        """One line naming each file with its size and the start of its sha256.

        Examples
        --------
        >>> KeptOutput("t", "r", "f", "a", "now", {"w.pt": {"bytes": 2_500_000,
        ...     "sha256": "0d37421b86f89fcf"}}).describe_files()
        'w.pt (2.5 MB, sha256 0d37421b86f8)'
        """
        return ", ".join(
            f"{name} ({facts['bytes'] / 1e6:.1f} MB, sha256 {facts['sha256'][:12]})"
            for name, facts in self.files.items()
        )


def keep(
    state_dir: str | Path, *, request: str, function: str, researcher: str, files: dict[str, bytes]
) -> KeptOutput:
    """Store `files` in a new folder of the factory's state; return their record.

    Raises
    ------
    WorkbenchError
        For a name that is not a plain file name (the sandbox's report is untrusted).
    """
    for name in files:
        if not is_kept_name(name):
            raise WorkbenchError(f"kept file name {name[:60]!r} is not a plain file name")
    token = secrets.token_hex(8)
    folder = kept_folder(state_dir, token)
    folder.parent.mkdir(mode=0o700, exist_ok=True)
    staging = folder.with_name(f".{token}.partial")
    staging.mkdir(mode=0o700)
    for name, data in files.items():
        descriptor = os.open(staging / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
    record = KeptOutput(
        token=token,
        request=request,
        function=function,
        researcher=researcher,
        kept_at=datetime.now(UTC).isoformat(timespec="seconds"),
        files={
            name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in files.items()
        },
    )
    (staging / RECORD).write_text(json.dumps(asdict(record), indent=1))
    os.replace(staging, folder)  # whole or not at all
    return record


def kept_folder(state_dir: str | Path, token: str) -> Path:
    """The folder of one run's kept files."""
    return Path(state_dir) / KEPT_FOLDER / token


def kept_outputs(state_dir: str | Path) -> list[KeptOutput]:
    """Every run's kept files, oldest first."""
    root = Path(state_dir) / KEPT_FOLDER
    records = [
        KeptOutput(**json.loads(path.read_text()))
        for path in sorted(root.glob(f"*/{RECORD}"))
        if not path.parent.name.startswith(".")  # a keep cut off half-way
    ]
    return sorted(records, key=lambda record: record.kept_at)


def kept_output(state_dir: str | Path, token: str) -> KeptOutput:
    """The kept files of `token`.

    Raises
    ------
    WorkbenchError
        When the factory keeps nothing under `token`.
    """
    found = [record for record in kept_outputs(state_dir) if record.token == token]
    if not found:
        raise WorkbenchError(f"kept {token}: no such kept output at this factory")
    return found[0]


def export_kept(state_dir: str | Path, token: str, out: str | Path, *, by: str) -> list[Path]:
    """Copy the kept files of `token` into the new folder `out` (the admin's release).

    Each file is checked against its recorded sha256 first; the release is written to
    the factory's audit log as done `by` the admin (e-mail).

    Raises
    ------
    WorkbenchError
        For an unknown token, an `out` that exists already, or a file that changed
        since it was kept.
    """
    record = kept_output(state_dir, token)
    out = Path(out)
    if out.exists():
        raise WorkbenchError(f"{out}: already exists; name a new folder to release into")
    folder = kept_folder(state_dir, token)
    for name, facts in record.files.items():
        if hashlib.sha256((folder / name).read_bytes()).hexdigest() != facts["sha256"]:
            raise WorkbenchError(f"kept {token}: {name} changed since it was kept; not released")
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in record.files:
        shutil.copyfile(folder / name, staging / name)
    os.replace(staging, out)
    audit.append(
        state_dir,
        "kept",
        actor=by,
        request=record.request,
        function=record.function,
        token=token,
        released_to=str(out),
        files=record.files,
    )
    return [out / name for name in record.files]
