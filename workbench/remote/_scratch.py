"""Throwaway factories for the demo and the benchmark: ports, configs, image folders."""

from __future__ import annotations

import socket
from pathlib import Path

from workbench.remote.config import DatasiteConfig, load_config


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scratch_config(
    root: Path,
    name: str,
    camera: str = "legacy",
    admin_email: str = "",
    release: str = "review",
    extra: str = "",
) -> DatasiteConfig:
    """Write ``root/<name>.toml`` (free port, state in ``root/state/<name>``) and load it.

    The admin password is generated into the state folder (no environment variable);
    `extra` is appended to the TOML (tables such as ``[privacy]``).
    """
    path = root / f"{name}.toml"
    email = f'admin_email = "{admin_email}"\n' if admin_email else ""
    path.write_text(
        f'name = "{name}"\ncamera = "{camera}"\nport = {free_port()}\n'
        f'state = "state/{name}"\npassword_env = ""\nrelease = "{release}"\n{email}{extra}'
    )
    return load_config(path)


def pooling_peers(root: Path, names: list[str], privacy: str = "") -> dict[str, str]:
    """Pooling keys for the factories `names` (state in ``root/state/<name>``), and for
    each the ``[privacy]`` TOML text that names the others as peers (as their admins
    would write it after exchanging ``workbench datasite pool-key`` output).

    `privacy` holds further ``[privacy]`` lines (a budget). Returns ``{name: toml text}``.
    """
    from workbench.privacy.secure_sum import load_or_create_key, public_key_hex

    public = {}
    for name in names:
        state = root / "state" / name
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        public[name] = public_key_hex(load_or_create_key(state))
    return {
        name: f"\n[privacy]\n{privacy}\n[privacy.peers]\n"
        + "".join(f'{peer} = "{key}"\n' for peer, key in public.items() if peer != name)
        for name in names
    }


def write_synthetic_images(folder: Path, camera: str, n_images: int, seed: int) -> Path:
    """Write `n_images` synthetic micrographs of `camera` as PNG files into `folder`."""
    import cv2

    from workbench.synth import synthesize

    folder.mkdir(parents=True)
    for index in range(n_images):
        image = synthesize(camera, seed=seed + index).image
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
        cv2.imwrite(str(folder / f"{camera}-{index:03d}.png"), bgr)
    return folder
