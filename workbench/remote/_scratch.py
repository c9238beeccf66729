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
    root: Path, name: str, camera: str = "legacy", admin_email: str = "", release: str = "review"
) -> DatasiteConfig:
    """Write ``root/<name>.toml`` (free port, state in ``root/state/<name>``) and load it.

    The admin password is generated into the state folder (no environment variable).
    """
    path = root / f"{name}.toml"
    email = f'admin_email = "{admin_email}"\n' if admin_email else ""
    path.write_text(
        f'name = "{name}"\ncamera = "{camera}"\nport = {free_port()}\n'
        f'state = "state/{name}"\npassword_env = ""\nrelease = "{release}"\n{email}'
    )
    return load_config(path)


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
