"""Which leftovers a gateway node removes, and that it never plans to touch anything not ours."""

from __future__ import annotations

from agent.node_inventory import NodeInventory
from agent.orphan_plan import DesiredGateway, OrphanPlan, plan_orphans

A = DesiredGateway("uid-a", 6000, "10.1.0.5", "10.0.0.100")
B = DesiredGateway("uid-b", 6001, "10.1.0.6", "10.0.0.100")

BOTH_BUILT = NodeInventory(
    gateway_netns_exists=True,
    wireguard_links={"wg-6000": "uid-a", "wg-6001": "uid-b"},
    host0_addresses=frozenset({"10.1.0.5", "10.1.0.6"}),
    gateway_chain_ports=frozenset({6000, 6001}),
    host_routes=frozenset({"10.1.0.5", "10.1.0.6"}),
    host_ip_chains=frozenset({"10.1.0.5", "10.1.0.6"}),
    snat_base_chain=True,
    frontend_addresses=frozenset({"10.0.0.100"}),
)


def test_a_node_that_matches_what_is_desired_has_no_orphans() -> None:
    plan = plan_orphans(BOTH_BUILT, [A, B])

    assert plan == OrphanPlan()
    assert plan.empty


def test_a_configuration_that_went_away_leaves_only_its_own_pieces_behind() -> None:
    plan = plan_orphans(BOTH_BUILT, [A])

    assert plan == OrphanPlan(
        links=("wg-6001",),
        gateway_chain_ports=(6001,),
        secondary_ips=("10.1.0.6",),
        host_ip_chains=("10.1.0.6",),
    )


def test_the_shared_frontend_stays_while_any_configuration_uses_it() -> None:
    moved = DesiredGateway("uid-b", 6001, "10.1.0.6", "10.0.0.200")
    inventory = NodeInventory(frontend_addresses=frozenset({"10.0.0.100", "10.0.0.200"}))

    assert plan_orphans(inventory, [A, moved]).frontend_ips == ()
    assert plan_orphans(inventory, [moved]).frontend_ips == ("10.0.0.100",)


def test_with_nothing_desired_everything_of_ours_goes_like_upstream_cleanup() -> None:
    plan = plan_orphans(BOTH_BUILT, [])

    assert plan == OrphanPlan(
        links=("wg-6000", "wg-6001"),
        gateway_chain_ports=(6000, 6001),
        secondary_ips=("10.1.0.5", "10.1.0.6"),
        host_ip_chains=("10.1.0.5", "10.1.0.6"),
        frontend_ips=("10.0.0.100",),
        snat_base_chain=True,
    )


def test_half_built_leftovers_are_found_from_any_trace() -> None:
    # A crash between steps: a host route without its host0 address, a chain without its link.
    inventory = NodeInventory(
        host_routes=frozenset({"10.1.0.9"}),
        gateway_chain_ports=frozenset({6005}),
        host_ip_chains=frozenset({"10.1.0.8"}),
    )

    plan = plan_orphans(inventory, [A])

    assert plan.secondary_ips == ("10.1.0.9",)
    assert plan.gateway_chain_ports == (6005,)
    assert plan.host_ip_chains == ("10.1.0.8",)
    assert not plan.snat_base_chain


def test_links_that_are_not_wireguard_gateways_are_never_planned() -> None:
    inventory = NodeInventory(wireguard_links={"wg-6000": "uid-a", "wgx": "", "eth0": ""})

    assert plan_orphans(inventory, []).links == ("wg-6000",)


def test_an_empty_node_needs_nothing() -> None:
    assert plan_orphans(NodeInventory(), []).empty
