"""Tools: named, versioned, hash-pinned counting methods, published to factories and adopted.

A *tool* is one counting method of :data:`workbench.imaging.pipeline.METHODS` with
everything that decides its numbers pinned by sha256: the Python modules it runs
(the import closure of the pipeline and of the method's module inside ``workbench``),
its weights, its parameters and its model card. Its :class:`ToolManifest` also
carries the benchmark it was published with. The tool's hash is the sha256 of the
manifest's name, version, method, parameters and file hashes.

How a tool travels (see README, "Tools: publish and adopt"):

1. A researcher publishes a version (:func:`publish`): on each factory datasite it
   becomes a code request ``publish_tool__<name>__<version>`` whose code only returns
   the manifest. Nothing runs on private data; the request is the review vehicle.
2. The factory admin sees it in the tool inbox (:func:`inbox`): name, version,
   hash, card and benchmark, and either adopts it (:func:`adopt`: the request is
   approved and ``<state>/tools/decisions.json`` records who, when and which hash)
   or declines it with a reason (:func:`decline`: the researcher sees the reason).
3. The factory's floor page runs only adopted tools, and before every run checks
   that every pinned file still has its adopted hash (:func:`verify_tool`); a
   changed or missing file refuses the run, naming the file.

The files themselves arrive with the factory's installation of Crystal Workbench
(the same release the researcher published from): adoption refuses when the
factory's files differ from the published hashes. Only syft travels over the wire.

Examples
--------
>>> manifest = build_manifest("classical-pipeline")
>>> manifest.method, len(manifest.tool_hash)
('classical', 64)
>>> verify_tool(manifest)  # the installed files are the ones published
"""

from __future__ import annotations

import ast
import hashlib
import json
import linecache
import os
import pprint
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import workbench
from workbench.errors import WorkbenchError
from workbench.imaging.pipeline import METHODS
from workbench.privacy import audit

# Root that file paths in a manifest are relative to (the folder holding `workbench/`).
INSTALL_ROOT = Path(workbench.__file__).resolve().parent.parent
BENCH_RESULTS = INSTALL_ROOT / "bench" / "results.json"
REQUEST_PREFIX = "publish_tool__"
DECISIONS_FILE = "tools/decisions.json"
_VERSION = re.compile(r"^[0-9]+(\.[0-9]+){0,3}$")


@dataclass(frozen=True)
class ToolSpec:
    """What makes up a shipped tool, before hashing.

    Attributes
    ----------
    name : str
        Tool name (lower-case letters, digits and dashes).
    method : str
        Key of :data:`workbench.imaging.pipeline.METHODS`.
    card : str
        The model card as text, or the manifest-relative path of a Markdown file.
    data_files : tuple of str
        Files besides code (weights, their sidecar), relative to :data:`INSTALL_ROOT`.
    """

    name: str
    method: str
    card: str
    data_files: tuple[str, ...] = ()


CLASSICAL_CARD = """# Classical pipeline — tool card

Method `classical` of `workbench.imaging.pipeline`: bilateral denoising, background
flattening, rim-aware segmentation, imperfection rejection (bubbles, debris, fibres,
scratches, dust) and agglomerate splitting by area. No weights; tuned on synthetic
legacy frames (2 µm/px); hires frames are reduced to 2 µm/px first.
Use on legacy 1280x1024 gray cameras. Fails on 4-6 crystal agglomerates whose shared
edges are too faint at 2 µm/px.
"""

SHIPPED_TOOLS: dict[str, ToolSpec] = {
    "classical-pipeline": ToolSpec("classical-pipeline", "classical", CLASSICAL_CARD),
    "learned-counter": ToolSpec(
        "learned-counter",
        "model",
        "workbench/imaging/weights/MODEL_CARD.md",
        (
            "workbench/imaging/weights/counter.pt",
            "workbench/imaging/weights/counter.json",
            "workbench/imaging/weights/MODEL_CARD.md",
        ),
    ),
}


@dataclass(frozen=True)
class ToolManifest:
    """One published version of a tool.

    Attributes
    ----------
    name, version : str
        e.g. ``classical-pipeline``, ``0.1.0``.
    method : str
        The pipeline method it runs.
    parameters : dict
        Fixed arguments of :func:`~workbench.imaging.pipeline.analyze` (``camera``:
        ``auto`` guesses per image).
    files : dict
        Path relative to :data:`INSTALL_ROOT` -> sha256 of the file.
    card : str
        Model card (Markdown).
    benchmark : dict
        ``{camera: {accuracy, mae, detection_f1, seconds_per_image, ...}}`` from
        ``workbench bench``, empty when it was not measured.
    """

    name: str
    version: str
    method: str
    parameters: dict[str, Any]
    files: dict[str, str]
    card: str = ""
    benchmark: dict[str, Any] = field(default_factory=dict)

    @property
    def tool_hash(self) -> str:
        """sha256 over name, version, method, parameters and file hashes."""
        pinned = {
            key: getattr(self, key) for key in ("name", "version", "method", "parameters", "files")
        }
        return hashlib.sha256(json.dumps(pinned, sort_keys=True).encode()).hexdigest()

    @property
    def label(self) -> str:
        """``name version`` for messages."""
        return f"{self.name} {self.version}"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict with ``tool_hash`` added (what a request carries)."""
        return {**asdict(self), "tool_hash": self.tool_hash}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ToolManifest:
        """Rebuild a manifest; refuses one whose ``tool_hash`` does not match its content."""
        try:
            manifest = cls(**{key: raw[key] for key in cls.__dataclass_fields__})
        except (KeyError, TypeError) as error:
            raise WorkbenchError(f"not a tool manifest (missing {error})") from None
        if raw.get("tool_hash", manifest.tool_hash) != manifest.tool_hash:
            raise WorkbenchError(f"tool {manifest.label}: its hash does not match its content")
        return manifest


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (read in blocks; torch-free, unlike the model's own check)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def code_files(method: str) -> list[str]:
    """The ``workbench`` modules a method runs: import closure of the pipeline and its module.

    Examples
    --------
    >>> files = code_files("classical")
    >>> "workbench/imaging/segment.py" in files, "workbench/imaging/model.py" in files
    (True, False)
    """
    if method not in METHODS:
        raise WorkbenchError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    pending = ["workbench.imaging.pipeline", METHODS[method].split(":")[0]]
    seen: dict[str, str] = {}
    while pending:
        module = pending.pop()
        if not module or module in seen:
            continue
        path = _module_path(module)
        if path is None:
            continue
        seen[module] = path.relative_to(INSTALL_ROOT).as_posix()
        pending.append(module.rpartition(".")[0])  # a package's __init__ runs first
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.module
                else []
            )
            pending.extend(name for name in names if name.startswith("workbench"))
    return sorted(seen.values())


def _module_path(module: str) -> Path | None:
    base = INSTALL_ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def build_manifest(name: str, version: str | None = None) -> ToolManifest:
    """Hash a shipped tool as installed here into a manifest ready to publish.

    Parameters
    ----------
    name : str
        A key of :data:`SHIPPED_TOOLS`.
    version : str, optional
        Defaults to the installed Crystal Workbench version.

    Examples
    --------
    >>> build_manifest("learned-counter").files["workbench/imaging/weights/counter.pt"][:8]
    '0d37421b'
    """
    if name not in SHIPPED_TOOLS:
        raise WorkbenchError(f"unknown tool {name!r}: choose one of {', '.join(SHIPPED_TOOLS)}")
    version = version or workbench.__version__
    if not _VERSION.match(version):
        raise WorkbenchError(f"tool version {version!r}: use numbers and dots, like 1.2.0")
    spec = SHIPPED_TOOLS[name]
    paths = sorted({*code_files(spec.method), *spec.data_files})
    card = spec.card
    if card.endswith(".md"):
        card = (INSTALL_ROOT / card).read_text(encoding="utf-8")
    return ToolManifest(
        name=spec.name,
        version=version,
        method=spec.method,
        parameters={"camera": "auto", "pixel_size_um": None},
        files={path: file_sha256(INSTALL_ROOT / path) for path in paths},
        card=card,
        benchmark=_benchmark(spec.method),
    )


def _benchmark(method: str) -> dict[str, Any]:
    if not BENCH_RESULTS.is_file():
        return {}
    overall = json.loads(BENCH_RESULTS.read_text(encoding="utf-8")).get("overall", {})
    return overall.get(method, {})


def verify_tool(manifest: ToolManifest, root: Path = INSTALL_ROOT) -> None:
    """Refuse to run unless every pinned file is present with its pinned sha256.

    Raises
    ------
    WorkbenchError
        Naming the first missing or changed file.

    Examples
    --------
    >>> import dataclasses
    >>> m = build_manifest("classical-pipeline")
    >>> bad = dataclasses.replace(m, files={**m.files, "workbench/gone.py": "0" * 64})
    >>> verify_tool(bad)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    workbench.errors.WorkbenchError: tool classical-pipeline 0.1.0 refuses to run: ...
    """
    for relative, pinned in sorted(manifest.files.items()):
        path = root / relative
        if not path.is_file():
            raise WorkbenchError(f"tool {manifest.label} refuses to run: {relative} is missing")
        actual = file_sha256(path)
        if actual != pinned:
            raise WorkbenchError(
                f"tool {manifest.label} refuses to run: {relative} has changed since it was "
                f"adopted (sha256 {actual[:12]}…, adopted {pinned[:12]}…)"
            )


# --- decisions of a factory, in its state folder ------------------------------------


def record_decision(
    state_dir: str | Path,
    manifest: ToolManifest,
    decided_by: str,
    decision: str = "adopted",
    reason: str = "",
) -> dict[str, Any]:
    """Append an adoption (or a decline) to ``<state_dir>/tools/decisions.json``.

    Returns
    -------
    dict
        The record: ``decision``, ``name``, ``version``, ``tool_hash``, ``by``, ``at``,
        ``reason`` and the ``manifest``.
    """
    if decision not in ("adopted", "declined"):
        raise WorkbenchError(f"decision {decision!r}: adopted or declined")
    path = Path(state_dir) / DECISIONS_FILE
    records = _read_decisions(path)
    record = {
        "decision": decision,
        "name": manifest.name,
        "version": manifest.version,
        "tool_hash": manifest.tool_hash,
        "by": decided_by,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "reason": reason,
        "manifest": manifest.to_dict(),
    }
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Atomic: a floor reading the file never sees half of it.
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as out:
        json.dump({"decisions": [*records, record]}, out, indent=1)
    os.replace(out.name, path)
    audit.append(
        state_dir,
        "adoption",
        actor=decided_by,
        request=f"{manifest.name} {manifest.version}",
        decision=decision,
        tool_hash=manifest.tool_hash,
        reason=reason,
    )
    return record


def adopted_tools(state_dir: str | Path) -> dict[str, tuple[ToolManifest, dict[str, Any]]]:
    """Tools adopted at this factory: ``{"name version": (manifest, decision record)}``.

    A later decline of the same version withdraws it.
    """
    adopted: dict[str, tuple[ToolManifest, dict[str, Any]]] = {}
    for record in _read_decisions(Path(state_dir) / DECISIONS_FILE):
        key = f"{record['name']} {record['version']}"
        if record["decision"] == "adopted":
            adopted[key] = (ToolManifest.from_dict(record["manifest"]), record)
        else:
            adopted.pop(key, None)
    return adopted


def _read_decisions(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    try:
        return json.loads(path.read_text(encoding="utf-8"))["decisions"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise WorkbenchError(f"{path}: not a tool decisions file") from None


# --- over syft ------------------------------------------------------------------------


def publication_name(manifest: ToolManifest) -> str:
    """Name of the code request that carries `manifest`.

    Examples
    --------
    >>> publication_name(ToolManifest("learned-counter", "1.2.0", "model", {}, {}))
    'publish_tool__learned_counter__1_2_0'
    """
    name, version = manifest.name.replace("-", "_"), manifest.version.replace(".", "_")
    return f"{REQUEST_PREFIX}{name}__{version}"


def publication_source(manifest: ToolManifest) -> str:
    """Source of the function a publication request holds: it only returns the manifest."""
    literal = pprint.pformat(manifest.to_dict(), width=96, sort_dicts=True)
    return (
        f"def {publication_name(manifest)}():\n"
        f'    """Tool publication for review; adopt or decline it, never run it on data."""\n'
        f"    return {literal}\n"
    )


def manifest_from_source(source: str) -> ToolManifest:
    """The manifest a publication request's code returns (read, never executed)."""
    try:
        function = next(
            node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)
        )
        returned = next(node for node in function.body if isinstance(node, ast.Return))
        raw = ast.literal_eval(returned.value)
    except (SyntaxError, StopIteration, ValueError):
        raise WorkbenchError(
            "not a tool publication (its code does not return a manifest)"
        ) from None
    return ToolManifest.from_dict(raw)


def publish(clients: dict[str, Any], manifest: ToolManifest) -> dict[str, str]:
    """Send `manifest` to every factory's admin for review: one request per datasite.

    Parameters
    ----------
    clients : dict
        ``{factory: syft client}`` logged in as the researcher
        (:func:`workbench.remote.client.login`).
    manifest : ToolManifest
        From :func:`build_manifest`.

    Returns
    -------
    dict
        ``{factory: "published" | "already published"}``.
    """
    import syft as sy

    from workbench.remote._syft_calls import quiet, reason

    source = publication_source(manifest)
    name = publication_name(manifest)
    filename = f"<workbench-tool-{name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    namespace: dict[str, Any] = {}
    exec(compile(source, filename, "exec"), namespace)  # our own generated source
    outcome = {}
    for factory, client in clients.items():
        try:
            with quiet():
                function = sy.syft_function()(namespace[name])
                client.code.request_code_execution(
                    function,
                    reason=f"tool {manifest.label} ({manifest.tool_hash[:12]}) for "
                    "the factory floor; adopt or decline",
                )
            outcome[factory] = "published"
        except Exception as error:  # syft raises its own types
            if "already exists" not in reason(error):
                raise WorkbenchError(
                    f"{factory} refused the publication of {manifest.label}: {reason(error)}"
                ) from None
            outcome[factory] = "already published"
    return outcome


@dataclass(frozen=True)
class Publication:
    """A tool publication in a factory admin's inbox."""

    manifest: ToolManifest
    researcher: str
    status: str
    submitted: str
    request: Any = field(repr=False, compare=False)


def inbox(session: Any) -> list[Publication]:
    """Tool publications on the admin's datasite, newest first.

    Parameters
    ----------
    session : AdminSession
        From :func:`workbench.remote.admin.admin_login`.
    """
    from workbench.remote._syft_calls import quiet, request_status

    with quiet():
        requests = list(session.client.requests)
    found = []
    for request in requests:
        code = request.code
        if not code.service_func_name.startswith(REQUEST_PREFIX):
            continue
        found.append(
            Publication(
                manifest_from_source(code.raw_code),
                request.requesting_user_email,
                request_status(request),
                str(request.request_time),
                request,
            )
        )
    return sorted(found, key=lambda publication: publication.submitted, reverse=True)


def inbox_rows(publications: list[Publication]) -> list[dict[str, Any]]:
    """One plain row per publication: what the admin reviews before deciding."""
    return [
        {
            "tool": p.manifest.name,
            "version": p.manifest.version,
            "hash": p.manifest.tool_hash,
            "researcher": p.researcher,
            "status": p.status,
            "submitted": p.submitted,
            "files": len(p.manifest.files),
            "benchmark": {
                camera: {key: row[key] for key in ("accuracy", "seconds_per_image") if key in row}
                for camera, row in p.manifest.benchmark.items()
            },
            "card": p.manifest.card.strip().splitlines()[0] if p.manifest.card.strip() else "",
        }
        for p in publications
    ]


def adopt(config: Any, name: str, version: str) -> dict[str, Any]:
    """Adopt a published tool at the factory of `config` (a DatasiteConfig), as its admin.

    Checks that the factory's installed files are the published ones, approves the
    publication request (the researcher sees it approved) and records who adopted
    which hash, when.

    Returns
    -------
    dict
        The decision record (see :func:`record_decision`).
    """
    publication = _find_publication(config, name, version)
    verify_tool(publication.manifest)
    if publication.status != "approved":
        _decide(publication, f"adopting {name} {version}", "approve", disable_warnings=True)
    return record_decision(config.state_dir, publication.manifest, config.admin_email)


def decline(config: Any, name: str, version: str, why: str) -> dict[str, Any]:
    """Decline a published tool with a reason the researcher sees; record it."""
    if not why.strip():
        raise WorkbenchError(f"declining {name} {version}: a reason for the researcher is required")
    publication = _find_publication(config, name, version)
    _decide(publication, f"declining {name} {version}", "deny", reason=why.strip())
    return record_decision(
        config.state_dir, publication.manifest, config.admin_email, "declined", why.strip()
    )


def _decide(publication: Publication, what: str, method: str, **kwargs: Any) -> None:
    from workbench.remote._syft_calls import quiet, reason

    try:
        with quiet():
            getattr(publication.request, method)(**kwargs)
    except Exception as error:  # syft raises its own types
        raise WorkbenchError(f"{what}: {reason(error)}") from None


def _find_publication(config: Any, name: str, version: str) -> Publication:
    from workbench.remote.admin import admin_login

    for publication in inbox(admin_login(config)):
        if (publication.manifest.name, publication.manifest.version) == (name, version):
            return publication
    raise WorkbenchError(f"{config.name}: no publication of tool {name} {version} in the inbox")
