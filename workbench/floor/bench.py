"""What the page costs: one legacy frame through the floor vs ``workbench count``, and a batch.

``workbench floor bench`` writes synthetic legacy frames, times ``workbench count
FRAME --json`` (a fresh process, as an operator runs it), then the same frame
through a floor page served from this process (upload, hash check, count, overlay,
history row; timed from the upload until its progress says done), then a batch of
`frames` frames, recording how often the progress moved.

Examples
--------
>>> run_bench(frames=50)  # doctest: +SKIP
{'workbench_count_s': 1.9, 'page_one_frame_s': 0.9, 'page_extra_s': -1.0, ...}
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import httpx

from workbench.floor.demo import free_port, prepare_floor
from workbench.floor.service import floor_in_thread
from workbench.remote.tools import adopted_tools

USER, PASSWORD = "bench", "bench-password-1"


def http_session(url: str, user: str, password: str) -> httpx.Client:
    """An HTTP client logged in to the floor at `url` (as a browser would: nonce, cookie)."""
    client = httpx.Client(base_url=url, timeout=60)
    nonce = client.get("/login").text.split('name="nonce" value="')[1].split('"')[0]
    response = client.post("/login", data={"nonce": nonce, "user": user, "password": password})
    if response.status_code != 303:
        raise RuntimeError(f"login as {user} refused ({response.status_code})")
    return client


def upload_batch(client: httpx.Client, name: str, tool: str, paths: list[Path]) -> str:
    """Upload `paths` as batch `name`; return the batch page's path."""
    csrf = client.get("/").text.split('name="csrf" value="')[1].split('"')[0]
    files = [("images", (path.name, path.read_bytes(), "image/png")) for path in paths]
    response = client.post("/batches", data={"csrf": csrf, "batch": name, "tool": tool},
                           files=files)
    if response.status_code != 303:
        raise RuntimeError(f"upload of {name} refused ({response.status_code})")
    return response.headers["location"]


def wait_for_batch(client: httpx.Client, batch: str, poll: float = 0.02) -> tuple[dict, int]:
    """Poll the batch's progress until done: ``(final progress, progress changes seen)``."""
    seen = set()
    while True:
        state = client.get(f"{batch}/progress").json()
        seen.add(state["done"] + state["failed"])
        if state["status"] == "done":
            return state, len(seen)
        time.sleep(poll)


def run_bench(frames: int = 50, repeats: int = 5) -> dict:
    """Time one frame through the page and `workbench count`, and a batch of `frames`."""
    from workbench.synth import synthesize, write_sample

    with tempfile.TemporaryDirectory(prefix="floor-bench-") as tmp:
        folder = Path(tmp)
        paths = []
        for index in range(frames):
            write_sample(synthesize("legacy", seed=7000 + index, density_per_mm2=25),
                         folder / "frames", f"F-{index:03d}")
            paths.append(folder / "frames" / f"F-{index:03d}.png")
        config = prepare_floor(folder / "floor.toml", "factory-bench", folder / "state",
                               users={USER: ("operator", PASSWORD)},
                               adopt_locally=("classical-pipeline",), port=free_port(),
                               max_images=max(frames, 1))
        tool = next(iter(adopted_tools(config.state_dir)))
        with floor_in_thread(config), closing(http_session(config.url, USER, PASSWORD)) as client:
            cli, page = [], []
            for attempt in range(repeats):  # alternate, so both see the same load
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "workbench", "count", str(paths[0]),
                                "--json"], check=True, capture_output=True)
                cli.append(time.perf_counter() - started)
                started = time.perf_counter()
                wait_for_batch(client, upload_batch(client, f"one-{attempt}", tool, paths[:1]))
                page.append(time.perf_counter() - started)
            started = time.perf_counter()
            state, moves = wait_for_batch(client, upload_batch(client, "fifty", tool, paths),
                                          poll=0.2)
            batch_seconds = time.perf_counter() - started
    return {
        "workbench_count_s": round(statistics.median(cli), 3),
        "page_one_frame_s": round(statistics.median(page), 3),
        "page_extra_s": round(statistics.median(page) - statistics.median(cli), 3),
        "batch_frames": frames,
        "batch_done": state["done"],
        "batch_s": round(batch_seconds, 2),
        "batch_s_per_frame": round(batch_seconds / max(frames, 1), 3),
        "batch_progress_updates": moves,
        "workers": config.workers,
    }
