"""Which VM's IMDS a connection to 169.254.169.254 reaches: the node its source address belongs
to (its primary IP or a pod of its CIDR); nothing for an address of no node."""

from __future__ import annotations

from sim.fabric.imds_relay import Target, routes_for_nodes, target_for
from sim.fabric.plan import NodeSpec, plan_fabric

A = Target("127.0.0.1", 18001)
B = Target("127.0.0.1", 18002)


def _routes() -> dict[str, Target]:
    plan = plan_fabric(
        "u1",
        [NodeSpec("node-a", "10.224.0.4", 16), NodeSpec("node-b", "10.224.0.5", 16)],
    )
    return routes_for_nodes(plan.nodes, {"node-a": A, "node-b": B})


def test_a_node_and_its_pods_reach_the_nodes_imds() -> None:
    routes = _routes()
    pod_cidr_a = next(cidr for cidr, t in routes.items() if t == A and not cidr.endswith("/32"))
    pod_of_a = pod_cidr_a.split("/")[0].rsplit(".", 1)[0] + ".17"

    assert target_for("10.224.0.4", routes) == A
    assert target_for("10.224.0.5", routes) == B
    assert target_for(pod_of_a, routes) == A


def test_nodes_without_an_imds_and_strangers_get_none() -> None:
    plan = plan_fabric("u1", [NodeSpec("node-a", "10.224.0.4", 16)])
    routes = routes_for_nodes(plan.nodes, {})

    assert routes == {}
    assert target_for("10.224.0.99", _routes()) is None
    assert target_for("not an address", _routes()) is None


def test_the_most_specific_network_wins() -> None:
    routes = {"10.0.0.0/8": A, "10.1.2.3/32": B}

    assert target_for("10.1.2.3", routes) == B
    assert target_for("10.1.2.4", routes) == A
