"""What the agent refuses before touching its node, and how one bad peer is set aside."""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import replace

from agent.node_input_checks import (
    check_apply_input,
    check_peers,
    check_remove_input,
    check_sync_input,
)
from contracts.node_io import (
    ApplyGatewayInput,
    GatewayPeer,
    NodeGateway,
    PeerTable,
    RemoveGatewayInput,
    SecretRef,
    SyncPeersInput,
)

NODE = "gw-node-0"


def key(n: int) -> str:
    return base64.b64encode(bytes([n]) * 32).decode()


GATEWAY = NodeGateway(
    sgc_uid="0b9a6c2e-5d1f-4c3e-9f0a-1e2d3c4b5a69",
    sgc_namespace="team-a",
    sgc_name="egress",
    listen_port=6000,
    frontend_ip="10.0.0.100",
    primary_ip="10.0.0.4",
    secondary_ip="10.0.0.5",
    private_key_secret=SecretRef("egressgw-system", "sgw-0b9a6c2e"),
    public_key=key(9),
)


def test_a_well_formed_apply_request_passes() -> None:
    assert check_apply_input(ApplyGatewayInput(NODE, GATEWAY), NODE) == []


def test_every_problem_of_an_apply_request_is_named_by_its_field() -> None:
    bad = replace(
        GATEWAY,
        sgc_uid="",
        sgc_name="",
        listen_port=7000,
        frontend_ip="10.0.0.300",
        primary_ip="0.0.0.0",
        secondary_ip="10.0.0.5/32",
        private_key_secret=SecretRef("", "sgw-x"),
        public_key="not-a-key",
    )

    problems = check_apply_input(ApplyGatewayInput("other-node", bad), NODE)

    assert problems == [
        "node_name: 'other-node' is not this node ('gw-node-0')",
        "gateway.sgc_uid: must not be empty",
        "gateway.sgc_name: must not be empty",
        "gateway.listen_port: 7000 is outside [6000, 7000)",
        "gateway.frontend_ip: '10.0.0.300' is not an IPv4 address",
        "gateway.primary_ip: 0.0.0.0 is not a unicast address",
        "gateway.secondary_ip: '10.0.0.5/32' is not an IPv4 address",
        "gateway.private_key_secret.namespace: must not be empty",
        "gateway.public_key: not valid base64: 'not-a-key'",
    ]


def test_a_public_key_of_the_wrong_length_is_refused() -> None:
    short = replace(GATEWAY, public_key=base64.b64encode(b"x" * 16).decode())

    assert check_apply_input(ApplyGatewayInput(NODE, short), NODE) == [
        "gateway.public_key: a WireGuard key is 32 bytes, got 16"
    ]


def test_lowest_port_is_accepted_and_a_uid_with_a_slash_is_not() -> None:
    assert check_remove_input(RemoveGatewayInput(NODE, "uid-1", 6000), NODE) == []
    assert check_remove_input(RemoveGatewayInput(NODE, "a/b", 5999, "10.0.0.x"), NODE) == [
        "sgc_uid: 'a/b' is not a UID",
        "listen_port: 5999 is outside [6000, 7000)",
        "secondary_ip: '10.0.0.x' is not an IPv4 address",
    ]


def test_sync_request_checks_node_uid_and_port() -> None:
    assert check_sync_input(SyncPeersInput(NODE, "uid-1", 6999, ()), NODE) == []
    assert check_sync_input(SyncPeersInput("n2", " ", 6000, ()), NODE) == [
        "node_name: 'n2' is not this node ('gw-node-0')",
        "sgc_uid: must not be empty",
    ]


def test_malformed_peers_are_rejected_one_by_one_and_the_rest_accepted() -> None:
    peers = (
        GatewayPeer(key(1), "10.244.0.1", "team-a/pod-1"),
        GatewayPeer("bad", "10.244.0.2", "team-a/pod-2"),
        GatewayPeer(key(3), "10.244.0.999", "team-a/pod-3"),
        GatewayPeer(key(4), "10.244.0.4", "team-a/pod-4"),
    )

    checked = check_peers(peers)

    assert [peer.pod_endpoint for peer in checked.accepted] == ["team-a/pod-1", "team-a/pod-4"]
    assert [(peer.public_key, peer.allowed_ip) for peer in checked.specs] == [
        (bytes([1]) * 32, ipaddress.IPv4Address("10.244.0.1")),
        (bytes([4]) * 32, ipaddress.IPv4Address("10.244.0.4")),
    ]
    assert [(r.pod_endpoint, r.reason) for r in checked.rejected] == [
        ("team-a/pod-2", "peers[1].public_key: not valid base64: 'bad'"),
        ("team-a/pod-3", "peers[2].pod_ip: '10.244.0.999' is not an IPv4 address"),
    ]
    assert checked.status_entries == (("team-a/pod-1", key(1)), ("team-a/pod-4", key(4)))


def test_one_key_with_two_ips_rejects_both_entries_and_keeps_the_others() -> None:
    peers = (
        GatewayPeer(key(1), "10.244.0.1", "team-a/old"),
        GatewayPeer(key(2), "10.244.0.2", "team-a/pod-2"),
        GatewayPeer(key(1), "10.244.0.9", "team-a/new"),
    )

    checked = check_peers(peers)

    assert [peer.pod_endpoint for peer in checked.accepted] == ["team-a/pod-2"]
    assert [(r.pod_endpoint, r.reason) for r in checked.rejected] == [
        ("team-a/old", "peers[0].public_key: also listed with pod IP 10.244.0.9"),
        ("team-a/new", "peers[2].public_key: also listed with pod IP 10.244.0.1"),
    ]


def test_one_ip_for_two_keys_is_rejected_and_exact_repeats_collapse() -> None:
    peers = (
        GatewayPeer(key(1), "10.244.0.1", "team-a/a"),
        GatewayPeer(key(2), "10.244.0.1", "team-a/b"),
        GatewayPeer(key(3), "10.244.0.3", "team-a/c"),
        GatewayPeer(key(3), "10.244.0.3", "team-a/c-again"),
    )

    checked = check_peers(peers)

    assert [peer.pod_endpoint for peer in checked.accepted] == ["team-a/c"]
    assert [r.reason for r in checked.rejected] == [
        "peers[0].pod_ip: 10.244.0.1 is also listed for another public key",
        "peers[1].pod_ip: 10.244.0.1 is also listed for another public key",
    ]


def test_rows_parsed_before_give_the_same_verdict_as_parsing_again() -> None:
    first = [
        GatewayPeer(key(1), "10.244.0.1", "team-a/pod-1"),
        GatewayPeer(key(2), "10.244.0.2", "team-a/pod-2"),
        GatewayPeer("AAAA", "10.244.0.3", "team-a/bad"),
    ]
    earlier = check_peers(first)
    assert set(earlier.parsed) == set(first[:2])  # what did not parse is not remembered

    # The next pass: one row gone, one new, one now clashing with a remembered one's IP.
    second = [
        first[1],
        GatewayPeer(key(3), "10.244.0.3", "team-a/pod-3"),
        GatewayPeer(key(4), "10.244.0.2", "team-a/pod-4"),
        first[2],
    ]
    assert check_peers(second, earlier.parsed) == check_peers(second)


def test_a_table_with_columns_of_different_lengths_is_refused() -> None:
    table = PeerTable(public_keys=(key(1), key(2)), pod_ips=("10.244.0.1",), pod_endpoints=())
    problems = check_sync_input(SyncPeersInput(NODE, "uid-1", 6000, table=table), NODE)
    assert problems == ["table: columns of 2 public keys, 1 pod IPs and 0 pod endpoints"]
    rows = PeerTable.of([GatewayPeer(key(1), "10.244.0.1", "team-a/pod-1")])
    assert check_sync_input(SyncPeersInput(NODE, "uid-1", 6000, table=rows), NODE) == []
    assert SyncPeersInput(NODE, "uid-1", 6000, table=rows).wanted() == rows.rows()
