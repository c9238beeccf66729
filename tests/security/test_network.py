"""Network from approved code: the datasite's own port, another factory, any listener.

The attacks know the ports (a researcher logs in to every factory by URL) and also
look for listening sockets in /proc/net/tcp.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_connection_to_the_datasites_own_port(hardened_campaign, plain_campaign):
    assert plain_campaign.row("net_own_port")["answer"] == "name: factory-u"

    got = hardened_campaign.row("net_own_port")
    assert "factory-h" not in str(got)
    assert "connected" not in str(got)


def test_connection_to_another_factory(hardened_campaign, plain_campaign):
    assert plain_campaign.row("net_other_factory")["answer"] == "name: factory-t"

    got = hardened_campaign.row("net_other_factory")
    assert "factory-t" not in str(got)
    assert str(got.get("answer", "refused")).startswith("refused")


def test_listening_sockets_discovered_and_reached(configs, hardened_campaign, plain_campaign):
    got = plain_campaign.row("net_discovered")
    assert configs["u"].port in got["listening"]
    assert {configs["u"].port, configs["t"].port} <= set(got["reached"])

    got = hardened_campaign.row("net_discovered")
    assert got.get("reached", []) == []
    assert configs["h"].port not in got.get("listening", [])
