"""What the syft round trip costs: launch, upload, remote-run overhead, and a load test.

:func:`bench_remote` starts one datasite (legacy camera, two job workers) in a
temporary folder and measures

* ``launch_s``: from ``start_datasite`` to the datasite answering (cold process,
  syft import included);
* ``upload_mb_per_s``: ``upload_folder`` of about 100 MB of 12 MP (``hires``) PNG
  frames from this machine, written straight into the datasite's blob folder (as
  ``workbench datasite upload`` does), checking every file included;
  ``upload_api_mb_per_s``: the same folder through syft's API only (an admin on
  another machine);
* ``local_s``: :func:`~workbench.remote.counting.count_crystals` on the images in this
  process; each remote run is compared with the mean of the local runs just before
  and just after it, since other work on the machine changes the speed by up to 20 %
  from one run to the next (``local_runs_s`` lists them all);
* ``remote_s``: the same function on the same images as an approved job on the
  datasite, from starting the run to holding the result (queue, worker, loading the
  asset, the sandboxed run, storing and fetching the result); ``repeats`` runs, each
  a request of its own (``remote_runs_s``);
* ``overhead_pct``: the median over the remote runs of ``100 * (remote / local - 1)``
  (targets: at most 15 at 20 images, 5 at 200); the other figures are medians too;
* ``remote_compute_s``: the time the function itself spent counting inside the job,
  and ``syft_overhead_s`` / ``syft_overhead_pct``: ``remote_s`` minus that, absolute
  and relative to it (what the round trip adds, apart from the counting running at
  another speed on a busy machine);
* the same remote figures on a second datasite started without the hardening
  (plain in-process ``exec``, no sandbox), in the same run: ``unsandboxed_remote_s``,
  ``unsandboxed_overhead_pct``, and ``sandbox_cost_s`` (their difference);
* ``sandbox_start_s``: median time to start a sandbox and call a trivial function
  in it (5 runs);
* with ``large_images``: ``large`` holds the local/remote figures at that many images
  (one remote run);
* with ``load_test``: ``load`` holds :func:`load_test`'s figures (10 researchers x 3
  requests at once on the same datasite);
* ``load_average``: the machine's 1-minute load average before and after, since the
  machine is shared.

Both datasites use ``release = "auto"``: the review step is a person's time, not the
system's.

Examples
--------
>>> numbers = bench_remote(n_images=20)  # doctest: +SKIP
>>> numbers["overhead_pct"] <= 15  # doctest: +SKIP
True
"""

from __future__ import annotations

import itertools
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from workbench.remote._scratch import scratch_config, write_synthetic_images

RESEARCHER = "bench@university.example"
TINY_MOCK = (64, 80)
LOAD_DATASET = "load"
# Two job workers for the load test; room for --large-images on a busy machine (the
# default sandbox limits, 600 s and 1200 CPU s, are a factory's, not a benchmark's).
BENCH_FACTORY = "n_consumers = 2\n\n[sandbox]\ntimeout_s = 3600\ncpu_s = 7200\n"


def bench_remote(
    n_images: int = 20,
    upload_mb: float = 100.0,
    *,
    large_images: int = 0,
    with_load_test: bool = True,
    repeats: int = 3,
    say: Callable[[str], None] | None = None,
) -> dict:
    """Measure launch, upload and round-trip overhead; return the numbers (seconds, %).

    Parameters
    ----------
    n_images : int
        Legacy images counted locally and remotely.
    upload_mb : float
        About how many MB of 12 MP frames to upload for the upload-speed figures.
    large_images : int
        Also measure the overhead at this many images (0: not).
    with_load_test : bool
        Also run :func:`load_test` on the datasite.
    repeats : int
        Remote runs (each between two local runs) behind the `n_images` figures and,
        if asked for, the `large_images` ones.
    say : callable, optional
        Receives progress lines (default: stderr).
    """
    from workbench.remote.admin import admin_login
    from workbench.remote.launch import start_datasite, stop_datasite
    from workbench.remote.upload import local_blob_folder, upload_folder

    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="workbench-bench-") as folder:
        root = Path(folder)
        images = write_synthetic_images(root / "images", "legacy", n_images, seed=0)
        hires = write_synthetic_images(root / "hires", "hires", 1, seed=0)
        frames = _copies(hires, root / "up", megabytes=upload_mb)
        config = scratch_config(root, "factory-bench", release="auto", extra=BENCH_FACTORY)
        plain = scratch_config(root, "factory-plain", release="auto")
        sandbox_start_s = _sandbox_start_seconds()
        say(f"sandbox start: {sandbox_start_s:.2f} s")

        started = time.perf_counter()
        start_datasite(config)
        launch_s = time.perf_counter() - started
        say(f"datasite up in {launch_s:.1f} s")
        start_datasite(plain, hardening=False)
        try:
            admin = admin_login(config)
            blob_folder = local_blob_folder(config)
            direct = upload_folder(
                admin.client,
                frames,
                "upload-direct",
                "hires",
                progress=False,
                blob_folder=blob_folder,
            )
            through_api = upload_folder(admin.client, frames, "upload-api", "hires", progress=False)
            say(
                f"uploaded {direct.megabytes:.0f} MB of 12 MP frames: "
                f"{direct.megabytes_per_second:.1f} MB/s into the blob folder, "
                f"{through_api.megabytes_per_second:.1f} MB/s through the API"
            )
            numbers = {
                "images": n_images,
                "launch_s": round(launch_s, 2),
                "upload_mb": round(direct.megabytes, 1),
                "upload_mb_per_s": round(direct.megabytes_per_second, 1),
                "upload_api_mb_per_s": round(through_api.megabytes_per_second, 1),
                **_overhead(config, plain, images, "bench", say, repeats),
                "sandbox_start_s": round(sandbox_start_s, 3),
            }
            if large_images:
                many = _copies(images, root / "large", count=large_images)
                numbers["large"] = {
                    "images": large_images,
                    **_overhead(config, None, many, "large", say, repeats),
                }
            if with_load_test:
                numbers["load"] = load_test(config, say=say)
        finally:
            stop_datasite(config)
            stop_datasite(plain)
    numbers["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return numbers


def _overhead(
    config: Any,
    plain: Any,
    images: Path,
    dataset: str,
    say: Callable[[str], None],
    repeats: int = 1,
) -> dict:
    """Local against remote counting of the folder `images` (and on `plain`, if given).

    The runs interleave: local, remote (and unsandboxed), local, remote, ..., local.
    Each remote run is compared with the mean of the local runs on either side of it
    (the speed of this machine drifts with other work); the figures are the medians
    over the `repeats` remote runs.
    """
    from workbench.remote import client, counting, review
    from workbench.remote.admin import add_researcher, admin_login
    from workbench.remote.upload import image_batch, read_image_folder, upload_folder

    read = read_image_folder(images)
    batch = image_batch(read.images, read.files, "legacy", 2.0)
    sites = [config] + ([plain] if plain is not None else [])
    researchers = {}
    for site in sites:
        admin = admin_login(site)
        email = f"{dataset}-{RESEARCHER}"
        password = add_researcher(admin, email, "Bench")
        upload_folder(admin.client, images, dataset, "legacy", progress=False, mock_shape=TINY_MOCK)
        researchers[site.name] = (admin, client.login([site], email, password))

    def local_run() -> tuple[dict, float]:
        summary, seconds = _timed(counting.count_crystals, batch)
        say(f"local: {len(read.images)} images in {seconds:.1f} s")
        return summary, seconds

    local, first_s = local_run()
    local_runs, runs = [first_s], {site.name: [] for site in sites}
    for repeat in range(repeats):
        name = f"count_crystals_{repeat}"
        for site in sites:
            admin, researcher = researchers[site.name]
            client.submit(researcher, _renamed(counting.count_crystals, name), dataset)
            review.approve(review.list_requests(admin, "pending")[0])
            table, seconds = _timed(_remote_run, researcher, name)
            remote = table.iloc[0]
            if remote.get("mean_count") != local["mean_count"]:
                raise RuntimeError(f"remote result {dict(remote)} differs from local {local}")
            runs[site.name].append((seconds, float(remote["seconds"])))
            say(f"remote ({site.name}): {len(read.images)} images in {seconds:.1f} s")
        local_runs.append(local_run()[1])
    brackets = [(before + after) / 2 for before, after in itertools.pairwise(local_runs)]
    remote_s = [seconds for seconds, _ in runs[config.name]]
    compute_s = [compute for _, compute in runs[config.name]]
    numbers = {
        "local_s": round(statistics.median(brackets), 2),
        "local_runs_s": [round(seconds, 2) for seconds in local_runs],
        "remote_s": round(statistics.median(remote_s), 2),
        "remote_runs_s": [round(seconds, 2) for seconds in remote_s],
        "overhead_pct": _median_pct(remote_s, brackets),
        "remote_compute_s": round(statistics.median(compute_s), 2),
        "syft_overhead_s": round(
            statistics.median(
                total - compute for total, compute in zip(remote_s, compute_s, strict=True)
            ),
            2,
        ),
        "syft_overhead_pct": _median_pct(remote_s, compute_s),
    }
    if plain is not None:
        plain_s = [seconds for seconds, _ in runs[plain.name]]
        numbers.update(
            unsandboxed_remote_s=round(statistics.median(plain_s), 2),
            unsandboxed_overhead_pct=_median_pct(plain_s, brackets),
            sandbox_cost_s=round(
                statistics.median(
                    mine - other for mine, other in zip(remote_s, plain_s, strict=True)
                ),
                2,
            ),
        )
    return numbers


def _median_pct(values: list[float], references: list[float]) -> float:
    """Median over pairs of how much longer each value took than its reference, in %."""
    return round(
        statistics.median(100.0 * (v / r - 1.0) for v, r in zip(values, references, strict=True)), 1
    )


def load_test(
    config: Any,
    researchers: int = 10,
    requests_each: int = 3,
    say: Callable[[str], None] | None = None,
) -> dict:
    """`researchers` researchers at once, each submitting `requests_each` requests in turn.

    Runs on the running datasite of `config` (a :class:`DatasiteConfig` with
    ``release = "auto"``), on a small dataset it uploads, so that the datasite's own
    costs, not the counting, are what is measured.

    Each request goes the whole way: submitted, approved by the admin (a thread that
    approves whatever is pending, as fast as it can), run (the datasite's workers
    share the runs), result fetched and checked. The datasite must lose nothing.

    Returns
    -------
    dict
        ``requests``, ``lost`` (results missing or wrong), ``seconds`` (wall clock),
        ``p50_s`` and ``p95_s`` per step (``submit``, ``approval_wait``, ``run``,
        ``total``), and the datasite's memory (``rss_mb_before``, ``rss_mb_peak``,
        ``rss_mb_after``: launcher and server together).
    """
    import numpy as np

    from workbench.remote import client, counting, review
    from workbench.remote.admin import add_researcher, admin_login
    from workbench.remote.upload import image_batch, upload_batches

    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    admin = admin_login(config)
    frames = [np.full((64, 80), 20 * i, np.uint8) for i in range(3)]
    batch = image_batch(frames, ["a.png", "b.png", "c.png"], "legacy", 2.0)
    upload_batches(admin.client, LOAD_DATASET, [batch], mock_shape=TINY_MOCK, progress=False)
    expected = round(float(np.mean([np.mean(frame) for frame in frames])), 3)
    emails = [f"load-{index:02d}@university.example" for index in range(researchers)]
    accounts = {email: add_researcher(admin, email, "Load") for email in emails}
    functions = [_renamed(counting.mean_intensity, f"load_{k}") for k in range(requests_each)]
    steps: dict[str, list[float]] = {"submit": [], "approval_wait": [], "run": [], "total": []}
    results: list[float] = []
    done = threading.Event()
    memory = _MemoryWatch(config)

    def approve_pending() -> None:
        while not done.is_set():
            for request in review.list_requests(admin, "pending"):
                review.approve(request)
            time.sleep(0.5)

    def researcher(email: str) -> None:
        sites = client.login([config], email, accounts[email])
        for function in functions:
            started = time.perf_counter()
            client.submit(sites, function, LOAD_DATASET)
            submitted = time.perf_counter()
            while client.status_table(sites, function.__name__).iloc[0]["request"] != "approved":
                time.sleep(0.5)
            approved = time.perf_counter()
            client.start_runs(sites, function.__name__)
            row = client.wait_for_results(sites, function.__name__, timeout=900).iloc[0]
            finished = time.perf_counter()
            results.append(row.get("mean_intensity"))
            for step, seconds in (
                ("submit", submitted - started),
                ("approval_wait", approved - submitted),
                ("run", finished - approved),
                ("total", finished - started),
            ):
                steps[step].append(seconds)

    stdout = sys.stdout  # syft's quiet() swaps it; threads may leave it swapped
    memory.start()
    started = time.perf_counter()
    approver = threading.Thread(target=approve_pending, daemon=True)
    approver.start()
    try:
        with ThreadPoolExecutor(max_workers=researchers) as pool:
            for future in [pool.submit(researcher, email) for email in accounts]:
                future.result()
    finally:
        done.set()
        approver.join()  # before the datasite may stop: no call left in flight
        seconds = time.perf_counter() - started
        memory.stop()
        sys.stdout = stdout
    lost = researchers * requests_each - sum(bool(value == expected) for value in results)
    say(f"load test: {len(results)} runs in {seconds:.0f} s, {lost} lost")
    return {
        "researchers": researchers,
        "requests": researchers * requests_each,
        "lost": lost,
        "seconds": round(seconds, 1),
        **{
            f"{step}_{name}_s": round(value, 2)
            for step, values in steps.items()
            for name, value in zip(("p50", "p95"), _p50_p95(values), strict=True)
        },
        **memory.figures(),
    }


def _p50_p95(values: list[float]) -> tuple[float, float]:
    if not values:
        return (float("nan"), float("nan"))
    ordered = sorted(values)
    return statistics.median(ordered), ordered[
        min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))
    ]


class _MemoryWatch(threading.Thread):
    """Samples the resident memory of a datasite's processes (launcher and server)."""

    def __init__(self, config) -> None:
        super().__init__(daemon=True)
        self.config, self.samples, self.stopped = config, [], threading.Event()
        self.before = self._rss_mb()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            self.samples.append(self._rss_mb())

    def stop(self) -> None:
        self.stopped.set()
        self.join()

    def figures(self) -> dict:
        return {
            "rss_mb_before": round(self.before),
            "rss_mb_peak": round(max(self.samples, default=self.before)),
            "rss_mb_after": round(self._rss_mb()),
        }

    def _rss_mb(self) -> float:
        """Resident MB of every process in the datasite's process group."""
        leader = int(self.config.state_file("datasite.pid").read_text())
        total_kb = 0
        for entry in Path("/proc").iterdir():
            try:
                if not entry.name.isdigit():
                    continue
                if int((entry / "stat").read_text().rsplit(") ", 1)[-1].split()[2]) != leader:
                    continue
                status = (entry / "status").read_text()
            except OSError:
                continue
            total_kb += next(
                (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")),
                0,
            )
        return total_kb / 1024


def _renamed(function: Callable, name: str) -> Callable:
    """`function` under another name, its source still readable by ``inspect``.

    A researcher's requests are told apart by function name: the load test's three
    requests per researcher are the same function under three names.
    """
    import inspect
    import linecache
    import textwrap

    source = textwrap.dedent(inspect.getsource(function))
    source = source.replace(f"def {function.__name__}(", f"def {name}(", 1)
    filename = f"<workbench-bench-{name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    namespace: dict = {}
    exec(compile(source, filename, "exec"), namespace)  # our own function's source
    return namespace[name]


def _sandbox_start_seconds(runs: int = 5) -> float:
    """Median seconds to start a sandbox and call a trivial function in it."""
    from workbench.sandbox import run_in_sandbox

    source = "def ping():\n    return 1\n"
    return statistics.median(_timed(run_in_sandbox, source, "ping", {})[1] for _ in range(runs))


def _timed(function: Callable, *args):
    started = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - started


def _remote_run(researcher, function_name: str):
    from workbench.remote import client

    client.start_runs(researcher, function_name)
    return client.wait_for_results(researcher, function_name)


def _copies(
    images: Path, folder: Path, *, count: int | None = None, megabytes: float | None = None
) -> Path:
    """Copy the images of `images` round-robin into `folder`: `count` files, or until
    their pixels reach `megabytes`."""
    from workbench.imaging.io import list_images, load_image

    sources = list_images(images)
    if count is None:
        per_image = load_image(sources[0]).original.nbytes / 1e6
        count = max(1, round(megabytes / per_image))
    folder.mkdir()
    for index in range(count):
        source = sources[index % len(sources)]
        shutil.copyfile(source, folder / f"{index:04d}{source.suffix}")
    return folder


def bench_pooled(n_images: int = 6, say: Callable[[str], None] | None = None) -> dict:
    """What a pooled request costs over the plain one, on three factories.

    Starts three datasites (``release = "auto"``, each other's pooling peers) with
    `n_images` legacy images each, then times from submission to the combined answer:
    the plain request (:func:`~workbench.remote.counting.crystal_rows`, one clear
    answer per factory), the secure pooled one, and the secure pooled one with DP
    noise. The admins approve at once (their time is not the system's).

    Returns
    -------
    dict
        ``plain_s``, ``secure_s``, ``secure_dp_s`` and the overheads in seconds and %.
    """
    from workbench.remote import client, counting, pooling, review
    from workbench.remote._scratch import pooling_peers
    from workbench.remote.admin import add_researcher, admin_login
    from workbench.remote.launch import running_datasites
    from workbench.remote.upload import upload_folder

    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    names = ["factory-a", "factory-b", "factory-c"]
    with tempfile.TemporaryDirectory(prefix="workbench-bench-pool-") as folder:
        root = Path(folder)
        privacy = pooling_peers(root, names)
        configs = [scratch_config(root, n, release="auto", extra=privacy[n]) for n in names]
        images = write_synthetic_images(root / "images", "legacy", n_images, seed=0)
        with running_datasites(configs):
            admins = [admin_login(config) for config in configs]
            passwords = {}
            for config, admin in zip(configs, admins, strict=True):
                passwords[config.name] = add_researcher(admin, RESEARCHER, "Bench")
                upload_folder(
                    admin.client, images, "bench", "legacy", progress=False, mock_shape=TINY_MOCK
                )
            researcher = client.login(configs, RESEARCHER, passwords)

            def timed_round(**plan) -> float:
                started = time.perf_counter()
                pooling.submit_pooled(researcher, counting.crystal_rows, "bench", **plan)
                for admin in admins:
                    review.approve(review.list_requests(admin, "pending")[0])
                client.start_runs(researcher, "crystal_rows")
                client.wait_for_results(researcher, "crystal_rows")
                pooling.combine(researcher, "crystal_rows")
                return time.perf_counter() - started

            seconds = {
                "plain_s": timed_round(secure=False),
                "secure_s": timed_round(secure=True),
                "secure_dp_s": timed_round(secure=True, epsilon=1.0, delta=1e-6),
            }
            say(", ".join(f"{key} {value:.1f}" for key, value in seconds.items()))
    plain = seconds["plain_s"]
    return {
        "factories": len(names),
        "images_each": n_images,
        **{key: round(value, 2) for key, value in seconds.items()},
        "secure_overhead_s": round(seconds["secure_s"] - plain, 2),
        "secure_overhead_pct": round(100 * (seconds["secure_s"] / plain - 1), 1),
        "secure_dp_overhead_s": round(seconds["secure_dp_s"] - plain, 2),
        "secure_dp_overhead_pct": round(100 * (seconds["secure_dp_s"] / plain - 1), 1),
    }
