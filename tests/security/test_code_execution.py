"""Approved code with zero findings reaches os/subprocess through module attributes.

On the unhardened datasite each chain runs a shell command on the host (a marker file
appears in the host's /tmp, the datasite's own processes are visible). On the hardened
datasite the same code runs in the sandbox: nothing it does lands on the host and it
sees none of the factory's processes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import security_attacks as attacks
import syft as sy
from conftest import DATASET, HARDENED_ONLY, LIMITS, RESULT_TIMEOUT, STRUCTURAL, marker_files

from workbench.remote import client, review
from workbench.remote._syft_calls import quiet

pytestmark = pytest.mark.slow


def test_every_attack_passes_the_automatic_findings(hardened_campaign):
    """The premise: the admin approves all of them, so only the datasite can stop them."""
    names = [function.__name__ for function in STRUCTURAL + HARDENED_ONLY + LIMITS]
    flagged = {name: found for name, found in hardened_campaign.findings.items() if found}
    assert flagged == {}
    assert set(names) <= set(hardened_campaign.findings)


def proc_lines(lines) -> list[str]:
    return [line for line in lines if str(line).startswith("/proc/")]


@pytest.mark.parametrize("name", ["shell_reduce_getattr", "shell_subclasses_walk"])
def test_shell_via_attribute_chain_sees_no_host_process(
    name, sites, hardened_campaign, plain_campaign
):
    plain, hardened = sites["u"], sites["h"]
    got = plain_campaign.row(name)
    assert plain.touched(plain_campaign, name)  # ran a shell command on the host
    assert f"/proc/{plain.launcher_pid}/cmdline" in got["out"]  # and saw the datasite

    got = hardened_campaign.row(name)
    assert not hardened.touched(hardened_campaign, name)
    assert proc_lines(got.get("out", [])) == []
    assert str(hardened.launcher_pid) not in str(got)


def test_numpy_attribute_walk_to_os(sites, hardened_campaign, plain_campaign):
    """``numpy.lib.utils.os.system`` and ``.listdir("/proc")``: no import statement."""
    plain, hardened = sites["u"], sites["h"]
    got = plain_campaign.row("shell_numpy_walk")
    assert plain.touched(plain_campaign, "shell_numpy_walk")
    assert plain.launcher_pid in got["pids"]

    got = hardened_campaign.row("shell_numpy_walk")
    assert not hardened.touched(hardened_campaign, "shell_numpy_walk")
    assert hardened.launcher_pid not in got.get("pids", [])
    assert len(got.get("pids", [])) < 20  # its own pid namespace, not the host's


def test_builtins_import_trick_runs_subprocess(sites, hardened_campaign, plain_campaign):
    """``reduce(getattr, ["__builtins__"], logging)["__import__"]("subprocess")``."""
    plain, hardened = sites["u"], sites["h"]
    host_init = Path("/proc/1/cmdline").read_bytes().replace(b"\x00", b" ").decode()[:200]
    got = plain_campaign.row("shell_builtins_import")
    assert plain.touched(plain_campaign, "shell_builtins_import")
    assert got["pid1"] == host_init  # the host's init process

    got = hardened_campaign.row("shell_builtins_import")
    assert not hardened.touched(hardened_campaign, "shell_builtins_import")
    assert got.get("pid1") != host_init


def test_pkgutil_resolve_name_imports_subprocess(sites, hardened_campaign, plain_campaign):
    """``pkgutil.resolve_name("subprocess").check_output([...])``."""
    plain, hardened = sites["u"], sites["h"]
    got = plain_campaign.row("shell_pkgutil_resolve")
    assert plain.touched(plain_campaign, "shell_pkgutil_resolve")
    assert got["out"].startswith("0\n")  # root on the host

    assert not hardened.touched(hardened_campaign, "shell_pkgutil_resolve")
    assert not str(hardened_campaign.row("shell_pkgutil_resolve").get("out", "")).startswith("0\n")


def test_writes_outside_the_private_tmpfs_never_reach_the_host(
    sites, hardened_campaign, plain_campaign
):
    plain, hardened = sites["u"], sites["h"]
    got = plain_campaign.row("write_host_file")
    assert plain.touched(plain_campaign, "write_host_file")
    assert any(path.startswith("/var/tmp/wbsec-") for path in got["written"])

    assert not hardened.touched(hardened_campaign, "write_host_file")


def test_only_the_private_tmpfs_is_writable(hardened_campaign, plain_campaign):
    """Every folder the code can write to: on the host, /var/tmp and more; in the
    sandbox only its own /tmp (with a size), never /dev/shm or the working folder."""
    assert "/var/tmp" in plain_campaign.row("writable_places")["writable"]

    got = hardened_campaign.row("writable_places")
    assert set(got.get("writable", [])) <= {"/tmp"}, got


def test_result_object_with_reduce_never_runs_on_the_host(sites, hardened_campaign):
    """A result whose ``__reduce__`` calls ``os.system``: data, not pickles, cross back."""
    got = hardened_campaign.row("pickle_reduce_result")
    assert not sites["h"].touched(hardened_campaign, "pickle_reduce_result")
    assert "value" not in got
    assert "plain data" in got["error"]  # refused: results are plain data only


def test_type_name_made_of_pixels_is_not_echoed(sites, hardened_campaign):
    """A non-JSON result whose class is named ``P_<pixel>_<pixel>...``: the refusal says
    what is allowed, but must not echo a name the function chose."""
    got = hardened_campaign.row("type_name_pixels")
    pixels = "_".join(str(int(v)) for v in sites["h"].images[0].ravel()[:24])
    assert "value" not in got
    assert "plain data" in got["error"]
    assert pixels[:20] not in got["error"]


def run_with_leaky_policy(site) -> object:
    """Submit ``policy_carrier`` (zero findings) with :class:`LeakyPolicy` as its output
    policy, have it approved, run it; return what the researcher got (or the refusal)."""
    researcher = next(iter(site.researcher.values()))
    try:
        with quiet():
            asset = next(d for d in researcher.datasets.get_all() if d.name == DATASET)
            asset = asset.asset_list[0]
            submitted = sy.syft_function(
                input_policy=sy.MixedInputPolicy(client=researcher, images_000=asset),
                output_policy=attacks.LeakyPolicy(n_calls=1, downloadable_output_args=["mean"]),
            )(attacks.policy_carrier)
            researcher.code.request_code_execution(submitted)
            researcher.api.refresh_api_callback()
        request = next(
            r
            for r in review.list_requests(site.admin)
            if r.code.service_func_name == "policy_carrier"
        )
        assert review.findings(request) == []  # the policy's code is not what findings read
        review.approve(request)
        with quiet():
            job = researcher.code.policy_carrier(images_000=asset, blocking=False)
            job.wait(timeout=RESULT_TIMEOUT)
        return client._job_value(job)
    except AssertionError:
        raise
    except Exception as error:  # refused somewhere: syft raises its own types
        return error


def test_custom_output_policy_code_never_runs_outside_the_sandbox(sites):
    """A request's output policy may be a ``sy.CustomOutputPolicy`` subclass: syft runs
    its methods (``is_valid``, ``apply_to_output``) in the server process, after the
    function, and hands the researcher what ``apply_to_output`` returns."""
    plain, hardened = sites["u"], sites["h"]
    got = run_with_leaky_policy(plain)
    assert "wbsec-custom_policy-factory-u" in marker_files()
    assert got["signing_key"] == plain.signing_key, got

    got = run_with_leaky_policy(hardened)
    assert "wbsec-custom_policy-factory-h" not in marker_files()  # no shell on the host
    assert hardened.signing_key not in str(got)
    assert str(hardened.config.state_dir) not in str(got)
