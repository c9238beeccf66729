"""The end-to-end demo: two factories, one researcher, aggregates back.

Starts factory-a (legacy camera) and factory-b (hires camera) on loopback in a fresh
temporary state folder, gives each a synthetic private image set, creates a
researcher account on each, submits :func:`~workbench.remote.counting.count_crystals`
to both, lets each admin review it (findings, a sandboxed trial on mock, approval),
runs it in each factory's sandbox, lets each admin release the held result and
prints the per-factory aggregates. Then the researcher publishes the classical
counting tool and both admins adopt it, so the factory floor page can serve it. Every
datasite it starts is stopped on the way out, also on errors and Ctrl-C.

With ``postgres=True`` factory-a keeps its tables in a real PostgreSQL server
(:mod:`workbench.remote.postgres`, in ``<root>/postgres``), stopped at the end too.

Examples
--------
>>> summary = run_demo(legacy_images=2, hires_images=1)  # doctest: +SKIP
>>> [row["factory"] for row in summary["factories"]]  # doctest: +SKIP
['factory-a', 'factory-b']
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.remote._scratch import scratch_config, write_synthetic_images
from workbench.remote.config import DatasiteConfig, load_config

RESEARCHER = "researcher@university.example"
DATASET = "seed-crystals-demo"
FUNCTION = "count_crystals"
FIELDS = ("images", "mean_count", "agglomeration_pct", "d10_um", "d50_um", "d90_um")
SHIPPED_CONFIGS = Path(__file__).resolve().parents[2] / "datasites"


def run_demo(
    *,
    legacy_images: int = 12,
    hires_images: int = 4,
    timeout: float = 600.0,
    say: Callable[[str], None] | None = None,
    root: Path | None = None,
    postgres: bool = False,
) -> dict:
    """Run the two-factory round trip and return ``{"factories": [row, ...]}``.

    Parameters
    ----------
    legacy_images, hires_images : int
        Private images made for factory-a (legacy) and factory-b (hires).
    root : Path, optional
        Folder for the factories' configs and state, kept afterwards (the floor page
        serves from it); a temporary folder, removed at the end, when not given.
    timeout : float
        Seconds to wait for the approved runs.
    say : callable, optional
        Receives one progress line at a time (default: print to stderr).
    postgres : bool
        Run factory-a on PostgreSQL instead of SQLite.

    Returns
    -------
    dict
        ``factories``: one row per factory (``factory``, ``images``, ``mean_count``,
        ``agglomeration_pct``, ``d10_um``, ``d50_um``, ``d90_um``); ``state``: each
        factory's state folder; ``database``: ``sqlite`` or ``postgresql`` per factory.

    Raises
    ------
    WorkbenchError
        If a datasite does not start, a review step fails or a run fails.
    """
    from workbench.remote.launch import running_datasites

    started = time.perf_counter()
    say = say or (
        lambda line: print(f"[{time.perf_counter() - started:5.0f} s] {line}", file=sys.stderr)
    )
    with _demo_root(root) as root, _stop_on_sigterm(), _database_for_a(root, postgres) as extra:
        configs = [
            _demo_config(root, "factory-a.toml", extra),
            _demo_config(root, "factory-b.toml"),
        ]
        say(f"starting {', '.join(c.name for c in configs)} on loopback (state in {root})")
        if postgres:
            say(f"factory-a keeps its tables in PostgreSQL ({configs[0].db_url})")
        with running_datasites(configs):
            say(f"datasites up after {time.perf_counter() - started:.0f} s")
            rows = _round_trip(
                configs, root, {"legacy": legacy_images, "hires": hires_images}, timeout, say
            )
        say(f"datasites stopped; demo took {time.perf_counter() - started:.0f} s")
    return {
        "factories": rows,
        "state": {c.name: str(c.state_dir) for c in configs},
        "database": {c.name: "postgresql" if c.db_url else "sqlite" for c in configs},
    }


DB_PASSWORD_ENV = "WORKBENCH_DEMO_DB_PASSWORD"


@contextlib.contextmanager
def _database_for_a(root: Path, postgres: bool) -> Iterator[str]:
    """The TOML lines that put factory-a on PostgreSQL (a server run for the demo), or ""."""
    if not postgres:
        yield ""
        return
    import os

    from workbench.remote.postgres import create_database, start_postgres, stop_postgres

    if os.geteuid() == 0:  # the server runs as its own system user: it must enter `root`
        os.chmod(root, root.stat().st_mode | 0o011)
    server = start_postgres(root / "postgres")
    try:
        create_database(server, "factory_a")
        os.environ[DB_PASSWORD_ENV] = server.password  # the datasite's launcher inherits it
        yield f'db_url = "{server.url("factory_a")}"\ndb_password_env = "{DB_PASSWORD_ENV}"\n'
    finally:
        os.environ.pop(DB_PASSWORD_ENV, None)
        stop_postgres(server.folder)


@contextlib.contextmanager
def _demo_root(root: Path | None) -> Iterator[Path]:
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
        yield root.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="workbench-demo-") as folder:
        yield Path(folder)


def _round_trip(
    configs: list[DatasiteConfig],
    root: Path,
    counts: dict[str, int],
    timeout: float,
    say: Callable[[str], None],
) -> list[dict]:
    from workbench.remote import client, counting, review, tools
    from workbench.remote.admin import AdminSession, add_researcher, admin_login
    from workbench.remote.upload import upload_folder

    password = secrets.token_urlsafe(18)

    def prepare(index: int, config: DatasiteConfig) -> AdminSession:
        folder = write_synthetic_images(
            root / f"{config.name}-images", config.camera, counts[config.camera], index * 1000
        )
        admin = admin_login(config)
        add_researcher(admin, RESEARCHER, "Demo researcher", password, "University")
        summary = upload_folder(admin.client, folder, DATASET, config.camera, progress=False)
        say(
            f"{config.name}: uploaded {summary.images} {config.camera} images "
            f"({summary.megabytes:.0f} MB, {summary.assets} asset(s)) in {summary.seconds:.1f} s"
        )
        return admin

    # The factories are independent: each is made ready in its own thread (its images
    # drawn, its admin logged in, its researcher added, its upload sent).
    admins = dict(zip([c.name for c in configs], _each_at_once(prepare, configs), strict=True))

    researcher = client.login(configs, RESEARCHER, password)
    client.submit(researcher, counting.count_crystals, DATASET)
    say(f"researcher submitted {FUNCTION} to {', '.join(researcher)}")
    for config in configs:
        request = next(
            r
            for r in review.list_requests(admins[config.name], "pending")
            if r.code.service_func_name == FUNCTION
        )
        found = review.findings(request)
        trial = review.try_on_mock(admins[config.name], request)
        problem = trial.error or review.result_violation(admins[config.name], trial)
        if problem:
            raise WorkbenchError(f"{config.name}: trial on mock failed: {problem}")
        say(
            f"{config.name} admin: {len(found)} finding(s), sandboxed trial on mock "
            f"{trial.result['mean_count']} crystals/image in {trial.seconds:.1f} s; approving"
        )
        review.approve(request)

    client.start_runs(researcher, FUNCTION)
    say("runs started in each factory's sandbox on the private images")
    client.wait_for_results(researcher, FUNCTION, timeout=timeout)
    for config in configs:
        for result in review.held(admins[config.name]):
            say(
                f"{config.name} admin: result held for review ({result.size_bytes} bytes: "
                f"{', '.join(sorted(result.value)[:4])}, ...); releasing it"
            )
            review.release(admins[config.name], result)
    table = client.wait_for_results(researcher, FUNCTION, timeout=timeout)
    rows = []
    for record in table.to_dict("records"):
        if isinstance(record.get("error"), str):
            raise WorkbenchError(f"{record['factory']}: {record['error']}")
        rows.append({"factory": record["factory"], **{key: record[key] for key in FIELDS}})

    manifest = tools.build_manifest("classical-pipeline")
    tools.publish(researcher, manifest)
    for config in configs:
        tools.adopt(config, manifest.name, manifest.version)
    say(f"researcher published tool {manifest.name} {manifest.version}; both admins adopted it")
    return rows


def _each_at_once(work: Callable[[int, Any], Any], items: list) -> list:
    """``[work(i, item) for i, item in enumerate(items)]``, each call in its own thread.

    Results are collected in `items` order, so an error is raised once the calls
    before it have ended; Ctrl-C at once. Calls still running are then left to end on
    their own (the datasites they talk to are stopped on the way out, which ends them).
    """
    pool = ThreadPoolExecutor(max_workers=len(items), thread_name_prefix="demo-factory")
    try:
        futures = [pool.submit(work, index, item) for index, item in enumerate(items)]
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _demo_config(root: Path, shipped_name: str, extra: str = "") -> DatasiteConfig:
    """The shipped factory's name, camera and admin, on a free port with state in `root`.

    `extra` holds further TOML lines (the database).
    """
    shipped = load_config(SHIPPED_CONFIGS / shipped_name)
    return scratch_config(root, shipped.name, shipped.camera, shipped.admin_email, extra=extra)


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into KeyboardInterrupt so every ``finally`` runs.

    SIGINT too: a process started in the background by a script inherits it ignored.
    """

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {
        signum: signal.signal(signum, interrupt)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
