"""A real PostgreSQL server on this machine, from the ``pgserver`` wheel (no root, no apt).

A factory that outgrows SQLite points ``db_url`` at PostgreSQL. In production that
is the factory's own PostgreSQL service; for the demo and the tests
:func:`start_postgres` runs one from the PostgreSQL binaries the ``pgserver`` wheel
ships, in a folder of its own (never inside a factory's state folder: as root the
server runs as the system user ``pgserver``, which must be able to enter every parent
of its folder).

The server listens on loopback TCP only (syft 0.9.5 connects by host and port) and
asks every TCP connection for the password of its ``postgres`` account, generated on
first start and kept in ``<folder>/password`` (0600). Its Unix socket lies in its
data folder (0700, the server's own user only).

What moves to PostgreSQL: every table syft keeps (users, datasets and assets,
code, requests, jobs and logs, results' metadata, settings, small action objects
under about 1 MB). What stays in files in the state folder: the blobs (assets and
results above about 1 MB), the identity, the admin password, held results, the audit
log, upload journals, and the pid, ready and log files.

Examples
--------
>>> server = start_postgres(Path("/srv/postgres"))  # doctest: +SKIP
>>> create_database(server, "factory_a")  # doctest: +SKIP
>>> server.url("factory_a")  # the password comes from db_password_env  # doctest: +SKIP
'postgresql://postgres@127.0.0.1:54321/factory_a'
>>> stop_postgres(Path("/srv/postgres"))  # doctest: +SKIP
True
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import WorkbenchError

DATA_FOLDER = "data"
PASSWORD_FILE = "password"
PORT_FILE = "port"
USER = "postgres"
_HBA = (
    "# written by workbench.remote.postgres\n"
    "local all all trust\n"  # the socket sits in the 0700 data folder
    "host all all 127.0.0.1/32 scram-sha-256\n"
)
_DATABASE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class LocalPostgres:
    """A PostgreSQL server started by :func:`start_postgres`.

    Attributes
    ----------
    folder : Path
        Its folder (data folder, password and port files).
    port : int
        Its TCP port on 127.0.0.1.
    password : str
        Password of its ``postgres`` account (URL-safe characters only).
    """

    folder: Path
    port: int
    password: str

    def url(self, database: str, *, with_password: bool = False) -> str:
        """URL of `database` on this server, for a factory's ``db_url``.

        Without `with_password` the URL holds no secret: the datasite adds the password
        from the environment variable its config names in ``db_password_env``.
        """
        secret = f":{self.password}" if with_password else ""
        return f"postgresql://{USER}{secret}@127.0.0.1:{self.port}/{database}"


def start_postgres(folder: str | Path) -> LocalPostgres:
    """Start the PostgreSQL server kept in `folder` (created on first start).

    Idempotent: a server that already runs there is left as it is.

    Raises
    ------
    WorkbenchError
        If the ``pgserver`` wheel is missing or the server does not start (the message
        quotes the end of its log).
    """
    folder = Path(folder).resolve()
    data = folder / DATA_FOLDER
    if not (data / "PG_VERSION").exists():
        _initialise(folder)
    password = (folder / PASSWORD_FILE).read_text().strip()
    port = int((folder / PORT_FILE).read_text())
    if not _running(data):
        options = f"-h 127.0.0.1 -p {port} -k {data}"
        try:
            _pg_ctl(data, ["-w", "-o", options, "-l", str(data / "log"), "start"])
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            raise WorkbenchError(f"PostgreSQL in {data} did not start: {_log_tail(data)}") from None
    return LocalPostgres(folder, port, password)


def stop_postgres(folder: str | Path) -> bool:
    """Stop the PostgreSQL server of `folder`; False if it was not running."""
    data = Path(folder).resolve() / DATA_FOLDER
    if not _running(data):
        return False
    _pg_ctl(data, ["-w", "-m", "fast", "stop"])
    return True


def create_database(server: LocalPostgres, name: str) -> None:
    """Create the database `name` on `server` unless it exists.

    Raises
    ------
    WorkbenchError
        If `name` is not lower-case letters, digits and underscores.
    """
    import psycopg2

    if not _DATABASE_NAME.match(name):
        raise WorkbenchError(
            f"database name {name!r}: use lower-case letters, digits and underscores"
        )
    connection = psycopg2.connect(server.url("postgres", with_password=True))
    try:
        connection.autocommit = True  # CREATE DATABASE refuses to run in a transaction
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{name}"')  # name checked above
    finally:
        connection.close()


def _initialise(folder: Path) -> None:
    """initdb (through pgserver, which also handles running as root), then lock it down.

    pgserver starts the new server on its Unix socket only; while it runs there, the
    ``postgres`` account gets its password. Then the server is stopped, and
    ``pg_hba.conf`` makes TCP connections prove that password.
    """
    try:
        import pgserver
    except ImportError:
        raise WorkbenchError(
            "PostgreSQL needs the pgserver wheel (pip install pgserver; make installs it)"
        ) from None
    data = folder / DATA_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    data.mkdir(exist_ok=True)
    password = secrets.token_urlsafe(24)
    server = pgserver.get_server(data, cleanup_mode=None)
    server.psql(f"ALTER USER {USER} PASSWORD '{password}';")  # URL-safe characters only
    _pg_ctl(data, ["-w", "-m", "fast", "stop"])
    hba = data / "pg_hba.conf"
    hba.write_text(_HBA)
    owner = data.stat()
    os.chown(hba, owner.st_uid, owner.st_gid)
    secret = folder / PASSWORD_FILE
    secret.touch(mode=0o600)
    secret.write_text(password + "\n")
    from workbench.remote._scratch import free_port

    (folder / PORT_FILE).write_text(f"{free_port()}\n")


def _pg_ctl(data: Path, args: list[str]) -> None:
    import pgserver

    owner = data.stat().st_uid
    user = None if owner == os.geteuid() else owner  # as root: the server's own user
    if user is not None:
        closed = [parent for parent in data.parents if not parent.stat().st_mode & stat.S_IXOTH]
        if closed:
            raise WorkbenchError(
                f"PostgreSQL in {data} runs as its own system user, which cannot enter "
                f"{closed[0]} (mode {stat.S_IMODE(closed[0].stat().st_mode):04o}): keep the "
                "PostgreSQL folder where every parent folder may be entered (o+x)"
            )
    pgserver.pg_ctl(args, pgdata=data, user=user, timeout=60)


def _running(data: Path) -> bool:
    """True if the postmaster recorded in `data` is alive."""
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _log_tail(data: Path) -> str:
    try:
        lines = (data / "log").read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(empty log)"
