"""Floor accounts: operators and admins, hashed passwords, expiring sessions, CSRF tokens.

Accounts live in the floor's SQLite file and are created by the factory's admin on
the factory's machine (``workbench floor add-user``); no researcher or datasite
account works on the floor. Passwords are stored as scrypt hashes (``hashlib.scrypt``,
n=2**14, r=8, p=1, a random 16-byte salt). A session is a random token in an
HttpOnly, SameSite=Strict cookie; only its sha256 is stored, with its expiry and the
CSRF token every form of that session must send back.

Examples
--------
>>> import pathlib, tempfile
>>> db = pathlib.Path(tempfile.mkdtemp()) / "floor.sqlite"
>>> add_user(db, "olga", "operator", "a long password")
>>> check_password(db, "olga", "a long password").role
'operator'
>>> check_password(db, "olga", "wrong") is None
True
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.floor.history import connect

ROLES = ("operator", "admin")
MIN_PASSWORD = 10
_USER = re.compile(r"^[a-z][a-z0-9._-]{1,39}$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, password TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 TEXT PRIMARY KEY, user TEXT NOT NULL, csrf TEXT NOT NULL, expires REAL NOT NULL
);
"""


@dataclass(frozen=True)
class User:
    """A floor account."""

    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        """Admins also reach the admin pages."""
        return self.role == "admin"


@dataclass(frozen=True)
class Session:
    """A logged-in browser: its user and the CSRF token its forms carry."""

    user: User
    csrf: str
    expires: float


def hash_password(password: str) -> str:
    """``scrypt$<salt hex>$<hash hex>``.

    Examples
    --------
    >>> hash_password("x" * 12).startswith("scrypt$")
    True
    """
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _matches(password: str, stored: str) -> bool:
    _, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(candidate.hex(), digest)


def _db(database: Path) -> AbstractContextManager[sqlite3.Connection]:
    return connect(database, SCHEMA)


def add_user(database: Path, name: str, role: str, password: str) -> None:
    """Create an account, or set a new password and role for an existing one.

    Raises
    ------
    WorkbenchError
        For a bad name, an unknown role or a password shorter than 10 characters.
    """
    if not _USER.match(name):
        raise WorkbenchError(
            f"user name {name!r}: 2-40 lower-case letters, digits, dots, dashes or underscores"
        )
    if role not in ROLES:
        raise WorkbenchError(f"role {role!r}: choose one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise WorkbenchError(f"password for {name}: at least {MIN_PASSWORD} characters")
    with _db(database) as db:
        db.execute("INSERT OR REPLACE INTO users VALUES (?, ?, ?, ?)",
                   (name, role, hash_password(password), time.time()))
        db.execute("DELETE FROM sessions WHERE user = ?", (name,))


def remove_user(database: Path, name: str) -> None:
    """Delete an account and end its sessions."""
    with _db(database) as db:
        if not db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount:
            raise WorkbenchError(f"no floor account called {name!r}")
        db.execute("DELETE FROM sessions WHERE user = ?", (name,))


def list_users(database: Path) -> list[User]:
    """Every account, by name."""
    with _db(database) as db:
        rows = db.execute("SELECT name, role FROM users ORDER BY name").fetchall()
    return [User(*row) for row in rows]


def check_password(database: Path, name: str, password: str) -> User | None:
    """The account if `password` is its password, else None (same work either way)."""
    with _db(database) as db:
        row = db.execute("SELECT role, password FROM users WHERE name = ?", (name,)).fetchone()
    if row is None:
        _matches(password, hash_password("no such user"))  # as slow as a real check
        return None
    return User(name, row[0]) if _matches(password, row[1]) else None


def start_session(database: Path, user: User, minutes: int) -> tuple[str, Session]:
    """A new session for `user`: ``(cookie token, session)``."""
    token = secrets.token_urlsafe(32)
    session = Session(user, secrets.token_urlsafe(24), time.time() + 60 * minutes)
    with _db(database) as db:
        db.execute("DELETE FROM sessions WHERE expires < ?", (time.time(),))
        db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)",
                   (_sha256(token), user.name, session.csrf, session.expires))
    return token, session


def find_session(database: Path, token: str | None) -> Session | None:
    """The live session of a cookie token, or None (unknown, expired, account gone)."""
    if not token:
        return None
    with _db(database) as db:
        row = db.execute(
            "SELECT users.name, users.role, sessions.csrf, sessions.expires FROM sessions "
            "JOIN users ON users.name = sessions.user WHERE token_sha256 = ?",
            (_sha256(token),),
        ).fetchone()
    if row is None or row[3] < time.time():
        return None
    return Session(User(row[0], row[1]), row[2], row[3])


def end_session(database: Path, token: str | None) -> None:
    """Log out: forget the session of `token`."""
    if token:
        with _db(database) as db:
            db.execute("DELETE FROM sessions WHERE token_sha256 = ?", (_sha256(token),))


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
