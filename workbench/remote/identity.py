"""A factory datasite's lasting secrets: its identity and its admin password.

PySyft 0.9.5 builds the server with a fresh random signing key and server id on
every start when a port is given; on an existing database it then fails to
recognise its own admin (``UniqueConstraintException ... User``). Pinning one
identity per factory, kept in a 0600 file in the state folder, makes restarts
find every dataset, user, request and result again.

Examples
--------
>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> first = load_or_create_identity(folder)
>>> first == load_or_create_identity(folder)
True
>>> len(first.signing_key_hex), len(first.server_uid_hex)
(64, 32)
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import WorkbenchError

IDENTITY_FILE = "identity.json"
PASSWORD_FILE = "admin-password"


@dataclass(frozen=True)
class Identity:
    """Signing key (hex of a 32-byte nacl seed) and server id (uuid4 hex)."""

    signing_key_hex: str
    server_uid_hex: str


def load_or_create_identity(state_dir: str | Path) -> Identity:
    """Return the identity kept in `state_dir`, creating it (0600) on first use.

    Raises
    ------
    WorkbenchError
        If the identity file exists but cannot be read.
    """
    path = Path(state_dir) / IDENTITY_FILE
    if not path.exists():
        seed = secrets.token_bytes(32)  # a nacl SigningKey is its 32-byte seed
        fields = {"signing_key": seed.hex(), "server_uid": uuid.uuid4().hex}
        write_private_file(path, json.dumps(fields) + "\n")
    try:
        fields = json.loads(path.read_text())
        identity = Identity(str(fields["signing_key"]), str(fields["server_uid"]))
        bytes.fromhex(identity.signing_key_hex)
        uuid.UUID(hex=identity.server_uid_hex)
    except (ValueError, KeyError, TypeError) as error:
        raise WorkbenchError(f"{path}: damaged datasite identity file ({error})") from None
    return identity


def admin_password(state_dir: str | Path, env_var: str) -> str:
    """The admin password: `env_var` if set, else the one generated into the state folder.

    The generated password (24 URL-safe characters) is written on first use to
    ``state_dir/admin-password`` with mode 0600 and reused afterwards.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> admin_password(folder, "NO_SUCH_VARIABLE") == admin_password(folder, "NO_SUCH_VARIABLE")
    True
    """
    from_env = os.environ.get(env_var, "") if env_var else ""
    if from_env:
        return from_env
    path = Path(state_dir) / PASSWORD_FILE
    if not path.exists():
        write_private_file(path, secrets.token_urlsafe(18) + "\n")
    return path.read_text().strip()


def write_private_file(path: Path, text: str) -> None:
    """Write `text` to `path` readable by the owner only (0600), folders created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # O_CREAT's mode only applies to new files
