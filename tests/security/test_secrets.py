"""The factory's secrets: signing key, admin password, environment, files, state folder.

Nothing tells the attack where the state folder is: it guesses from the process's
open files, command lines, environment, a module's ``__file__`` and a walk of /tmp.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import syft as sy

from workbench.remote._syft_calls import quiet

pytestmark = pytest.mark.slow


def test_signing_key_from_loaded_modules(sites, hardened_campaign, plain_campaign):
    """``logging.sys.modules["syft.server.server"].signing_key_env``."""
    plain, hardened = sites["u"], sites["h"]
    assert plain_campaign.row("key_from_sys_modules")["signing_key"] == plain.signing_key

    got = hardened_campaign.row("key_from_sys_modules")
    assert hardened.signing_key not in str(got)
    assert got.get("syft_loaded") is not True


def test_signing_key_and_admin_password_from_process_memory(
    sites, hardened_campaign, plain_campaign
):
    """Scan ``/proc/self/mem`` and ``/proc/<ppid>/mem`` for what the launcher setenv'd."""
    plain, hardened = sites["u"], sites["h"]
    got = plain_campaign.row("key_from_memory")
    found = got["self"] + got["parent"]
    assert f"SERVER_PRIVATE_KEY={plain.signing_key}" in found

    got = hardened_campaign.row("key_from_memory")
    assert hardened.signing_key not in str(got)
    assert hardened.admin_password not in str(got)


def test_environment_holds_no_secret(sites, hardened_campaign, plain_campaign):
    """``logging.os.environ``: the admin password of the README's setup is there."""
    plain, hardened = sites["u"], sites["h"]
    got = plain_campaign.row("environment_variables")
    stolen = got["secrets"][plain.config.password_env]
    assert stolen == plain.admin_password
    assert got["secrets"]["SYFT_TEMP_ROOT"] == str(plain.config.state_dir)
    # ...and the stolen password opens the private images.
    with quiet():
        admin = sy.login(url=plain.config.url, email=plain.config.admin_email, password=stolen)
        asset = next(d for d in admin.datasets.get_all() if d.name == "line-1").asset_list[0]
        assert (asset.data["images"][0] == plain.images[0]).all()

    got = hardened_campaign.row("environment_variables")
    assert hardened.admin_password not in str(got)
    assert got.get("secrets", {}) == {}
    assert str(hardened.config.state_dir) not in str(got)


def test_proc_environ_and_command_lines(sites, hardened_campaign, plain_campaign):
    """``/proc/1/environ``, ``/proc/self/environ``, ``/proc/<ppid>/environ`` and cmdline."""
    plain, hardened = sites["u"], sites["h"]
    got = plain_campaign.row("read_proc_environ")
    assert f"{plain.config.password_env}={plain.admin_password}" in got["self"]
    assert str(plain.config.path) in got["cmdlines"]  # the launcher's TOML: its state

    got = hardened_campaign.row("read_proc_environ")
    text = str(got)
    assert hardened.admin_password not in text
    assert str(hardened.config.path) not in text
    assert hardened.config.path.parent.name not in text
    for name in ("self", "parent", "pid1"):
        assert not [item for item in got.get(name, []) if not item.startswith("refused")]
        assert got.get(f"{name}_count", 0) < 16  # an empty environment, a few harmless names


def test_system_files(hardened_campaign, plain_campaign):
    """/etc/hostname and /etc/shadow (root-readable) of the datasite's host."""
    hostname = Path("/etc/hostname").read_text()[:200]
    shadow = Path("/etc/shadow").read_text()[:200]
    got = plain_campaign.row("read_system_files")
    assert got["/etc/hostname"] == hostname and got["/etc/shadow"] == shadow

    got = hardened_campaign.row("read_system_files")
    assert got.get("/etc/shadow") != shadow
    assert got.get("/etc/hostname") != hostname
    assert socket.gethostname() not in str(got.get("/etc/hostname", ""))


def test_state_folder_listing_and_identity(sites, hardened_campaign, plain_campaign):
    plain, hardened = sites["u"], sites["h"]
    got = plain_campaign.row("state_folder_listing")
    listed = got["listing"][str(plain.config.state_dir)]
    assert {"identity.json", "datasite.sqlite"} <= set(listed)
    assert plain.signing_key in got["signing_keys"]

    got = hardened_campaign.row("state_folder_listing")
    assert got.get("signing_keys", []) == []
    assert hardened.signing_key not in str(got)
    assert str(hardened.config.state_dir) not in str(got)
    for files in got.get("listing", {}).values():
        assert not {"identity.json", "datasite.sqlite", "datasite.pid"} & set(files)
