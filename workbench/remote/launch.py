"""Start, stop and inspect a factory datasite (one background process per factory).

``start_datasite`` runs ``python -m workbench.remote.launch CONFIG`` in its own
session, with its output in ``state/datasite.log``, and returns once the datasite
answers. That process (:func:`serve`) pins the factory's identity and blob folder
through the environment before importing syft, installs the security wraps, then
calls ``sy.orchestra.launch`` on loopback, which forks the uvicorn server child.
``stop_datasite`` signals the whole process group, so the server child and any job
consumer stop too.

Files in the state folder (mode 0700: it holds the private images): ``datasite.pid``
(process-group leader), ``datasite.ready`` (written once the admin account is
checked), ``datasite.log``, ``identity.json``,
``admin-password`` (unless the password comes from the environment),
``datasite.sqlite*`` and ``<server uid>/blob/``.

Examples
--------
>>> from workbench.remote.config import load_config
>>> config = load_config("datasites/factory-a.toml")  # doctest: +SKIP
>>> start_datasite(config)  # doctest: +SKIP
>>> datasite_pid(config) is not None  # doctest: +SKIP
True
>>> stop_datasite(config)  # doctest: +SKIP
True
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from workbench._exit import exit_now
from workbench.errors import WorkbenchError
from workbench.remote.config import DatasiteConfig, load_config
from workbench.remote.identity import (
    IDENTITY_FILE,
    PASSWORD_FILE,
    admin_password,
    load_or_create_identity,
)

PID_FILE = "datasite.pid"
READY_FILE = "datasite.ready"
LOG_FILE = "datasite.log"
CRASH_PORT_WAIT_S = 10.0  # how long a restart after a crash waits for the old sockets to close


def start_datasite(
    config: DatasiteConfig, *, hardening: bool = True, timeout: float = 120.0
) -> int:
    """Start the datasite of `config` in the background and wait until it answers.

    Parameters
    ----------
    config : DatasiteConfig
        The factory; ``config.path`` must be its TOML file (the child reads it).
    hardening : bool
        Install the security patches (``_hardening.py``: the sandbox, the output rule,
        the release review...). Only tests that show a gap turn them off.
    timeout : float
        Seconds to wait for the datasite to answer.

    Returns
    -------
    int
        Process id of the launcher (leader of the datasite's process group).

    Raises
    ------
    WorkbenchError
        If it is already up, its port is taken, or it does not come up in time
        (the message quotes the end of its log).
    """
    return start_datasites([config], hardening=hardening, timeout=timeout)[0]


def start_datasites(
    configs: Sequence[DatasiteConfig], *, hardening: bool = True, timeout: float = 120.0
) -> list[int]:
    """Start several datasites at once (they boot in parallel); wait for all of them.

    If one fails, those already started are stopped again before the error is raised.
    See :func:`start_datasite` for the parameters.
    """
    processes = []
    try:
        for config in configs:
            processes.append(_spawn(config, hardening))
        deadline = time.monotonic() + timeout
        return [
            _wait_ready(config, process, deadline)
            for config, process in zip(configs, processes, strict=True)
        ]
    except BaseException:
        for config in configs[: len(processes)]:
            stop_datasite(config)
        raise


def _spawn(config: DatasiteConfig, hardening: bool) -> subprocess.Popen:
    if config.path is None:
        raise WorkbenchError(f"datasite {config.name}: needs a config file to start from")
    running = datasite_pid(config)
    if running is not None:
        raise WorkbenchError(
            f"datasite {config.name} is already up (pid {running}, port {config.port})"
        )
    # A datasite that died (kill -9, power cut) leaves its pid file; its last threads
    # may still be closing its sockets for a moment after its processes look gone.
    crashed = _recorded_pid(config) is not None
    _check_port_free(config, wait=CRASH_PORT_WAIT_S if crashed else 0.0)
    _private_folder(config.state_dir)
    config.state_file(READY_FILE).unlink(missing_ok=True)
    command = [sys.executable, "-m", "workbench.remote.launch", str(config.path)]
    if not hardening:
        command.append("--no-hardening")
    with open(config.state_file(LOG_FILE), "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: `down` stops all of it
        )
    config.state_file(PID_FILE).write_text(f"{process.pid}\n")
    return process


def _wait_ready(config: DatasiteConfig, process: subprocess.Popen, deadline: float) -> int:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            config.state_file(PID_FILE).unlink(missing_ok=True)
            raise WorkbenchError(
                f"datasite {config.name} stopped while starting: {_log_tail(config)}"
            )
        if config.state_file(READY_FILE).exists() and is_answering(config):
            return process.pid
        time.sleep(0.2)
    raise WorkbenchError(
        f"datasite {config.name} did not answer on port {config.port} in time: {_log_tail(config)}"
    )


def stop_datasite(config: DatasiteConfig, timeout: float = 15.0) -> bool:
    """Stop the datasite of `config` and every process it started.

    Sends SIGTERM to the process group (the launcher lands the server child), then
    SIGKILL to whatever is left after `timeout` seconds.

    Returns
    -------
    bool
        True if it was running, False if it was already down.
    """
    pid = _recorded_pid(config)
    config.state_file(READY_FILE).unlink(missing_ok=True)
    if pid is None or not _group_alive(pid):
        config.state_file(PID_FILE).unlink(missing_ok=True)
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _group_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(pid):
        _signal_group(pid, signal.SIGKILL)
        while _group_alive(pid) and time.monotonic() < deadline + 5:
            time.sleep(0.1)
    config.state_file(PID_FILE).unlink(missing_ok=True)
    return True


def datasite_pid(config: DatasiteConfig) -> int | None:
    """Process id of the running datasite of `config`, or None when it is down."""
    pid = _recorded_pid(config)
    return pid if pid is not None and _alive(pid) else None


def is_answering(config: DatasiteConfig, timeout: float = 2.0) -> bool:
    """True if something answers syft's metadata route on the datasite's port."""
    return url_answers(config.url, timeout)


def url_answers(url: str, timeout: float = 2.0) -> bool:
    """True if a datasite answers syft's metadata route at `url`.

    Examples
    --------
    >>> url_answers("http://127.0.0.1:9", timeout=0.5)  # nothing listens on port 9
    False
    """
    try:
        with urllib.request.urlopen(f"{url}/api/v2/metadata", timeout=timeout) as reply:
            return reply.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def running_datasites(
    configs: Sequence[DatasiteConfig], *, hardening: bool = True, timeout: float = 120.0
) -> Iterator[list[DatasiteConfig]]:
    """Start every datasite in `configs`; stop them all on leaving, also on errors.

    Examples
    --------
    >>> with running_datasites([config_a, config_b]):  # doctest: +SKIP
    ...     ...
    """
    start_datasites(configs, hardening=hardening, timeout=timeout)  # cleans up if it fails
    try:
        yield list(configs)
    finally:
        for config in reversed(configs):
            stop_datasite(config)


def serve(config: DatasiteConfig, hardening: bool = True) -> None:
    """Run the datasite of `config` in this process until SIGTERM or SIGINT.

    Called in the background process; use :func:`start_datasite` instead.

    Raises
    ------
    WorkbenchError
        If the admin e-mail is not valid, or the server child dies while starting.
    """
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(config.admin_email, check_deliverability=False)
    except EmailNotValidError as error:
        raise WorkbenchError(f"admin_email {config.admin_email!r}: {error}") from None
    state = config.state_dir
    _private_folder(state)
    check_state(config)
    identity = load_or_create_identity(state)
    password = admin_password(state, config.password_env)
    # syft reads these once, when its server module is imported: the pinned identity
    # (restart trap), the blob folder, and the first admin (never `changethis`).
    secrets = {
        "SERVER_PRIVATE_KEY": identity.signing_key_hex,
        "DEFAULT_ROOT_PASSWORD": password,
    }
    os.environ.update(secrets)
    os.environ.update(
        SERVER_UID=identity.server_uid_hex,
        SYFT_TEMP_ROOT=str(state),
        DEFAULT_ROOT_EMAIL=config.admin_email,
        DEFAULT_ROOT_USERNAME=config.admin_name,
    )
    import multiprocessing

    import syft as sy

    for name in secrets:  # keep them out of the server child's environment
        del os.environ[name]
    from workbench.remote import _hardening, _job_wait, _patches, _recovery, _syft_fixes

    _patches.install(_syft_fixes.patches())  # restart and speed fixes: always on
    _patches.install(_job_wait.patches())  # a job's end told at once: always on
    _patches.install(_recovery.patches(config))  # crash recovery: always on
    if hardening:
        _patches.install(_hardening.patches(config))

    stopping = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.append(True))
    handle = sy.orchestra.launch(
        name=config.name,
        port=config.port,
        host=config.host,
        reset=False,
        db_url=config.database_url,
        n_consumers=config.n_consumers,
        create_producer=True,
    )
    try:
        if not multiprocessing.active_children():
            raise WorkbenchError("the syft server process exited while starting (see above)")
        admin = sy.login(url=config.url, email=config.admin_email, password=password)
        admin.settings.allow_guest_signup(enable=False)  # accounts come from the admin
        config.state_file(READY_FILE).write_text(f"{os.getpid()}\n")
        while not stopping and multiprocessing.active_children():
            time.sleep(0.5)
    finally:
        config.state_file(READY_FILE).unlink(missing_ok=True)
        handle.land()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m workbench.remote.launch CONFIG [--no-hardening]``."""
    parser = argparse.ArgumentParser(prog="python -m workbench.remote.launch")
    parser.add_argument("config")
    parser.add_argument("--no-hardening", action="store_true")
    options = parser.parse_args(argv)
    try:
        serve(load_config(options.config), hardening=not options.no_hardening)
    except WorkbenchError as error:
        # start_datasite quotes the last lines of the log: make the last one the reason.
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    exit_now(0)  # the server has landed: skip 3 s of teardown, which every stop waited for


def check_state(config: DatasiteConfig) -> None:
    """Refuse to start on a damaged or incomplete state folder, naming the file.

    Checked before anything starts, so a bad state folder never gives a half-started
    server: the identity (``identity.json``) parses, and is there whenever the
    database is; the SQLite database passes ``PRAGMA quick_check``, and is there
    whenever blobs or held results are; the admin password file is there whenever the
    database is (unless the password comes from the environment); every held result
    parses. A state folder without a database is a new factory.

    Raises
    ------
    WorkbenchError
        One line: the file, what is wrong with it, what to do.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from workbench.remote.config import config_from_dict
    >>> state = pathlib.Path(tempfile.mkdtemp())
    >>> check_state(config_from_dict({"name": "factory-x", "state": str(state)}))  # new
    >>> _ = (state / "identity.json").write_text("{not json")
    >>> check_state(config_from_dict({"name": "factory-x", "state": str(state)}))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    workbench.errors.WorkbenchError: .../identity.json: damaged datasite identity file (...)
    """
    state = config.state_dir
    restore = "restore the factory from a backup (workbench datasite restore BACKUP CONFIG)"
    database = None if config.db_url else state / "datasite.sqlite"
    has_database = database is not None and database.exists()
    if (state / IDENTITY_FILE).exists():
        try:
            load_or_create_identity(state)
        except WorkbenchError as error:  # the message names the file
            raise WorkbenchError(f"{error}; {restore}") from None
    elif has_database:
        raise WorkbenchError(
            f"{state / IDENTITY_FILE} is missing but {database.name} holds this factory's "
            f"data: without its identity the datasite cannot open it; {restore}"
        )
    if has_database:
        _check_sqlite(database, restore)
        from_env = bool(config.password_env and os.environ.get(config.password_env))
        if not from_env and not (state / PASSWORD_FILE).exists():
            raise WorkbenchError(
                f"{state / PASSWORD_FILE} is missing and {config.password_env or 'no variable'}"
                f" is not set: set {config.password_env or 'password_env'} to the admin "
                f"password, or {restore}"
            )
    elif database is not None and _holds_data(state):
        raise WorkbenchError(
            f"{database} is missing but {state} holds this factory's blobs or held "
            f"results: {restore}"
        )
    for path in sorted((state / "held").glob("*.json")):
        try:
            json.loads(path.read_text())
        except (OSError, ValueError, UnicodeDecodeError) as error:
            raise WorkbenchError(f"{path}: damaged held result ({error}); {restore}") from None


def _check_sqlite(database: Path, restore: str) -> None:
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=10)) as connection:
            verdict = connection.execute("PRAGMA quick_check(1)").fetchone()[0]
    except sqlite3.Error as error:
        verdict = str(error)
    if verdict != "ok":
        raise WorkbenchError(f"{database}: damaged database ({verdict}); {restore}")


def _holds_data(state: Path) -> bool:
    """True if `state` has blob files or held results (an old factory's data)."""
    blobs = (path for path in state.glob("*/blob/*") if path.is_file())
    return next(blobs, None) is not None or any((state / "held").glob("*.json"))


def _private_folder(folder: Path) -> None:
    """Create `folder` readable by the owner only: it holds the private images."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)


def _check_port_free(config: DatasiteConfig, wait: float = 0.0) -> None:
    """Raise unless the datasite's port is free, trying again for `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As uvicorn does: connections of a just-stopped server (TIME_WAIT) do not count.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((config.host, config.port))
                return
            except OSError:
                if time.monotonic() >= deadline:
                    raise WorkbenchError(
                        f"datasite {config.name}: port {config.port} on {config.host} is "
                        "already in use"
                    ) from None
        time.sleep(0.1)


def _recorded_pid(config: DatasiteConfig) -> int | None:
    try:
        return int(config.state_file(PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """True if `pid` runs a datasite launcher (or its forked server child)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own exited child
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[-1]
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    # A stale pid file may name a pid the system has since given to another program.
    return not state.startswith("Z") and b"workbench.remote.launch" in command


def _group_alive(pgid: int) -> bool:
    """True while any datasite process of the group led by `pgid` is running.

    A process of the group that is exiting counts too: its command line is already
    empty, but until it is a zombie it may still hold the datasite's sockets.
    """
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[-1].split()
            exiting = fields[0] != "Z" and not (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[2]) == pgid and (exiting or _alive(int(entry.name))):
            return True
    return False


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _log_tail(config: DatasiteConfig) -> str:
    """The launcher's own `error:` line from the log, else the log's last line."""
    try:
        text = config.state_file(LOG_FILE).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    errors = [line.strip()[len("error: ") :] for line in text if line.startswith("error: ")]
    last = errors[-1] if errors else (text[-1].strip() if text else "(empty log)")
    return f"{last} (log: {config.state_file(LOG_FILE)})"


if __name__ == "__main__":
    main()
