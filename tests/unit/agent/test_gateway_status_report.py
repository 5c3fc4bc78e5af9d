"""The GatewayStatus spec built from the agent's in-memory state: what `kubectl get
gatewaystatus <node> -o yaml` shows."""

from __future__ import annotations

from agent.gateway_status_report import ReadyState, gateway_status_spec
from contracts.gateway_status import GatewayConfigurationStatus, PeerConfigurationStatus


def _peers(spec_peers: tuple[PeerConfigurationStatus, ...]) -> list[tuple[str, str, str]]:
    return [(p.interface_name, p.pod_endpoint, p.public_key) for p in spec_peers]


def test_lists_gateways_and_peers_sorted_whatever_the_insertion_order() -> None:
    bounded = gateway_status_spec(
        {"wg-6001": "team-b/egress", "wg-6000": "team-a/egress"},
        {
            "wg-6001": [("team-b/pod-2", "KEY2="), ("team-b/pod-1", "KEY1=")],
            "wg-6000": [("team-a/pod-9", "KEY9=")],
        },
        max_peers=100,
    )

    assert bounded.spec.ready_gateway_configurations == (
        GatewayConfigurationStatus("team-a/egress", "wg-6000"),
        GatewayConfigurationStatus("team-b/egress", "wg-6001"),
    )
    assert _peers(bounded.spec.ready_peer_configurations) == [
        ("wg-6000", "team-a/pod-9", "KEY9="),
        ("wg-6001", "team-b/pod-1", "KEY1="),
        ("wg-6001", "team-b/pod-2", "KEY2="),
    ]
    assert bounded.dropped_peers == 0
    assert bounded.spec.to_object()["readyPeerConfigurations"][0] == {
        "podEndpoint": "team-a/pod-9",
        "interfaceName": "wg-6000",
        "publicKey": "KEY9=",
    }


def test_one_entry_per_public_key_on_an_interface() -> None:
    bounded = gateway_status_spec(
        {"wg-6000": "ns/sgc", "wg-6001": "ns/other"},
        {
            # The same key twice on one interface (e.g. a pod recreated under a new name before
            # the old endpoint is gone): listed once, under the lowest endpoint name.
            "wg-6000": [("ns/pod-b", "SAME="), ("ns/pod-a", "SAME="), ("ns/pod-b", "SAME=")],
            # The same key on another interface is another peer.
            "wg-6001": [("ns/pod-c", "SAME=")],
        },
        max_peers=100,
    )

    assert _peers(bounded.spec.ready_peer_configurations) == [
        ("wg-6000", "ns/pod-a", "SAME="),
        ("wg-6001", "ns/pod-c", "SAME="),
    ]


def test_order_of_duplicates_does_not_change_the_output() -> None:
    first = gateway_status_spec({}, {"wg-6000": [("ns/a", "K="), ("ns/b", "K=")]}, 10)
    second = gateway_status_spec({}, {"wg-6000": [("ns/b", "K="), ("ns/a", "K=")]}, 10)

    assert first == second


def test_peers_beyond_max_peers_are_left_out_deterministically() -> None:
    peers = {
        "wg-6001": [(f"ns/pod-{i:04d}", f"KEY{i}=") for i in range(1500)],
        "wg-6000": [(f"ns/pod-{i:04d}", f"KEY{i}=") for i in range(1000)],
    }

    bounded = gateway_status_spec({"wg-6000": "ns/a", "wg-6001": "ns/b"}, peers, max_peers=2000)
    reversed_input = gateway_status_spec(
        {"wg-6001": "ns/b", "wg-6000": "ns/a"},
        {name: list(reversed(items)) for name, items in reversed(peers.items())},
        max_peers=2000,
    )

    listed = bounded.spec.ready_peer_configurations
    assert len(listed) == 2000
    assert bounded.dropped_peers == 500
    assert reversed_input == bounded
    # The first interface is complete; the second is cut after its first 1000 endpoints.
    assert sum(1 for p in listed if p.interface_name == "wg-6000") == 1000
    assert listed[-1].interface_name == "wg-6001"
    assert listed[-1].pod_endpoint == "ns/pod-0999"
    # Gateways are never cut.
    assert len(bounded.spec.ready_gateway_configurations) == 2


def test_zero_max_peers_lists_gateways_only() -> None:
    bounded = gateway_status_spec({"wg-6000": "ns/a"}, {"wg-6000": [("ns/p", "K=")]}, 0)

    assert bounded.spec.ready_peer_configurations == ()
    assert bounded.dropped_peers == 1
    assert bounded.spec.to_object() == {
        "readyGatewayConfigurations": [
            {"staticGatewayConfiguration": "ns/a", "interfaceName": "wg-6000"}
        ]
    }


def test_nothing_ready_is_an_empty_spec() -> None:
    bounded = gateway_status_spec({}, {}, max_peers=2000)

    assert bounded.spec.to_object() == {}
    assert bounded.dropped_peers == 0


def test_removing_a_gateway_drops_its_peers_and_keeps_the_others() -> None:
    ready = ReadyState()
    ready.set_gateway("ns/a", "wg-6000")
    ready.set_gateway("ns/b", "wg-6001")
    ready.set_peers("wg-6000", [("ns/pod-1", "K1="), ("ns/pod-2", "K2=")])
    ready.set_peers("wg-6001", [("ns/pod-3", "K3=")])

    ready.remove_gateway("wg-6000")

    spec = ready.spec(max_peers=100).spec
    assert spec.ready_gateway_configurations == (GatewayConfigurationStatus("ns/b", "wg-6001"),)
    assert _peers(spec.ready_peer_configurations) == [("wg-6001", "ns/pod-3", "K3=")]


def test_set_peers_replaces_the_interface_peers_entirely() -> None:
    ready = ReadyState()
    ready.set_gateway("ns/a", "wg-6000")
    ready.set_peers("wg-6000", [("ns/pod-1", "K1="), ("ns/pod-2", "K2=")])

    ready.set_peers("wg-6000", [("ns/pod-3", "K3=")])
    assert _peers(ready.spec(100).spec.ready_peer_configurations) == [
        ("wg-6000", "ns/pod-3", "K3=")
    ]

    ready.set_peers("wg-6000", [])
    assert ready.spec(100).spec.ready_peer_configurations == ()


def test_a_gateway_moved_to_another_interface_is_listed_once_removed_from_the_old() -> None:
    ready = ReadyState()
    ready.set_gateway("ns/a", "wg-6000")
    ready.set_gateway("ns/a", "wg-6005")
    ready.remove_gateway("wg-6000")

    assert ready.spec(100).spec.ready_gateway_configurations == (
        GatewayConfigurationStatus("ns/a", "wg-6005"),
    )
