"""``workbench floor up|down|status``: the floor page as one background process per factory.

``up`` starts ``python -m workbench.floor.service CONFIG`` in its own session (so
``down`` stops it and its counting workers as one process group), with its pid and
log in the floor's folder of the factory's state folder (0700), and returns once the
page answers. ``status`` says whether it runs and answers.

Examples
--------
>>> from workbench.floor.config import load_floor_config
>>> config = load_floor_config("datasites/floor/factory-a.toml")  # doctest: +SKIP
>>> start_floor(config)  # doctest: +SKIP
'http://127.0.0.1:8091'
>>> floor_status(config)  # doctest: +SKIP
{'factory': 'factory-a', 'state': 'up', 'url': 'http://127.0.0.1:8091', 'pid': 4242}
>>> stop_floor(config)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.floor.config import FloorConfig, load_floor_config


def _pid_file(config: FloorConfig) -> Path:
    return config.floor_dir / "floor.pid"


def _log_file(config: FloorConfig) -> Path:
    return config.floor_dir / "floor.log"


def running_pid(config: FloorConfig) -> int | None:
    """Pid of this factory's floor process if it is alive, else None."""
    try:
        pid = int(_pid_file(config).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def answers(config: FloorConfig, timeout: float = 2.0) -> bool:
    """Whether the page at ``config.url`` answers its health check as this factory."""
    try:
        with urllib.request.urlopen(f"{config.url}/health", timeout=timeout) as response:
            return json.load(response).get("factory") == config.factory
    except (OSError, ValueError, urllib.error.URLError):
        return False


def start_floor(config: FloorConfig, timeout: float = 90.0) -> str:
    """Start the floor in the background and wait until it answers; return its address.

    Raises
    ------
    WorkbenchError
        If it runs already, its port is taken, or it does not come up within `timeout`
        seconds (the end of its log is quoted).
    """
    if config.path is None:
        raise WorkbenchError(f"floor {config.factory}: start it from a config file")
    if running_pid(config) is not None:
        raise WorkbenchError(f"floor {config.factory} is already up at {config.url}")
    if answers(config, timeout=1.0):
        raise WorkbenchError(f"port {config.port} already serves a floor page; "
                             "stop it first or choose another port")
    config.floor_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(_log_file(config), "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "workbench.floor.service", str(config.path.resolve())],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _pid_file(config).write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _pid_file(config).unlink(missing_ok=True)
            raise WorkbenchError(f"floor {config.factory} stopped while starting: "
                                 f"{_log_tail(config)}")
        if answers(config, timeout=1.0):
            return config.url
        time.sleep(0.3)
    stop_floor(config)
    raise WorkbenchError(f"floor {config.factory} did not answer within {timeout:.0f} s: "
                         f"{_log_tail(config)}")


def stop_floor(config: FloorConfig, timeout: float = 20.0) -> bool:
    """Stop the floor and its counting workers; False if it was not running."""
    pid = running_pid(config)
    if pid is None:
        _pid_file(config).unlink(missing_ok=True)
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if not _alive(pid):
            break
    _pid_file(config).unlink(missing_ok=True)
    return True


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        if finished:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def floor_status(config: FloorConfig) -> dict:
    """``{"factory", "state": "up" | "down" | "not answering", "url", "pid"}``."""
    pid = running_pid(config)
    state = "down" if pid is None else ("up" if answers(config) else "not answering")
    return {"factory": config.factory, "state": state, "url": config.url, "pid": pid}


def _log_tail(config: FloorConfig, lines: int = 6) -> str:
    try:
        text = _log_file(config).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " | ".join(text[-lines:]) or "empty log"


def serve(config: FloorConfig) -> None:
    """Serve the floor in this process until SIGTERM or Ctrl-C."""
    import uvicorn

    from workbench.floor.app import create_app

    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="warning",
                access_log=False, timeout_graceful_shutdown=10)


@contextlib.contextmanager
def floor_in_thread(config: FloorConfig, runner=None) -> Iterator[str]:
    """Serve the floor from a thread of this process while the block runs; yield its address.

    For tests and benchmarks: the same app and counting pool as :func:`serve`.
    """
    import uvicorn

    from workbench.floor.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(config, runner), host=config.host,
                                           port=config.port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, name=f"floor-{config.factory}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise WorkbenchError(f"floor {config.factory} did not start on port {config.port}")
        time.sleep(0.05)
    try:
        yield config.url
    finally:
        server.should_exit = True
        thread.join(timeout=60)


if __name__ == "__main__":
    serve(load_floor_config(sys.argv[1]))
