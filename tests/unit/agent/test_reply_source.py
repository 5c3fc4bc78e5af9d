"""The rule that makes a gateway's WireGuard replies leave from the frontend IP (pure parts)."""

from __future__ import annotations

from agent.node_inventory import NodeInventory
from agent.orphan_plan import DesiredGateway, plan_orphans
from agent.reply_source import marker, parse_ports, ruleset, table_name


def test_the_ruleset_rewrites_only_that_ports_replies_leaving_the_host_interface() -> None:
    script = ruleset(6001, "10.225.0.4", "eth0")

    assert f"flush table ip {table_name(6001)}" in script  # replaced whole, atomically
    assert 'oifname "eth0" udp sport 6001 ip saddr != 10.225.0.4 ip saddr set 10.225.0.4' in script
    assert marker(6001, "10.225.0.4", "eth0") in script
    assert marker(6001, "10.225.0.5", "eth0") != marker(6001, "10.225.0.4", "eth0")


def test_only_our_tables_are_read_as_ports() -> None:
    listing = (
        "table inet filter\ntable ip egressgw_reply_6000\ntable ip nat\n"
        "table ip egressgw_reply_6123\ntable ip6 egressgw_reply_7000\n"
    )
    assert parse_ports(listing) == frozenset({6000, 6123})


def test_reply_rules_of_configurations_no_longer_wanted_are_orphans() -> None:
    inventory = NodeInventory(reply_source_ports=frozenset({6000, 6001}))
    desired = [DesiredGateway("uid", 6000, "10.224.0.8", "10.225.0.4")]

    assert plan_orphans(inventory, desired).reply_source_ports == (6001,)
    assert plan_orphans(inventory, []).reply_source_ports == (6000, 6001)
