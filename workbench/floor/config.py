"""The floor's configuration: one TOML file per factory, beside its datasite config.

``datasites/floor/factory-a.toml`` sets where the page listens (loopback unless the
factory opens it on purpose), the factory's state folder (shared with its datasite:
adopted tools are recorded there), upload limits, session length and the batch
specification the factory's admin sets. Relative paths resolve against the file's
folder. The floor configs live in their own folder because every ``*.toml`` directly
in ``datasites/`` is read as a datasite.

Examples
--------
>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "factory-x.toml"
>>> _ = path.write_text('factory = "factory-x"\\nport = 8199\\n[spec]\\nd50_min_um = 20.0\\n')
>>> config = load_floor_config(path)
>>> config.url, config.spec.d50_min_um, config.floor_dir.name
('http://127.0.0.1:8199', 20.0, 'floor')
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from workbench.errors import WorkbenchError

_FACTORY = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class BatchSpec:
    """What a batch must meet to pass (set by the factory's admin).

    Attributes
    ----------
    d50_min_um, d50_max_um : float
        Range the batch's median primary crystal diameter must fall in.
    max_agglomeration_pct : float
        Most primary crystals that may sit inside agglomerates, in %.
    """

    d50_min_um: float = 35.0
    d50_max_um: float = 48.0
    max_agglomeration_pct: float = 50.0


@dataclass(frozen=True)
class FloorConfig:
    """One factory's floor page.

    Attributes
    ----------
    factory : str
        Factory name (as its datasite's), shown on every page.
    path : Path or None
        The TOML file it came from.
    state_dir : Path
        The factory's state folder; the floor keeps its files in ``floor/`` inside it.
    host, port : str, int
        Where the page listens; ``127.0.0.1`` unless opened to the plant network.
    camera : str
        ``auto`` (guessed per image, as ``workbench count`` does), ``legacy`` or ``hires``.
    workers : int
        Images counted at once (processes).
    max_image_mb : float
        Largest image file accepted.
    max_images : int
        Most images in one batch.
    session_minutes : int
        How long a login lasts.
    default_tool : str
        Tool preselected on the upload form (its newest adopted version).
    spec : BatchSpec
        Pass/fail limits of a batch.
    """

    factory: str
    path: Path | None = None
    state_dir: Path = Path("state")
    host: str = "127.0.0.1"
    port: int = 8090
    camera: str = "auto"
    workers: int = 2
    max_image_mb: float = 40.0
    max_images: int = 200
    session_minutes: int = 480
    default_tool: str = "classical-pipeline"
    spec: BatchSpec = field(default_factory=BatchSpec)

    @property
    def url(self) -> str:
        """Address of the page."""
        return f"http://{self.host}:{self.port}"

    @property
    def floor_dir(self) -> Path:
        """The floor's own folder inside the factory's state folder."""
        return self.state_dir / "floor"

    @property
    def database(self) -> Path:
        """SQLite file holding accounts, sessions and the batch history."""
        return self.floor_dir / "floor.sqlite"


_TYPES = {"factory": str, "state": str, "host": str, "port": int, "camera": str,
          "workers": int, "max_image_mb": float, "max_images": int, "session_minutes": int,
          "default_tool": str}


def load_floor_config(path: str | Path) -> FloorConfig:
    """Read and check one floor TOML file.

    Raises
    ------
    WorkbenchError
        If the file is missing, not TOML, or holds an unknown key or a bad value.
    """
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError(f"{path}: no such floor config file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise WorkbenchError(f"{path}: not valid TOML ({error})") from None
    return floor_config_from_dict(raw, path)


def floor_config_from_dict(raw: dict, path: Path | None = None) -> FloorConfig:
    """Build a :class:`FloorConfig` from a parsed TOML table (paths relative to `path`).

    Examples
    --------
    >>> floor_config_from_dict({"factory": "factory-z", "workers": 0})
    Traceback (most recent call last):
    ...
    workbench.errors.WorkbenchError: floor config: workers must be at least 1
    """
    where = str(path) if path else "floor config"
    unknown = sorted(set(raw) - set(_TYPES) - {"spec"})
    if unknown:
        raise WorkbenchError(f"{where}: unknown key {unknown[0]!r}")
    values = {key: _typed(raw, key, kind, where) for key, kind in _TYPES.items() if key in raw}
    factory = values.get("factory")
    if factory is None or not _FACTORY.match(factory):
        raise WorkbenchError(f"{where}: 'factory' must be lower-case letters, digits and dashes")
    if values.get("camera", "auto") not in ("auto", "legacy", "hires"):
        raise WorkbenchError(f"{where}: camera must be auto, legacy or hires")
    for key in ("workers", "max_images", "session_minutes", "max_image_mb"):
        if key in values and values[key] < 1:
            raise WorkbenchError(f"{where}: {key} must be at least 1")
    if not 1 <= values.get("port", 8090) <= 65535:
        raise WorkbenchError(f"{where}: port {values['port']} is outside 1..65535")
    base = path.parent if path else Path.cwd()
    state = (base / values.pop("state", f"state/{factory}")).resolve()
    return FloorConfig(path=path, state_dir=state, spec=_spec(raw.get("spec", {}), where),
                       **values)


def _spec(raw: object, where: str) -> BatchSpec:
    if not isinstance(raw, dict):
        raise WorkbenchError(f"{where}: [spec] must be a table")
    known = {item.name for item in fields(BatchSpec)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise WorkbenchError(f"{where}: unknown key {unknown[0]!r} in [spec]")
    spec = BatchSpec(**{key: _typed(raw, key, float, f"{where} [spec]") for key in raw})
    if spec.d50_min_um >= spec.d50_max_um:
        raise WorkbenchError(f"{where}: spec.d50_min_um must be below spec.d50_max_um")
    return spec


def _typed(raw: dict, key: str, kind: type, where: str):
    value = raw[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise WorkbenchError(f"{where}: {key!r} must be a {kind.__name__}, got {value!r}")
    return value
