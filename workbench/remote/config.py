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

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from workbench.camera import CAMERAS
from workbench.errors import WorkbenchError
from workbench.sandbox.limits import SandboxLimits

RELEASE_MODES = ("review", "auto")


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
    max_result_bytes : int
        Size of the whole result as compact JSON, strings and dict keys included.
    min_images : int
        Fewest images a request may run on (DataSHIELD's ``nfilter.subset`` idea): an
        aggregate over one or two images is nearly the images themselves.
    """

    max_numbers: int = 1024
    max_matrix_side: int = 32
    max_string_length: int = 200
    max_result_bytes: int = 16384
    min_images: int = 3


@dataclass(frozen=True)
class PrivacySettings:
    """A factory's differential-privacy budget and its pooling peers.

    Attributes
    ----------
    epsilon_budget : float
        Total privacy loss ``ε`` each researcher may spend at this factory.
    delta_budget : float
        Largest ``δ`` one request may declare.
    peers : dict
        ``{factory: pooling public key hex}`` of the other factories this one pools
        with (``workbench datasite pool-key CONFIG`` prints a factory's key).
    """

    epsilon_budget: float = 10.0
    delta_budget: float = 1e-5
    peers: dict[str, str] = field(default_factory=dict)


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
        Database URL; SQLite in ``state_dir`` when not given. PostgreSQL:
        ``postgresql://USER@HOST:PORT/DATABASE``, without the password.
    db_password_env : str
        Environment variable holding the database password (PostgreSQL), added to
        ``db_url`` when the datasite starts; empty: the URL is used as it is.
    output_rule : OutputRule
        Limits on what a result may hold.
    release : str
        ``review`` (default): a finished run on private data waits at the factory until
        the admin releases it; ``auto``: a result that passes the output rule goes to
        the researcher at once.
    sandbox : SandboxLimits
        Time, CPU, memory and process limits of every run of researcher code.
    privacy : PrivacySettings
        Differential-privacy budget and pooling peers.
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
    db_password_env: str = ""
    output_rule: OutputRule = field(default_factory=OutputRule)
    release: str = "review"
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)

    @property
    def url(self) -> str:
        """Base URL of the datasite."""
        return f"http://{self.host}:{self.port}"

    @property
    def database_url(self) -> str:
        """``db_url`` (with the password from ``db_password_env``), or the SQLite file.

        Raises
        ------
        WorkbenchError
            If ``db_password_env`` names a variable that is not set, or whose value
            is not URL-safe (syft reads the password from the URL undecoded).
        """
        if self.db_url is None:
            return f"sqlite:///{self.state_dir / 'datasite.sqlite'}"
        if not self.db_password_env:
            return self.db_url
        password = os.environ.get(self.db_password_env, "")
        if not password:
            raise WorkbenchError(
                f"{self.db_password_env} is not set: it holds the password of "
                f"{self.name}'s database"
            )
        if not re.fullmatch(r"[A-Za-z0-9._~-]+", password):
            raise WorkbenchError(
                f"{self.db_password_env}: the database password may hold only letters, "
                "digits and . _ ~ - (syft reads it from the URL undecoded)"
            )
        scheme, rest = self.db_url.split("://", 1)
        user, host = rest.split("@", 1) if "@" in rest else ("", rest)
        return f"{scheme}://{user.split(':', 1)[0]}:{password}@{host}"

    def state_file(self, name: str) -> Path:
        """Path of one file in the state folder (``datasite.pid``, ``datasite.log``...)."""
        return self.state_dir / name


_KIND_NAMES = {int: "an integer", float: "a number", str: "a string"}
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
    "db_password_env",
    "output_rule",
    "release",
    "sandbox",
    "privacy",
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
    release = _typed(raw, "release", str, "review", where)
    if release not in RELEASE_MODES:
        raise WorkbenchError(f"{where}: release must be one of {', '.join(RELEASE_MODES)}")
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
        db_url=_database_url(raw, where),
        db_password_env=_typed(raw, "db_password_env", str, "", where),
        output_rule=_limits_table(raw, "output_rule", OutputRule, where),
        release=release,
        sandbox=_limits_table(raw, "sandbox", SandboxLimits, where),
        privacy=_privacy(raw, where),
    )


def _database_url(raw: dict, where: str) -> str | None:
    """``db_url`` if given: a SQLite or PostgreSQL URL (the only databases syft 0.9.5 runs on)."""
    url = raw.get("db_url")
    if url is None:
        return None
    if not isinstance(url, str) or not url.startswith(("sqlite:///", "postgresql://")):
        raise WorkbenchError(
            f"{where}: db_url must be a sqlite:/// or postgresql:// URL, got {url!r}"
        )
    if url.startswith("postgresql://") and "@" not in url:
        raise WorkbenchError(
            f"{where}: db_url {url!r} names no user (postgresql://USER@HOST:PORT/DB)"
        )
    return url


def _privacy(raw: dict, where: str) -> PrivacySettings:
    table = dict(raw.get("privacy", {}))
    peers = table.pop("peers", {})
    if not isinstance(peers, dict) or not all(
        isinstance(key, str) and isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value)
        for key, value in peers.items()
    ):
        raise WorkbenchError(
            f"{where}: [privacy.peers] maps factory names to 64-hex-digit pooling keys"
        )
    budget = _limits_table({"privacy": table}, "privacy", _PrivacyNumbers, where)
    return PrivacySettings(budget.epsilon_budget, budget.delta_budget, dict(peers))


@dataclass(frozen=True)
class _PrivacyNumbers:
    epsilon_budget: float = PrivacySettings.epsilon_budget
    delta_budget: float = PrivacySettings.delta_budget


def _limits_table(raw: dict, key: str, kind: type, where: str):
    """Read the table `key` into the frozen dataclass `kind`; every value is positive."""
    table = raw.get(key, {})
    if not isinstance(table, dict):
        raise WorkbenchError(f"{where}: [{key}] must be a table")
    unknown = sorted(set(table) - set(kind.__dataclass_fields__))
    if unknown:
        raise WorkbenchError(f"{where}: unknown key {unknown[0]!r} in [{key}]")
    values = {}
    for name, default in kind().__dict__.items():
        value = _typed(table, name, type(default), default, f"{where} [{key}]")
        if value <= 0:
            raise WorkbenchError(f"{where}: {key}.{name} must be positive, got {value}")
        values[name] = value
    return kind(**values)


def _typed(raw: dict, key: str, kind: type, default: object, where: str):
    value = raw.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)  # `timeout_s = 20` means 20.0
    # bool is an int in Python; a port of `true` is still a mistake.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise WorkbenchError(f"{where}: {key!r} must be {_KIND_NAMES[kind]}, got {value!r}")
    return value
