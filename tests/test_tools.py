"""Tools: hash-pinned manifests, the factory's decisions file, and publish → inbox →
adopt / decline over a real datasite."""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket

import pytest

from workbench.errors import WorkbenchError
from workbench.remote import tools


def test_shipped_tools_pin_their_code_weights_and_card():
    classical = tools.build_manifest("classical-pipeline")
    learned = tools.build_manifest("learned-counter", "1.0.0")
    assert classical.method == "classical" and learned.method == "model"
    assert "workbench/imaging/segment.py" in classical.files
    assert "workbench/imaging/model.py" not in classical.files
    weights = json.loads((tools.INSTALL_ROOT / "workbench/imaging/weights/counter.json")
                         .read_text())
    assert learned.files["workbench/imaging/weights/counter.pt"] == weights["sha256"]
    assert learned.card.startswith("# Learned crystal counter")
    assert tools.build_manifest("classical-pipeline").tool_hash == classical.tool_hash
    with pytest.raises(WorkbenchError, match="tool version"):
        tools.build_manifest("classical-pipeline", "latest")


def test_manifest_hash_changes_with_any_pinned_file():
    manifest = tools.build_manifest("classical-pipeline")
    other = dataclasses.replace(manifest, files={**manifest.files,
                                                 "workbench/imaging/io.py": "1" * 64})
    assert other.tool_hash != manifest.tool_hash
    forged = {**manifest.to_dict(), "version": "9.9.9"}
    with pytest.raises(WorkbenchError, match="hash does not match"):
        tools.ToolManifest.from_dict(forged)


def test_a_changed_or_missing_file_refuses_to_run_naming_it(tmp_path):
    manifest = tools.build_manifest("learned-counter")
    for relative in manifest.files:
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tools.INSTALL_ROOT / relative, target)
    tools.verify_tool(manifest, root=tmp_path)
    with open(tmp_path / "workbench/imaging/weights/counter.pt", "ab") as weights:
        weights.write(b"\0")
    with pytest.raises(WorkbenchError, match="counter.pt has changed since it was adopted"):
        tools.verify_tool(manifest, root=tmp_path)
    (tmp_path / "workbench/imaging/model.py").unlink()
    with pytest.raises(WorkbenchError, match="workbench/imaging/model.py is missing"):
        tools.verify_tool(manifest, root=tmp_path)


def test_decisions_record_who_when_which_hash_and_a_decline_withdraws(tmp_path):
    first = tools.build_manifest("classical-pipeline", "1.0.0")
    second = tools.build_manifest("learned-counter", "1.0.0")
    record = tools.record_decision(tmp_path, first, "admin@factory.example")
    assert (record["by"], record["tool_hash"]) == ("admin@factory.example", first.tool_hash)
    tools.record_decision(tmp_path, second, "admin@factory.example")
    tools.record_decision(tmp_path, second, "admin@factory.example", "declined", "too slow")
    assert list(tools.adopted_tools(tmp_path)) == ["classical-pipeline 1.0.0"]
    decisions = json.loads((tmp_path / tools.DECISIONS_FILE).read_text())["decisions"]
    assert [d["decision"] for d in decisions] == ["adopted", "adopted", "declined"]


def test_publication_source_carries_the_manifest_and_is_read_not_run():
    manifest = tools.build_manifest("learned-counter")
    source = tools.publication_source(manifest)
    assert source.startswith(f"def {tools.publication_name(manifest)}():")
    assert tools.manifest_from_source(source) == manifest
    with pytest.raises(WorkbenchError, match="not a tool publication"):
        tools.manifest_from_source("def f():\n    return open('x').read()\n")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_publish_inbox_adopt_and_decline_over_a_datasite(tmp_path):
    from workbench.remote import client
    from workbench.remote.admin import add_researcher, admin_login
    from workbench.remote.config import load_config
    from workbench.remote.launch import running_datasites

    path = tmp_path / "factory-t.toml"
    path.write_text(f'name = "factory-t"\nport = {_free_port()}\nstate = "state/factory-t"\n')
    config = load_config(path)
    with running_datasites([config]):
        password = add_researcher(admin_login(config), "ana@uni.example", "Ana")
        researcher = client.login([config], "ana@uni.example", password)
        classical = tools.build_manifest("classical-pipeline")
        learned = tools.build_manifest("learned-counter")
        assert tools.publish(researcher, classical) == {"factory-t": "published"}
        assert tools.publish(researcher, learned) == {"factory-t": "published"}
        rows = {row["tool"]: row for row in tools.inbox_rows(tools.inbox(admin_login(config)))}
        assert rows["classical-pipeline"]["hash"] == classical.tool_hash
        assert rows["classical-pipeline"]["status"] == "pending"
        assert rows["learned-counter"]["researcher"] == "ana@uni.example"
        assert rows["learned-counter"]["card"] == "# Learned crystal counter — model card"
        record = tools.adopt(config, "classical-pipeline", classical.version)
        assert (record["by"], record["tool_hash"]) == (config.admin_email, classical.tool_hash)
        tools.decline(config, "learned-counter", learned.version, "our cameras are legacy")
        status = client.status_table(researcher, tools.publication_name(learned))
        assert status.loc[0, "request"] == "rejected"
        assert status.loc[0, "reason"] == "our cameras are legacy"
        assert client.status_table(researcher, tools.publication_name(classical)).loc[
            0, "request"] == "approved"
        with pytest.raises(WorkbenchError, match="no publication of tool"):
            tools.adopt(config, "learned-counter", "9.9")
    adopted = tools.adopted_tools(config.state_dir)
    assert list(adopted) == [f"classical-pipeline {classical.version}"]
