"""Which routes a pod gets for each defaultRoute (pod_routes.plan_routes), how they are written
for `ip -batch`, and how CHECK compares them with `ip -j` output."""

from __future__ import annotations

from agent.cni import pod_routes
from agent.cni.pod_routes import DEFAULT, PodNetwork, Route

NETWORK = PodNetwork(
    mode=pod_routes.STATIC_EGRESS_GATEWAY,
    ifname="eth0",
    gateway="10.244.1.1",
    default_metric=0,
    pod_ip="10.244.1.5",
    endpoint_ip="10.224.0.100",
    cluster_cidrs=("10.244.0.0/16", "10.96.0.0/16", "10.224.0.0/16"),
    exclude_cidrs=("203.0.113.0/24", "10.96.0.0/16"),
    exception_cidrs=("169.254.169.254/32", "169.254.10.11/32"),
)


def via_eth0(dst: str) -> Route:
    return Route(dst=dst, dev="eth0", via="10.244.1.1")


def test_static_egress_gateway_default_through_wg0_the_rest_by_eth0() -> None:
    plan = pod_routes.plan_routes(NETWORK, existing_main=["0.0.0.0/0", "10.244.1.0/24"])
    assert plan.main == (
        via_eth0("10.224.0.100/32"),  # the frontend: wg0's own endpoint
        via_eth0("169.254.169.254/32"),
        via_eth0("169.254.10.11/32"),
        via_eth0("10.244.0.0/16"),
        via_eth0("10.96.0.0/16"),  # once, though both a cluster CIDR and excluded
        via_eth0("10.224.0.0/16"),
        via_eth0("203.0.113.0/24"),
        Route(dst=DEFAULT, dev="wg0", src="10.244.1.5"),
    )
    assert plan.ingress == Route(dst=DEFAULT, dev="eth0", via="10.244.1.1", table=8738)


def test_routes_the_main_plugin_made_are_left_alone() -> None:
    plan = pod_routes.plan_routes(NETWORK, existing_main=["10.96.0.0/16", "10.244.0.0/16"])
    assert "10.96.0.0/16" not in [route.dst for route in plan.main]
    assert plan.skipped == ("10.244.0.0/16", "10.96.0.0/16")


def test_azure_networking_only_the_prefixes_through_wg0_never_an_exception() -> None:
    network = PodNetwork(
        **{
            **NETWORK.__dict__,
            "mode": pod_routes.AZURE_NETWORKING,
            "exclude_cidrs": ("198.51.100.0/24", "169.254.169.254/32", "10.224.0.100/32"),
        }
    )
    plan = pod_routes.plan_routes(network, existing_main=["0.0.0.0/0"])
    assert plan.main == (
        via_eth0("10.224.0.100/32"),
        via_eth0("169.254.169.254/32"),
        via_eth0("169.254.10.11/32"),
        Route(dst="198.51.100.0/24", dev="wg0", src="10.244.1.5"),
    )


def test_batch_lines_put_the_default_route_last_and_the_ingress_rule_after() -> None:
    plan = pod_routes.plan_routes(NETWORK, existing_main=[])
    lines = pod_routes.add_commands(plan)
    assert lines[0] == "route add 10.224.0.100/32 via 10.244.1.1 dev eth0 proto 34"
    assert lines[-3] == "route replace default dev wg0 src 10.244.1.5 proto 34"
    assert lines[-2] == "route replace default via 10.244.1.1 dev eth0 table 8738 proto 34"
    assert lines[-1] == "rule add fwmark 0x2222 lookup 8738"


def test_the_ingress_ruleset_replaces_our_table_atomically() -> None:
    script = pod_routes.ingress_ruleset("eth0")
    assert script.startswith("table ip kube_egress_cni {}\ndelete table ip kube_egress_cni\n")
    assert 'iifname "eth0" meta mark set 0x2222' in script
    assert "ct mark 0x2222 meta mark set ct mark" in script
    assert "type route hook output" in script  # a changed mark re-routes the reply


def test_reading_ip_json() -> None:
    routes = [
        {"dst": "default", "gateway": "10.244.1.1", "dev": "eth0", "flags": []},
        {"dst": "10.244.1.0/24", "dev": "eth0", "protocol": "kernel"},
        {"dst": "10.1.0.1", "dev": "eth0", "table": "8738", "protocol": "34"},
        {"dst": "127.0.0.1", "dev": "lo", "table": "local"},
    ]
    assert pod_routes.default_route(routes, "eth0") == pod_routes.DefaultRoute(
        "10.244.1.1", "eth0", 0, ""
    )
    assert [pod_routes.route_dst(r) for r in routes][2] == "10.1.0.1/32"
    assert [pod_routes.route_table(r) for r in routes] == [0, 0, 8738, None]
    assert [pod_routes.is_ours(r) for r in routes] == [False, False, True, False]
    assert pod_routes.default_route(routes, "eth1") is None
    restore = pod_routes.DefaultRoute("10.244.1.1", "eth0", 100, "static").restore_args()
    assert restore == "default via 10.244.1.1 dev eth0 metric 100 proto static"


def test_check_routes_names_what_differs() -> None:
    plan = pod_routes.plan_routes(NETWORK, existing_main=[])
    present = [
        {"dst": pod_routes.route_dst({"dst": r.dst}), "dev": r.dev, "gateway": r.via}
        if r.via
        else {"dst": "default", "dev": r.dev}
        for r in plan.main
    ]
    present.append({"dst": "default", "dev": "eth0", "gateway": "10.244.1.1", "table": "8738"})
    rules = [{"priority": 32765, "fwmark": "0x2222", "table": "8738"}]
    assert pod_routes.check_routes(plan, present, rules) == []
    broken = [r for r in present if r["dst"] != "169.254.10.11/32"]
    broken[0] = {**broken[0], "dev": "wg0"}
    problems = pod_routes.check_routes(plan, broken, [])
    assert problems == [
        "route 10.224.0.100/32 in the main table goes via 10.244.1.1 dev wg0, expected "
        "10.224.0.100/32 via 10.244.1.1 dev eth0 proto 34",
        "route 169.254.10.11/32 dev eth0 is missing from the main table",
        "rule fwmark 0x2222 lookup 8738 is missing",
    ]
