from __future__ import annotations

import ipaddress

import pytest

from agent.peer_plan import (
    PeerChanges,
    PeerSpec,
    peers_after,
    plan_peers,
    plan_routes,
    specs_of,
)

KEY_A, KEY_B, KEY_C, KEY_D = (bytes([n] * 32) for n in (1, 2, 3, 4))


def ip(text: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(text)


def peer(key: bytes, address: str) -> PeerSpec:
    return PeerSpec(key, ip(address))


CURRENT = {
    KEY_A: frozenset({"10.0.0.1/32"}),
    KEY_B: frozenset({"10.0.0.2/32"}),
    KEY_C: frozenset({"10.0.0.3/32", "10.0.9.0/24"}),  # changed by hand
}


def test_sync_adds_removes_and_updates() -> None:
    plan = plan_peers(
        CURRENT, [peer(KEY_A, "10.0.0.1"), peer(KEY_C, "10.0.0.3"), peer(KEY_D, "10.0.0.4")]
    )
    assert plan.add == (peer(KEY_D, "10.0.0.4"),)
    assert plan.remove == (KEY_B,)
    assert plan.update == (peer(KEY_C, "10.0.0.3"),)
    assert plan.changes == PeerChanges(added=1, removed=1, updated=1)


def test_sync_to_the_same_peers_is_empty() -> None:
    wanted = [peer(KEY_A, "10.0.0.1"), peer(KEY_B, "10.0.0.2")]
    assert plan_peers({KEY_A: CURRENT[KEY_A], KEY_B: CURRENT[KEY_B]}, wanted).empty


def test_sync_to_nothing_removes_everything() -> None:
    assert set(plan_peers(CURRENT, []).remove) == {KEY_A, KEY_B, KEY_C}


def test_wanted_peers_must_not_contradict_each_other() -> None:
    with pytest.raises(ValueError, match=r"peers: allowed IP 10\.0\.0\.1"):
        plan_peers({}, [peer(KEY_A, "10.0.0.1"), peer(KEY_B, "10.0.0.1")])
    with pytest.raises(ValueError, match="peers: one public key"):
        plan_peers({}, [peer(KEY_A, "10.0.0.1"), peer(KEY_A, "10.0.0.2")])
    assert len(plan_peers({}, [peer(KEY_A, "10.0.0.1"), peer(KEY_A, "10.0.0.1")]).add) == 1


def test_routes_follow_the_peers_after_the_plan() -> None:
    plan = plan_peers(CURRENT, [peer(KEY_A, "10.0.0.1"), peer(KEY_D, "10.0.0.4")])
    after = peers_after(CURRENT, plan)
    assert after == {KEY_A: frozenset({"10.0.0.1/32"}), KEY_D: frozenset({"10.0.0.4/32"})}
    routes = plan_routes([ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.77")], after)
    assert routes.add == (ip("10.0.0.4"),)
    assert routes.remove == (ip("10.0.0.2"), ip("10.0.0.77"))


def test_only_single_ipv4_host_peers_read_back_as_specs() -> None:
    odd = {**CURRENT, KEY_D: frozenset({"fd00::1/128"})}
    assert specs_of(odd) == [peer(KEY_A, "10.0.0.1"), peer(KEY_B, "10.0.0.2")]


def test_peer_spec_validates_its_fields() -> None:
    with pytest.raises(ValueError, match="public_key"):
        PeerSpec(b"short", ip("10.0.0.1"))
    with pytest.raises(ValueError, match="allowed_ip"):
        PeerSpec(KEY_A, "10.0.0.1")  # type: ignore[arg-type]
