"""Which pods a gateway hands over to itself, and when it ends the nudge's keepalive."""

from __future__ import annotations

from agent.session_handover import (
    Nudge,
    PeerSession,
    UdpFlow,
    keepalives_to_stop,
    plan_nudges,
)
from agent.wireguard_uapi import parse_get_reply, peer_session_request

NOW = 1_700_000_000.0
FRONTEND = "10.0.0.100"
KEY_A = bytes([1]) * 32
KEY_B = bytes([2]) * 32


def peer(key: bytes, ip: str, handshake: float = 0.0) -> PeerSession:
    return PeerSession(
        public_key=key, allowed_ips=frozenset({f"{ip}/32"}), last_handshake=handshake
    )


def flow(source_ip: str, dest_ip: str = FRONTEND, dest_port: int = 6000) -> UdpFlow:
    return UdpFlow(source_ip, 51820, dest_ip, dest_port)


SESSIONS = {6000: [peer(KEY_A, "10.244.1.5"), peer(KEY_B, "10.244.1.6", handshake=NOW - 30)]}


def test_a_pod_without_a_session_here_is_nudged_towards_where_it_sends_from() -> None:
    nudges = plan_nudges([flow("10.244.1.5")], {6000: FRONTEND}, SESSIONS, {}, NOW)
    assert nudges == [Nudge(6000, KEY_A, "10.244.1.5", "10.244.1.5:51820")]


def test_a_pod_with_a_recent_session_here_is_left_alone() -> None:
    assert plan_nudges([flow("10.244.1.6")], {6000: FRONTEND}, SESSIONS, {}, NOW) == []


def test_a_session_older_than_three_minutes_counts_as_none() -> None:
    sessions = {6000: [peer(KEY_A, "10.244.1.5", handshake=NOW - 181)]}
    assert len(plan_nudges([flow("10.244.1.5")], {6000: FRONTEND}, sessions, {}, NOW)) == 1


def test_no_flow_here_means_no_nudge() -> None:
    assert plan_nudges([], {6000: FRONTEND}, SESSIONS, {}, NOW) == []


def test_flows_to_other_addresses_ports_or_from_unknown_pods_are_ignored() -> None:
    flows = [
        flow("10.244.1.5", dest_ip="10.0.0.101"),
        flow("10.244.1.5", dest_port=6001),
        flow("10.244.9.9"),
    ]
    assert plan_nudges(flows, {6000: FRONTEND}, SESSIONS, {}, NOW) == []


def test_a_peer_nudged_less_than_five_seconds_ago_waits() -> None:
    flows = [flow("10.244.1.5")]
    assert plan_nudges(flows, {6000: FRONTEND}, SESSIONS, {(6000, KEY_A): NOW - 4}, NOW) == []
    assert len(plan_nudges(flows, {6000: FRONTEND}, SESSIONS, {(6000, KEY_A): NOW - 5}, NOW)) == 1


def test_one_nudge_per_peer_even_with_several_flows() -> None:
    flows = [flow("10.244.1.5"), UdpFlow("10.244.1.5", 40000, FRONTEND, 6000)]
    assert len(plan_nudges(flows, {6000: FRONTEND}, SESSIONS, {}, NOW)) == 1


def test_keepalive_ends_after_the_handshake_or_five_seconds_or_with_the_peer() -> None:
    pending = {(6000, KEY_A): NOW - 1, (6000, KEY_B): NOW - 1, (6001, KEY_A): NOW - 1}
    sessions = {6000: [peer(KEY_A, "10.244.1.5"), peer(KEY_B, "10.244.1.6", handshake=NOW)]}
    assert sorted(keepalives_to_stop(pending, sessions, NOW)) == [(6000, KEY_B), (6001, KEY_A)]
    assert keepalives_to_stop({(6000, KEY_A): NOW - 5}, sessions, NOW) == [(6000, KEY_A)]


def test_uapi_reply_gives_each_peers_handshake_time_and_keepalive() -> None:
    reply = (
        "listen_port=6000\n"
        f"public_key={KEY_A.hex()}\n"
        "endpoint=10.244.1.5:51820\n"
        "last_handshake_time_sec=1700000000\n"
        "last_handshake_time_nsec=5\n"
        "persistent_keepalive_interval=1\n"
        "allowed_ip=10.244.1.5/32\n"
        f"public_key={KEY_B.hex()}\n"
        "last_handshake_time_sec=0\n"
        "allowed_ip=10.244.1.6/32\n"
        "errno=0\n\n"
    )
    state = parse_get_reply(reply)
    assert state.sessions == (
        PeerSession(KEY_A, frozenset({"10.244.1.5/32"}), 1_700_000_000.0, 1),
        PeerSession(KEY_B, frozenset({"10.244.1.6/32"}), 0.0, 0),
    )


def test_uapi_nudge_request_only_updates_an_existing_peer() -> None:
    request = peer_session_request(KEY_A, endpoint="10.244.1.5:51820", keepalive=1)
    assert request == (
        f"set=1\npublic_key={KEY_A.hex()}\nupdate_only=true\n"
        "endpoint=10.244.1.5:51820\npersistent_keepalive_interval=1\n\n"
    )
    assert "endpoint" not in peer_session_request(KEY_A, endpoint=None, keepalive=0)
