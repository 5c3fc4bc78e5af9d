"""The dry-run dataplane: what it says a node would change, and that its story stays consistent
(repeats change nothing, removal and orphans act on what was applied, peer counts add up)."""

from __future__ import annotations

import base64
import ipaddress
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.dry_run_dataplane import DryRunDataplane
from agent.gateway_dataplane import GatewayOwnedElsewhereError
from agent.node_settings import GatewaySetup, NodeSettings
from agent.orphan_plan import DesiredGateway
from agent.peer_plan import PeerChanges, PeerSpec
from agent.wireguard_devices import InterfaceNotFoundError

KEY = bytes(range(1, 33))
A = GatewaySetup("uid-a", 6000, "10.0.0.100", "10.0.0.4", "10.0.0.5", KEY)
B = GatewaySetup("uid-b", 6001, "10.0.0.100", "10.0.0.4", "10.0.0.6", KEY)


def peer(n: int, ip: int | None = None) -> PeerSpec:
    return PeerSpec(bytes([n]) * 32, ipaddress.IPv4Address(f"10.244.0.{ip or n}"))


def desired(setup: GatewaySetup) -> DesiredGateway:
    return DesiredGateway(setup.sgc_uid, setup.listen_port, setup.secondary_ip, setup.frontend_ip)


def read_text(path: Path) -> str:
    return path.read_text()


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in read_text(path).splitlines()]


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "dry-run" / "node.jsonl"


@pytest.fixture
def plane(log_path: Path) -> DryRunDataplane:
    return DryRunDataplane(
        log_path,
        NodeSettings(gateway_netns="gw-ns", host_interface="eth0"),
        clock=lambda: datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


async def test_first_apply_says_what_it_would_build_and_a_repeat_nothing(
    plane: DryRunDataplane, log_path: Path
) -> None:
    first = await plane.apply(A, [peer(1), peer(2)])
    again = await plane.apply(A, [peer(1), peer(2)])

    assert first.interface_name == "wg-6000"
    assert "create network namespace gw-ns" in first.changes
    assert "create wg-6000" in first.changes
    assert "add 10.0.0.100/32 to eth0" in first.changes
    assert first.peers == PeerChanges(added=2)
    assert again.changes == ()
    assert again.peers == PeerChanges()
    recorded = lines(log_path)
    assert [(r["op"], r["interface"], r["sgc_uid"]) for r in recorded] == [
        ("apply", "wg-6000", "uid-a"),
        ("apply", "wg-6000", "uid-a"),
    ]
    assert recorded[0]["time"] == "2025-01-02T03:04:05+00:00"
    assert recorded[0]["would"] == list(first.changes)
    assert recorded[0]["peers"] == {"added": 2, "removed": 0, "updated": 0}
    assert recorded[1]["would"] == []


async def test_a_new_key_is_reported_but_never_written(
    plane: DryRunDataplane, log_path: Path
) -> None:
    new_key = bytes(range(2, 34))
    await plane.apply(A, None)

    rotated = await plane.apply(replace(A, private_key=new_key), None)

    assert rotated.changes == ("set wg-6000 private key",)
    assert rotated.peers is None
    text = read_text(log_path)
    for secret in (KEY, new_key):
        assert secret.hex() not in text
        assert base64.b64encode(secret).decode() not in text


async def test_peers_none_leaves_them_and_a_sequence_makes_them_exact(
    plane: DryRunDataplane,
) -> None:
    await plane.apply(A, [peer(1), peer(2)])
    await plane.apply(A, None)
    assert [p.allowed_ip.packed[-1] for p in plane.peers(6000)] == [1, 2]

    changes = await plane.sync_peers(6000, [peer(2, ip=20), peer(3)])

    assert changes == PeerChanges(added=1, removed=1, updated=1)
    assert [str(p.allowed_ip) for p in plane.peers(6000)] == ["10.244.0.3", "10.244.0.20"]


async def test_sync_on_a_missing_or_foreign_interface_fails(plane: DryRunDataplane) -> None:
    with pytest.raises(InterfaceNotFoundError):
        await plane.sync_peers(6000, [peer(1)])
    await plane.apply(A, None)
    with pytest.raises(GatewayOwnedElsewhereError, match="belongs to configuration uid-a"):
        await plane.sync_peers(6000, [peer(1)], owner="uid-b")


async def test_removing_one_configuration_leaves_the_other(
    plane: DryRunDataplane, log_path: Path
) -> None:
    await plane.apply(A, [peer(1)])
    await plane.apply(B, None)

    removed = await plane.remove("uid-a", 6000, "")

    assert "delete wg-6000" in removed
    assert "remove 10.0.0.5/32 from host0" in removed
    assert await plane.remove("uid-a", 6000, "") == []
    assert plane.interfaces() == {"wg-6001": "uid-b"}
    assert (await plane.apply(B, None)).changes == ()
    assert lines(log_path)[-2] == {
        "time": "2025-01-02T03:04:05+00:00",
        "op": "remove",
        "interface": "wg-6000",
        "sgc_uid": "uid-a",
        "would": [],
    }


async def test_remove_leaves_an_interface_another_configuration_owns(
    plane: DryRunDataplane,
) -> None:
    await plane.apply(B, None)

    assert await plane.remove("uid-a", 6001, "") == []
    assert plane.interfaces() == {"wg-6001": "uid-b"}


async def test_orphans_are_what_no_desired_gateway_accounts_for(
    plane: DryRunDataplane, log_path: Path
) -> None:
    await plane.apply(A, None)
    await plane.apply(B, None)

    removed = await plane.remove_orphans([desired(B)])

    assert removed == [
        "delete wg-6000",
        "remove chains EGRESS-GATEWAY-MARK-6000 and EGRESS-GATEWAY-SNAT-6000",
        "remove 10.0.0.5/32 from host0 and its host route",
        "remove chain EGRESS-10-0-0-5",
    ]
    assert plane.interfaces() == {"wg-6001": "uid-b"}
    assert await plane.remove_orphans([desired(B)]) == []
    assert [r["op"] for r in lines(log_path)].count("remove_orphans") == 1

    last = await plane.remove_orphans([])

    assert "remove 10.0.0.100/32 from eth0" in last
    assert "remove chain EGRESS-GATEWAY-SNAT" in last
    assert plane.interfaces() == {}
