"""Real loopback datasites for the security suite, shared by the whole test session.

Three factories, started once (in parallel):

- ``factory-h``: hardened (sandbox, output rule, ``release = "auto"``, short sandbox
  limits), the site every attack is tried against;
- ``factory-u``: the same without hardening (today's plain in-process exec), where
  each structural attack is shown to succeed, so each defence is proven necessary;
- ``factory-t``: another factory, the target of cross-factory network attacks.

factory-h and factory-u each hold ``line-1`` (3 noise images of 256 x 320, different
pixels per factory) and ``two`` (2 images, under ``min_images``), and two researcher
accounts. Their admin passwords come from environment variables whose names contain
``PASSWORD`` (as the README recommends), so they are in each datasite's environment.

The admin of every factory approves whatever has no automatic findings
(``review.approve`` refuses the rest). :func:`run_campaign` submits a whole list of
attack functions, approves them, runs them and collects one row per function: what
the researcher actually got (result fields, or ``error``). The hardened and the
unhardened campaign run at the same time, one thread each.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import security_attacks as attacks

from workbench.remote import client, review
from workbench.remote._syft_calls import quiet
from workbench.remote.admin import add_researcher, admin_login
from workbench.remote.config import load_config
from workbench.remote.identity import load_or_create_identity
from workbench.remote.launch import start_datasites, stop_datasite
from workbench.remote.upload import image_batch, mock_batch, upload_batches

DATASET = "line-1"
SMALL_DATASET = "two"
SHAPE = (256, 320)
R1, R2 = "r1@uni.example", "r2@uni.example"
RESULT_TIMEOUT = 240
# Short limits, so the limit attacks end quickly.
SANDBOX = {
    "timeout_s": 12,
    "cpu_s": 3,
    "memory_mb": 1024,
    "max_processes": 32,
    "max_file_mb": 32,
    "tmp_mb": 64,
}
MAX_RESULT_BYTES = 16384
MIN_IMAGES = 3


def noise(seed: int, count: int) -> list[np.ndarray]:
    """`count` uint8 noise images (syft compresses; noise keeps them full size)."""
    return [
        np.random.default_rng(seed + index).integers(0, 256, SHAPE, np.uint8)
        for index in range(count)
    ]


def marker_tag(frame: np.ndarray) -> str:
    """The tag an attack puts in its marker file's name (computed from its first image)."""
    return f"{frame.shape[0]}x{frame.shape[1]}-{int(frame[0, :16].sum())}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Site:
    """One running factory as the tests see it."""

    config: Any
    hardened: bool
    seed: int
    mock_shape: tuple
    images: list = field(default_factory=list)  # the private pixels of DATASET
    small_images: list = field(default_factory=list)  # those of SMALL_DATASET
    admin: Any = None  # AdminSession
    passwords: dict = field(default_factory=dict)  # researcher e-mail -> password
    researcher: Any = None  # R1's clients {factory: DatasiteClient}
    admin_password: str = ""

    @property
    def signing_key(self) -> str:
        return load_or_create_identity(self.config.state_dir).signing_key_hex

    @property
    def launcher_pid(self) -> int:
        return int(self.config.state_file("datasite.pid").read_text())

    @property
    def tags(self) -> set[str]:
        """Marker tags of this site's runs: on the private images or on the mock."""
        mock = mock_batch("legacy", 2.0, shape=self.mock_shape)["images"][0]
        return {marker_tag(self.images[0]), marker_tag(mock)}

    def touched(self, campaign: Campaign, attack: str) -> bool:
        """True if a run of `attack` on this site left its marker file on the host."""
        return any(f"wbsec-{attack}-{tag}" in campaign.markers for tag in self.tags)

    def login(self, email: str = R1) -> dict:
        return client.login([self.config], email, self.passwords[email])

    def pixel_bytes(self, count: int) -> bytes:
        """The first `count` bytes of the private images, as the attacks take them."""
        return np.concatenate([frame.ravel() for frame in self.images])[:count].tobytes()

    def pixel_text(self) -> str:
        """What exception_pixels / print_pixels put in their messages."""
        return "PIXELS " + ",".join(str(int(v)) for v in self.images[0].ravel()[:48])


@dataclass
class Campaign:
    """What the researcher got from each attack submitted to one site."""

    rows: dict  # function name -> {result field: value} or {"error": text}
    findings: dict  # function name -> automatic findings the admin saw
    markers: set  # names of the /tmp/wbsec-* files on the host after the campaigns
    seconds: float
    phases: dict = field(default_factory=dict)  # seconds from the start to each step

    def row(self, name: str) -> dict:
        return self.rows[name]


def marker_files() -> set[str]:
    return {Path(path).name for path in glob.glob("/tmp/wbsec-*") + glob.glob("/var/tmp/wbsec-*")}


def clear_markers() -> None:
    for path in glob.glob("/tmp/wbsec-*") + glob.glob("/var/tmp/wbsec-*"):
        with contextlib.suppress(OSError):
            os.unlink(path)


def write_config(folder: Path, name: str, port: int, extra: str = ""):
    path = folder / f"{name}.toml"
    env = f"WBSEC_{name.upper().replace('-', '_')}_PASSWORD"
    path.write_text(
        f'name = "{name}"\nport = {port}\nstate = "state/{name}"\npassword_env = "{env}"\n' + extra
    )
    return load_config(path)


HARDENED_TOML = (
    'release = "auto"\n'
    f"[output_rule]\nmax_result_bytes = {MAX_RESULT_BYTES}\nmin_images = {MIN_IMAGES}\n"
    "[sandbox]\n" + "".join(f"{key} = {value}\n" for key, value in SANDBOX.items())
)


def in_parallel(*calls):
    """Run each call in its own thread; return their values; re-raise the first error."""
    results, errors = [None] * len(calls), []
    saved = sys.stdout, sys.stderr  # quiet() swaps sys.stdout; threads may interleave

    def run(index, call):
        try:
            results[index] = call()
        except BaseException as error:  # noqa: BLE001 - re-raised below
            errors.append(error)

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sys.stdout, sys.stderr = saved
    if errors:
        raise errors[0]
    return results


@pytest.fixture(scope="session")
def configs(tmp_path_factory):
    """The three factories' configs (ports chosen once, so attacks can name them)."""
    folder = tmp_path_factory.mktemp("security-datasites")
    return {
        "folder": folder,
        "h": write_config(folder, "factory-h", free_port(), HARDENED_TOML),
        "u": write_config(folder, "factory-u", free_port()),
        "t": write_config(folder, "factory-t", free_port()),
    }


def populate(site: Site) -> Site:
    site.admin = admin_login(site.config)
    site.admin_password = os.environ[site.config.password_env]
    site.images = noise(site.seed, 3)
    site.small_images = noise(site.seed + 50, 2)
    for name, images in ((DATASET, site.images), (SMALL_DATASET, site.small_images)):
        files = [f"{name}-{index}.png" for index in range(len(images))]
        upload_batches(
            site.admin.client,
            name,
            [image_batch(images, files, "legacy", 2.0)],
            mock_shape=site.mock_shape,
            progress=False,
        )
    site.passwords = {
        email: add_researcher(site.admin, email, email.split("@")[0]) for email in (R1, R2)
    }
    site.researcher = site.login(R1)
    return site


@pytest.fixture(scope="session")
def sites(configs):
    """factory-h (hardened) + factory-t, and factory-u (unhardened), up and populated."""
    for key in ("h", "u", "t"):
        os.environ[configs[key].password_env] = secrets.token_urlsafe(18)
    clear_markers()
    try:
        in_parallel(
            lambda: start_datasites([configs["h"], configs["t"]]),
            lambda: start_datasites([configs["u"]], hardening=False),
        )
        hardened, plain = in_parallel(
            lambda: populate(Site(configs["h"], True, seed=100, mock_shape=(64, 80))),
            lambda: populate(Site(configs["u"], False, seed=200, mock_shape=(48, 64))),
        )
        assert not hardened.tags & plain.tags  # markers tell the two sites apart
        yield {"h": hardened, "u": plain}
    finally:
        for key in ("h", "u", "t"):
            stop_datasite(configs[key])
            os.environ.pop(configs[key].password_env, None)
        clear_markers()


@contextlib.contextmanager
def one_api_refresh(clients: dict):
    """Submit many functions with one API refresh at the end instead of one each.

    ``client.submit`` refreshes the client's API after every request (about 4 s on a
    loaded machine); the requests themselves are unchanged.
    """
    saved = {}
    for name, datasite_client in clients.items():
        api = datasite_client.api
        saved[name] = (api, api.refresh_api_callback)
        api.refresh_api_callback = lambda: None
    try:
        yield
    finally:
        for api, callback in saved.values():
            api.refresh_api_callback = callback
            callback()


_INPUTS: dict = {}  # (dataset, client id) -> the inputs of a function on that dataset


def run_directly(site: Site, name: str, dataset: str) -> Any:
    """Start an approved function the way a researcher can by hand (what ``start_runs``
    does once it has looked up the request): ``client.code.<name>(**inputs)``."""
    datasite_client = next(iter(site.researcher.values()))
    with quiet():
        if (dataset, id(datasite_client)) not in _INPUTS:
            assets = next(d for d in datasite_client.datasets.get_all() if d.name == dataset)
            _INPUTS[dataset, id(datasite_client)] = {
                client._param(index): asset for index, asset in enumerate(assets.asset_list)
            }
        inputs = _INPUTS[dataset, id(datasite_client)]
        try:
            return getattr(datasite_client.code, name)(**inputs, blocking=False)
        except Exception:  # refused to start: the researcher's row says why
            return None


def run_campaign(site: Site, plan: list[tuple]) -> Campaign:
    """Submit every (function, dataset) in `plan` as R1, approve what has no findings,
    run them and collect what R1 got back, one row per function.

    Every job is queued at once (what ``start_runs`` does, without looking up each
    request again); the datasite's one consumer runs them in turn.
    """
    started = time.monotonic()
    researcher = site.researcher
    phases = {}
    with one_api_refresh(researcher):
        for function, dataset in plan:
            client.submit(researcher, function, dataset)
    phases["submitted"] = time.monotonic() - started
    by_name = {}
    for request in review.list_requests(site.admin):  # newest first
        by_name.setdefault(request.code.service_func_name, request)
    findings = {}
    for function, _ in plan:
        request = by_name[function.__name__]
        findings[function.__name__] = review.findings(request)
        if findings[function.__name__]:
            review.deny(request, "automatic findings")
        else:
            review.approve(request)
    phases["approved"] = time.monotonic() - started
    names = [function.__name__ for function, _ in plan]
    for function, dataset in plan:  # queued at once; the datasite runs them in turn
        run_directly(site, function.__name__, dataset)
    phases["queued"] = time.monotonic() - started
    rows = {}
    for name in names:
        frame = client.wait_for_results(
            site.researcher, name, timeout=RESULT_TIMEOUT, poll_seconds=0.5
        )
        rows[name] = {
            key: value
            for key, value in frame.iloc[0].to_dict().items()
            if key != "factory" and not (isinstance(value, float) and np.isnan(value))
        }
        phases[name] = time.monotonic() - started
    return Campaign(rows, findings, set(), time.monotonic() - started, phases)


STRUCTURAL = [
    attacks.shell_reduce_getattr,
    attacks.shell_numpy_walk,
    attacks.shell_subclasses_walk,
    attacks.shell_builtins_import,
    attacks.shell_pkgutil_resolve,
    attacks.key_from_sys_modules,
    attacks.key_from_memory,
    attacks.environment_variables,
    attacks.read_proc_environ,
    attacks.read_system_files,
    attacks.state_folder_listing,
    attacks.write_host_file,
    attacks.writable_places,
    attacks.long_strings,
    attacks.many_keys,
    attacks.packed_floats,
    attacks.bytes_result,
    attacks.progress_pixels,
    attacks.normal_mean,
]
HARDENED_ONLY = [
    attacks.pickle_reduce_result,
    attacks.type_name_pixels,
    attacks.exception_pixels,
    attacks.print_pixels,
]
# The limit attacks go last, then a normal request queued behind them.
LIMITS = [
    attacks.endless_sleep,
    attacks.cpu_spin,
    attacks.memory_bomb,
    attacks.fork_bomb,
    attacks.tmpfs_fill,
    attacks.big_file,
    attacks.after_bombs_mean,
]


def network_attacks(configs, site_key: str):
    """net_own_port / net_other_factory / net_discovered aimed at this site's ports."""
    own = configs[site_key].port
    return attacks.network_module(configs["folder"], site_key, own, configs["t"].port)


@pytest.fixture(scope="session")
def campaigns(sites, configs):
    """Both campaigns, at the same time (different datasites, one thread each)."""
    plans = {}
    for key, extra in (("h", HARDENED_ONLY), ("u", [])):
        network = network_attacks(configs, key)
        plan = [(function, DATASET) for function in STRUCTURAL + extra]
        plan += [
            (network.net_own_port, DATASET),
            (network.net_other_factory, DATASET),
            (network.net_discovered, DATASET),
            (attacks.count_images, SMALL_DATASET),
        ]
        plans[key] = plan
    plans["h"] += [(function, DATASET) for function in LIMITS]
    clear_markers()
    hardened, plain = in_parallel(
        lambda: run_campaign(sites["h"], plans["h"]),
        lambda: run_campaign(sites["u"], plans["u"]),
    )
    hardened.markers = plain.markers = marker_files()
    clear_markers()
    if os.environ.get("WBSEC_REPORT"):  # what the researcher got, for a written report
        Path(os.environ["WBSEC_REPORT"]).write_text(
            json.dumps(
                {
                    "h": hardened.rows,
                    "u": plain.rows,
                    "markers": sorted(hardened.markers),
                    "phases": {"h": hardened.phases, "u": plain.phases},
                },
                indent=1,
                default=repr,
            )
        )
    return {"h": hardened, "u": plain}


@pytest.fixture(scope="session")
def hardened_campaign(campaigns):
    return campaigns["h"]


@pytest.fixture(scope="session")
def plain_campaign(campaigns):
    return campaigns["u"]


def guest_view(url: str) -> dict:
    """What an anonymous guest session gets: dataset names and mock shapes, or the refusal."""
    import syft as sy

    seen: dict = {"datasets": [], "mock_shapes": [], "refused": []}
    try:
        with quiet():
            guest = sy.login_as_guest(url=url, verbose=False)
    except Exception as error:  # syft raises its own types
        seen["refused"].append(f"login_as_guest: {type(error).__name__}")
        return seen
    for what, call in (
        ("datasets.get_all", lambda: guest.datasets.get_all()),
        ("api.services.dataset.get_all", lambda: guest.api.services.dataset.get_all()),
    ):
        try:
            with quiet():
                listed = call()
        except Exception as error:
            seen["refused"].append(f"{what}: {type(error).__name__}")
            continue
        if type(listed).__name__ == "SyftError" or not isinstance(listed, list | tuple):
            seen["refused"].append(f"{what}: {type(listed).__name__}")
            continue
        for dataset in listed:
            seen["datasets"].append(dataset.name)
            try:
                with quiet():
                    mock = dataset.asset_list[0].mock
                seen["mock_shapes"].append(tuple(mock["images"][0].shape))
            except Exception as error:
                seen["refused"].append(f"mock: {type(error).__name__}")
    return seen
