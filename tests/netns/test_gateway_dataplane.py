"""The real Dataplane on a stand-in node (tests/fixtures/netns.py): namespace "<tag>-h" plays the
node (its interface "<tag>e" leads to an "internet" namespace "<tag>-i"), the dataplane builds the
gateway namespace "<tag>-g". The test process stays in the root namespace, as the dev stack's
agent does; only the dataplane's own thread enters "<tag>-h".

What is checked is what `ip`, `iptables-save`, `ss` and `wg`'s UAPI show afterwards.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import select
import shlex
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from agent import wireguard_uapi
from agent.gateway_dataplane import (
    Dataplane,
    GatewayOwnedElsewhereError,
    open_dataplane,
)
from agent.node_settings import GatewaySetup, NodeSettings
from agent.orphan_plan import DesiredGateway
from agent.peer_plan import PeerChanges, PeerSpec
from agent.wireguard_devices import InterfaceNotFoundError
from agent.wireguard_keys import generate_private_key, public_key_of
from tests.fixtures.netns import (
    FRONTEND,
    PRIMARY,
    make_node_namespaces,
    remove_namespaces,
    sh,
    stop_daemons,
    uapi_peers,
)

pytestmark = pytest.mark.needs_root


def ip_json(ns: str, *args: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = json.loads(sh("ip", "-n", ns, "-j", *args) or "[]")
    return result


def in_ns(ns: str, command: str) -> str:
    return sh("ip", "netns", "exec", ns, *shlex.split(command))


def nat_rules(ns: str) -> list[str]:
    return [line for line in in_ns(ns, "iptables-save -t nat").splitlines() if line[:2] == "-A"]


def addresses(ns: str, dev: str) -> set[str]:
    return {
        f"{info['local']}/{info['prefixlen']}"
        for link in ip_json(ns, "-4", "addr", "show", "dev", dev)
        for info in link["addr_info"]
    }


def links(ns: str) -> dict[str, dict[str, Any]]:
    return {link["ifname"]: link for link in ip_json(ns, "link", "show")}


def route_destinations(ns: str, dev: str) -> set[str]:
    return {route["dst"] for route in ip_json(ns, "-4", "route", "show", "dev", dev)}


def udp_listeners(ns: str, port: int) -> str:
    return in_ns(ns, f"ss -H -u -l -n -p sport = :{port}")


def peer(n: int) -> PeerSpec:
    return PeerSpec(public_key_of(generate_private_key()), ipaddress.IPv4Address(f"10.244.0.{n}"))


@dataclass
class StandInNode:
    tag: str
    settings: NodeSettings
    dataplane: Dataplane

    @property
    def host(self) -> str:
        return f"{self.tag}-h"

    @property
    def gateway(self) -> str:
        return self.settings.gateway_netns

    def setup(self, uid: str, port: int, secondary: str, key: bytes | None = None) -> GatewaySetup:
        return GatewaySetup(uid, port, FRONTEND, PRIMARY, secondary, key or KEYS[uid])


KEYS = {uid: generate_private_key() for uid in ("uid-a", "uid-b", "uid-c")}


def kill_and_wait(pid: int) -> None:
    """SIGKILL a daemon this test's dataplane started and wait until it has exited."""
    pidfd = os.pidfd_open(pid)
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        assert poller.poll(5000), f"wireguard-go {pid} did not exit"
    finally:
        os.close(pidfd)


@pytest.fixture
async def node(net_tag: str) -> AsyncIterator[StandInNode]:
    created = [f"{net_tag}-h", f"{net_tag}-i", f"{net_tag}-g"]
    settings = NodeSettings(
        gateway_netns=f"{net_tag}-g", host_interface=f"{net_tag}e", socket_tag=net_tag
    )
    dataplane: Dataplane | None = None
    try:
        make_node_namespaces(net_tag)
        dataplane = open_dataplane(settings, host_netns=f"{net_tag}-h")
        yield StandInNode(net_tag, settings, dataplane)
    finally:
        if dataplane is not None:
            await dataplane.close()
        stop_daemons(net_tag)
        remove_namespaces(created)


async def test_apply_builds_everything_and_a_repeat_changes_nothing(node: StandInNode) -> None:
    peers = [peer(1), peer(2)]
    a = node.setup("uid-a", 6000, "10.1.0.5")

    first = await node.dataplane.apply(a, peers)
    second = await node.dataplane.apply(a, peers)

    assert first.interface_name == "wg-6000"
    assert f"created network namespace {node.gateway}" in first.changes
    assert "created wg-6000 (wireguard-go)" in first.changes
    assert first.peers == PeerChanges(added=2)
    assert [label for label, _ in first.step_seconds] == [
        "namespace",
        "wireguard",
        "plumbing",
        "peers",
    ]
    assert second.changes == ()
    assert second.peers == PeerChanges()
    wg = links(node.gateway)["wg-6000"]
    assert "UP" in wg["flags"]
    assert sh("ip", "-n", node.gateway, "-j", "-d", "link", "show", "wg-6000")
    assert (
        json.loads(sh("ip", "-n", node.gateway, "-j", "link", "show", "wg-6000"))[0]["ifalias"]
        == "uid-a"
    )
    assert addresses(node.gateway, "host0") == {"10.1.0.5/32"}
    assert f"{FRONTEND}/32" in addresses(node.host, node.settings.host_interface)
    assert route_destinations(node.gateway, "wg-6000") == {"10.244.0.1", "10.244.0.2"}
    assert set(uapi_peers(node.tag, 6000).values()) == {"10.244.0.1/32", "10.244.0.2/32"}
    # wireguard-go's UDP socket is on the node, not in the machine's namespace.
    assert "wireguard-go" in udp_listeners(node.host, 6000)
    assert "wireguard-go" not in sh("ss", "-H", "-u", "-l", "-n", "-p", "sport", "=", ":6000")
    # Nothing of the node leaked into the machine's own namespace.
    assert not any(name.startswith(node.tag) for name in links_root())


def links_root() -> list[str]:
    return [link["ifname"] for link in json.loads(sh("ip", "-j", "link", "show"))]


async def test_peers_none_leaves_them_and_sync_makes_them_exact(node: StandInNode) -> None:
    a = node.setup("uid-a", 6000, "10.1.0.5")
    first, second, third = peer(1), peer(2), peer(3)
    await node.dataplane.apply(a, [first, second])

    kept = await node.dataplane.apply(a, None)
    synced = await node.dataplane.sync_peers(6000, [second, third], owner="uid-a")

    assert kept.peers is None
    assert synced == PeerChanges(added=1, removed=1)
    assert set(uapi_peers(node.tag, 6000).values()) == {"10.244.0.2/32", "10.244.0.3/32"}
    assert route_destinations(node.gateway, "wg-6000") == {"10.244.0.2", "10.244.0.3"}
    with pytest.raises(GatewayOwnedElsewhereError, match="belongs to configuration uid-a"):
        await node.dataplane.sync_peers(6000, [], owner="uid-b")
    with pytest.raises(InterfaceNotFoundError):
        await node.dataplane.sync_peers(6001, [first])


async def test_removing_one_configuration_leaves_the_other_untouched(node: StandInNode) -> None:
    await node.dataplane.apply(node.setup("uid-a", 6000, "10.1.0.5"), [peer(1)])
    await node.dataplane.apply(node.setup("uid-b", 6001, "10.1.0.6"), [peer(2), peer(3)])
    b_gateway_rules = [rule for rule in nat_rules(node.gateway) if "6001" in rule]
    b_host_rules = [rule for rule in nat_rules(node.host) if "10-1-0-6" in rule]
    b_peers = uapi_peers(node.tag, 6001)

    removed = await node.dataplane.remove("uid-a", 6000, "10.1.0.5")

    assert "deleted wg-6000" in removed
    assert "removed chain EGRESS-GATEWAY-SNAT-6000" in removed
    assert await node.dataplane.remove("uid-a", 6000, "10.1.0.5") == []
    assert "wg-6000" not in links(node.gateway)
    assert not list(wireguard_uapi.SOCKET_DIR.glob(f"wg{node.tag}6000.sock"))
    assert udp_listeners(node.host, 6000).strip() == ""
    assert "UP" in links(node.gateway)["wg-6001"]["flags"]
    assert addresses(node.gateway, "host0") == {"10.1.0.6/32"}
    assert [rule for rule in nat_rules(node.gateway) if "6001" in rule] == b_gateway_rules
    assert not any("6000" in rule for rule in nat_rules(node.gateway))
    assert [rule for rule in nat_rules(node.host) if "10-1-0-6" in rule] == b_host_rules
    assert not any("10-1-0-5" in rule for rule in nat_rules(node.host))
    assert uapi_peers(node.tag, 6001) == b_peers
    assert route_destinations(node.gateway, "wg-6001") == {"10.244.0.2", "10.244.0.3"}
    assert (await node.dataplane.apply(node.setup("uid-b", 6001, "10.1.0.6"), None)).changes == ()


async def test_remove_leaves_an_interface_that_another_configuration_owns(
    node: StandInNode,
) -> None:
    await node.dataplane.apply(node.setup("uid-b", 6001, "10.1.0.6"), [peer(2)])

    assert await node.dataplane.remove("uid-a", 6001, "10.1.0.6") == []
    assert "wg-6001" in links(node.gateway)
    assert addresses(node.gateway, "host0") == {"10.1.0.6/32"}


async def test_remove_orphans_keeps_the_desired_and_removes_the_rest(node: StandInNode) -> None:
    a = node.setup("uid-a", 6000, "10.1.0.5")
    b = node.setup("uid-b", 6001, "10.1.0.6")
    await node.dataplane.apply(a, [peer(1)])
    await node.dataplane.apply(b, [peer(2)])
    keep = DesiredGateway("uid-b", 6001, "10.1.0.6", FRONTEND)

    removed = await node.dataplane.remove_orphans([keep])

    assert "deleted wg-6000" in removed
    assert await node.dataplane.remove_orphans([keep]) == []
    assert set(links(node.gateway)) >= {"wg-6001", "host0"}
    assert "wg-6000" not in links(node.gateway)
    assert addresses(node.gateway, "host0") == {"10.1.0.6/32"}
    assert not any("6000" in rule or "10-1-0-5" in rule for rule in nat_rules(node.gateway))
    assert not any("10-1-0-5" in rule for rule in nat_rules(node.host))
    assert (await node.dataplane.apply(b, None)).changes == ()

    await node.dataplane.remove_orphans([])

    assert not any(name.startswith("wg-") for name in links(node.gateway))
    assert f"{FRONTEND}/32" not in addresses(node.host, node.settings.host_interface)
    assert nat_rules(node.host) == []
    assert not list(wireguard_uapi.SOCKET_DIR.glob(f"wg{node.tag}*.sock"))


async def test_apply_repairs_a_half_built_gateway(node: StandInNode) -> None:
    a = node.setup("uid-a", 6000, "10.1.0.5")
    peers = [peer(1), peer(2)]
    await node.dataplane.apply(a, peers)
    gw = node.gateway
    sh("ip", "-n", gw, "link", "set", "wg-6000", "down")  # drops the peer routes
    sh("ip", "-n", gw, "addr", "del", "10.1.0.5/32", "dev", "host0")
    in_ns(gw, "iptables -t nat -F EGRESS-GATEWAY-SNAT-6000")
    sh("ip", "-n", node.host, "addr", "del", f"{FRONTEND}/32", "dev", node.settings.host_interface)

    repaired = await node.dataplane.apply(a, peers)

    assert "set wg-6000 up" in repaired.changes
    assert "restored 2 peer routes on wg-6000" in repaired.changes
    assert f"added 10.1.0.5/32 to host0 in {gw}" in repaired.changes
    assert "rewrote chain EGRESS-GATEWAY-SNAT-6000" in repaired.changes
    assert f"added {FRONTEND}/32 to {node.settings.host_interface}" in repaired.changes
    assert repaired.peers == PeerChanges()
    assert (await node.dataplane.apply(a, peers)).changes == ()
    assert route_destinations(gw, "wg-6000") == {"10.244.0.1", "10.244.0.2"}


async def test_apply_after_the_daemon_died_rebuilds_the_interface(node: StandInNode) -> None:
    a = node.setup("uid-a", 6000, "10.1.0.5")
    await node.dataplane.apply(a, [peer(1)])
    pid = wireguard_uapi.daemon_pid(wireguard_uapi.socket_path(f"wg{node.tag}6000"))
    assert pid is not None
    await asyncio.to_thread(kill_and_wait, pid)

    rebuilt = await node.dataplane.apply(a, [peer(1), peer(2)])

    assert "created wg-6000 (wireguard-go)" in rebuilt.changes
    assert rebuilt.peers is not None and rebuilt.peers.added == 2
    assert "wireguard-go" in udp_listeners(node.host, 6000)


async def test_a_new_private_key_is_applied(node: StandInNode) -> None:
    a = node.setup("uid-a", 6000, "10.1.0.5")
    await node.dataplane.apply(a, None)

    rotated = await node.dataplane.apply(replace(a, private_key=generate_private_key()), None)

    assert rotated.changes == ("set wg-6000 private key",)
