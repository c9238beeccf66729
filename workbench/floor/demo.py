"""A floor ready to use: config, accounts, adopted tool; for ``make demo``, tests and the bench.

In the demo a tool is published by the researcher and adopted by each factory's
admin over syft (:func:`workbench.remote.tools.publish` and
:func:`~workbench.remote.tools.adopt`) while the datasites run;
:func:`start_demo_floor` then serves factory A's floor page on that adoption.

Examples
--------
>>> demo = start_demo_floor(config.state_dir, "factory-a")  # doctest: +SKIP
>>> print(f"floor page: {demo.url} (log in as {demo.user} / {demo.password})")  # doctest: +SKIP
>>> stop_demo_floor(demo)  # doctest: +SKIP
"""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.floor.accounts import add_user
from workbench.floor.config import FloorConfig, load_floor_config
from workbench.remote.tools import adopted_tools, build_manifest, record_decision


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepare_floor(
    path: str | Path,
    factory: str,
    state_dir: str | Path,
    *,
    users: dict[str, tuple[str, str]] | None = None,
    adopt_locally: tuple[str, ...] = (),
    **settings: object,
) -> FloorConfig:
    """Write a floor config at `path`, create accounts and (optionally) adopt tools.

    Parameters
    ----------
    path : str or Path
        The floor TOML to write.
    factory : str
        Factory name.
    state_dir : str or Path
        The factory's state folder.
    users : dict, optional
        ``{name: (role, password)}``.
    adopt_locally : tuple of str
        Shipped tools to record as adopted without a datasite (tests, benchmarks),
        by ``local setup``; a real factory adopts over syft.
    **settings
        Other top-level keys of the config (``port``, ``workers``, ``max_image_mb``...).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f'factory = "{factory}"', f'state = "{Path(state_dir).resolve()}"']
    lines += [f"{key} = {value!r}" if not isinstance(value, str) else f'{key} = "{value}"'
              for key, value in settings.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = load_floor_config(path)
    for name, (role, password) in (users or {}).items():
        add_user(config.database, name, role, password)
    for tool in adopt_locally:
        record_decision(config.state_dir, build_manifest(tool), "local setup")
    return config


@dataclass(frozen=True)
class DemoFloor:
    """A running demo floor: where it is and how to log in."""

    url: str
    user: str
    password: str
    config: FloorConfig


def start_demo_floor(state_dir: str | Path, factory: str, port: int | None = None) -> DemoFloor:
    """Serve `factory`'s floor page in the background, on a tool its admin adopted.

    Writes ``<state_dir>/floor.toml``, creates the account ``operator`` with a fresh
    password and starts the page (``workbench floor down <state_dir>/floor.toml``
    stops it, as does :func:`stop_demo_floor`).

    Raises
    ------
    WorkbenchError
        If the factory has adopted no tool yet.
    """
    from workbench.floor.service import start_floor

    if not adopted_tools(state_dir):
        raise WorkbenchError(f"{factory} has adopted no tool; adopt one first "
                             "(workbench.remote.tools.adopt)")
    password = secrets.token_urlsafe(12)
    config = prepare_floor(Path(state_dir) / "floor.toml", factory, state_dir,
                           users={"operator": ("operator", password)}, port=port or free_port())
    return DemoFloor(start_floor(config), "operator", password, config)


def stop_demo_floor(demo: DemoFloor) -> None:
    """Stop the demo floor and its counting workers."""
    from workbench.floor.service import stop_floor

    stop_floor(demo.config)
