"""Two real loopback factory datasites shared by the Jupyter-side tests.

``test_widgets.py``, ``test_notebooks.py`` and ``test_report.py`` each define a
session fixture that calls :func:`shared_sites`; the datasites start once per test
session (whichever file asks first) and stop when the session ends.

factory-a (legacy camera) and factory-b (hires camera) each hold the dataset
``line-1``: a few small synthetic images whose file names carry a batch id
(``B-0042_000.png``...), with a researcher account ``ana@uni.example``.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RESEARCHER = "ana@uni.example"
RESEARCHER_PASSWORD = "a long researcher password"
PASSWORD_ENV = "WORKBENCH_TEST_RESEARCHER_PASSWORD"
DATASET = "line-1"
BATCHES = {"B-0042": 2, "B-0043": 1}  # batch id -> images
IMAGE_SHAPE = (256, 320)
FACTORIES = {"factory-a": ("legacy", 0), "factory-b": ("hires", 10)}  # camera, first seed


@dataclass
class Sites:
    """The running datasites: config folder, configs, and admin clients by factory."""

    folder: Path
    configs: dict
    admins: dict


_started: Sites | None = None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def private_batch(factory: str) -> dict:
    """The image batch dict uploaded as dataset ``line-1`` of `factory` (deterministic)."""
    from workbench.camera import get_camera
    from workbench.remote.upload import image_batch
    from workbench.synth import synthesize

    camera, seed = FACTORIES[factory]
    images, files = [], []
    for batch, n in BATCHES.items():
        for index in range(n):
            sample = synthesize(camera, seed=seed + len(images), shape=IMAGE_SHAPE)
            images.append(np.asarray(sample.image))
            files.append(f"{batch}_{index:03d}.png")
    return image_batch(images, files, camera, get_camera(camera).pixel_size_um)


def shared_sites(request, tmp_path_factory) -> Sites:
    """Start factory-a and factory-b once per session (see the module docstring)."""
    global _started
    if _started is not None:
        return _started
    from workbench.remote._scratch import pooling_peers
    from workbench.remote.admin import add_researcher, admin_login
    from workbench.remote.config import load_config
    from workbench.remote.launch import running_datasites
    from workbench.remote.upload import upload_batches

    folder = tmp_path_factory.mktemp("datasites")
    configs = {}
    privacy = pooling_peers(folder, list(FACTORIES))  # they pool with each other
    for name, (camera, _) in FACTORIES.items():
        path = folder / f"{name}.toml"
        path.write_text(
            f'name = "{name}"\ncamera = "{camera}"\nport = {_free_port()}\n'
            f'state = "state/{name}"\npassword_env = "WORKBENCH_TEST_{name[-1].upper()}_PW"\n'
            + privacy[name]
        )
        configs[name] = load_config(path)
    stack = contextlib.ExitStack()
    request.session.addfinalizer(stack.close)
    stack.enter_context(running_datasites(list(configs.values())))
    admins = {}
    for name, config in configs.items():
        admins[name] = admin_login(config)
        batch = private_batch(name)
        upload_batches(
            admins[name].client, DATASET, [batch], mock_shape=IMAGE_SHAPE, progress=False
        )
        add_researcher(admins[name], RESEARCHER, "Ana", RESEARCHER_PASSWORD)
    _started = Sites(folder, configs, admins)
    return _started
