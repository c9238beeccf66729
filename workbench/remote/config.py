"""Datasite configuration: one TOML file per factory.

A factory's file names its datasite, where it listens, where it keeps its state
(database, blobs, identity, password, pid and log) and the output rule its admin
enforces on every result. Relative ``state`` folders are resolved against the
folder of the TOML file, so ``datasites/factory-a.toml`` with
``state = "state/factory-a"`` keeps everything in ``datasites/state/factory-a/``.

Examples
--------
>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "factory-x.toml"
>>> _ = path.write_text('name = "factory-x"\\nport = 8099\\n')
>>> config = load_config(path)
>>> config.name, config.host, config.port, config.state_dir.name
('factory-x', '127.0.0.1', 8099, 'factory-x')
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from workbench.camera import CAMERAS
from workbench.errors import WorkbenchError


@dataclass(frozen=True)
class OutputRule:
    """What a result released to a researcher may hold (enforced by the datasite).

    Attributes
    ----------
    max_numbers : int
        Most numbers in one result, counted over every nested list, dict and array.
    max_matrix_side : int
        Largest side of a 2-D array (or list of lists); 3-D and larger are refused.
    max_string_length : int
        Longest string (values and dict keys).
    """

    max_numbers: int = 1024
    max_matrix_side: int = 32
    max_string_length: int = 200


@dataclass(frozen=True)
class DatasiteConfig:
    """One factory datasite, as read from its TOML file.

    Attributes
    ----------
    name : str
        Datasite name (lower-case letters, digits and dashes), e.g. ``factory-a``.
    path : Path or None
        The TOML file it came from.
    camera : str
        Camera profile of the factory's microscopes (``legacy`` or ``hires``).
    host, port : str, int
        Where the datasite listens (loopback unless the factory opens it up).
    state_dir : Path
        Absolute folder for database, blobs, identity, password, pid and log.
    admin_email, admin_name : str
        The data owner account created on first start.
    password_env : str
        Environment variable holding the admin password; when unset, a password is
        generated on first start and kept in ``state_dir/admin-password`` (0600).
    n_consumers : int
        Job-queue workers running approved code (at least 1).
    db_url : str or None
        Database URL; SQLite in ``state_dir`` when not given.
    output_rule : OutputRule
        Limits on what a result may hold.
    """

    name: str
    path: Path | None = None
    camera: str = "legacy"
    host: str = "127.0.0.1"
    port: int = 8080
    state_dir: Path = Path("state")
    admin_email: str = ""
    admin_name: str = ""
    password_env: str = ""
    n_consumers: int = 1
    db_url: str | None = None
    output_rule: OutputRule = field(default_factory=OutputRule)

    @property
    def url(self) -> str:
        """Base URL of the datasite."""
        return f"http://{self.host}:{self.port}"

    @property
    def database_url(self) -> str:
        """``db_url`` or the SQLite file in the state folder."""
        return self.db_url or f"sqlite:///{self.state_dir / 'datasite.sqlite'}"

    def state_file(self, name: str) -> Path:
        """Path of one file in the state folder (``datasite.pid``, ``datasite.log``...)."""
        return self.state_dir / name


_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_KEYS = {
    "name",
    "camera",
    "host",
    "port",
    "state",
    "admin_email",
    "admin_name",
    "password_env",
    "n_consumers",
    "db_url",
    "output_rule",
}


def load_config(path: str | Path) -> DatasiteConfig:
    """Read and check one datasite TOML file.

    Parameters
    ----------
    path : str or Path
        The TOML file.

    Returns
    -------
    DatasiteConfig

    Raises
    ------
    WorkbenchError
        If the file is missing, is not valid TOML, or holds an unknown key or a bad value.

    Examples
    --------
    >>> load_config("datasites/factory-a.toml").camera  # doctest: +SKIP
    'legacy'
    """
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError(f"{path}: no such datasite config file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise WorkbenchError(f"{path}: not valid TOML ({error})") from None
    return config_from_dict(raw, path)


def config_from_dict(raw: dict, path: Path | None = None) -> DatasiteConfig:
    """Build a :class:`DatasiteConfig` from the parsed TOML table `raw`.

    Relative paths resolve against ``path``'s folder (the working folder when None).

    Examples
    --------
    >>> config_from_dict({"name": "factory-z", "port": 8123}).admin_email
    'admin@factory-z.example'
    """
    where = str(path) if path else "datasite config"
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise WorkbenchError(f"{where}: unknown key {unknown[0]!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise WorkbenchError(
            f"{where}: 'name' must be lower-case letters, digits and dashes, got {name!r}"
        )
    camera = _typed(raw, "camera", str, "legacy", where)
    if camera not in CAMERAS:
        raise WorkbenchError(f"{where}: unknown camera {camera!r}; use {', '.join(CAMERAS)}")
    port = _typed(raw, "port", int, 8080, where)
    if not 1 <= port <= 65535:
        raise WorkbenchError(f"{where}: port {port} is outside 1..65535")
    n_consumers = _typed(raw, "n_consumers", int, 1, where)
    if n_consumers < 1:
        raise WorkbenchError(f"{where}: n_consumers must be at least 1 (jobs need a worker)")
    base = path.parent if path else Path.cwd()
    state_dir = (base / _typed(raw, "state", str, f"state/{name}", where)).resolve()
    env_name = name.upper().replace("-", "_")
    return DatasiteConfig(
        name=name,
        path=path,
        camera=camera,
        host=_typed(raw, "host", str, "127.0.0.1", where),
        port=port,
        state_dir=state_dir,
        admin_email=_typed(raw, "admin_email", str, f"admin@{name}.example", where),
        admin_name=_typed(raw, "admin_name", str, f"{name} data owner", where),
        password_env=_typed(raw, "password_env", str, f"WORKBENCH_{env_name}_PASSWORD", where),
        n_consumers=n_consumers,
        db_url=raw.get("db_url"),
        output_rule=_output_rule(raw.get("output_rule", {}), where),
    )


def _output_rule(raw: object, where: str) -> OutputRule:
    if not isinstance(raw, dict):
        raise WorkbenchError(f"{where}: [output_rule] must be a table")
    unknown = sorted(set(raw) - set(OutputRule.__dataclass_fields__))
    if unknown:
        raise WorkbenchError(f"{where}: unknown key {unknown[0]!r} in [output_rule]")
    values = {}
    for key, default in OutputRule().__dict__.items():
        value = _typed(raw, key, int, default, f"{where} [output_rule]")
        if value < 1:
            raise WorkbenchError(f"{where}: output_rule.{key} must be at least 1")
        values[key] = value
    return OutputRule(**values)


def _typed(raw: dict, key: str, kind: type, default: object, where: str):
    value = raw.get(key, default)
    # bool is an int in Python; a port of `true` is still a mistake.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise WorkbenchError(f"{where}: {key!r} must be a {kind.__name__}, got {value!r}")
    return value
