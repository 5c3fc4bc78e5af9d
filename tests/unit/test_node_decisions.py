"""GatewayConfigWorkflow's node decisions and node-aware status, called directly; the watcher's
and the PodEndpoint activity's pure parts."""

from __future__ import annotations

from dataclasses import replace

from activities.kube.pod_endpoints import gateway_peers
from contracts import kube_names
from contracts.activity_io import GatewayKey, SgcRef
from contracts.azure_state import GatewayPool, NodeAddress, PoolKind
from contracts.conditions import ConditionStatus
from contracts.gateway_config import GatewayVmssProfile, StaticGatewayConfigurationSpec
from contracts.workflow_io import AppliedConfiguration, NodeProblem, SpecDelivery
from kubeclient.list_watch import WatchEvent
from watchers.pod_endpoint_watcher import peer_changes
from workflows import gateway_config_decisions as decide
from workflows import gateway_config_status as render
from workflows import node_decisions as nodes
from workflows.gateway_config_decisions import Phase, TeardownStep

UID = "0b9c3a52-6a0e-4c1e-9d55-0c8f3c1f2a11"
SGC = SgcRef("team-a", "egress", UID)
KEY = GatewayKey("cHVibGljLWtleS0zMi1ieXRlcy1sb25nLXh4eHh4eHg=", f"sgw-{UID}", "egressgw")
NODES = (
    NodeAddress("node-b", "10.224.0.5", "10.224.0.7"),
    NodeAddress("node-a", "10.224.0.4", "10.224.0.6"),
)
POOL = GatewayPool(PoolKind.VMSS, "sub", "rg", "vmss", "lbpool", 31, 2)
DELIVERY = SpecDelivery(
    sgc=SGC,
    generation=3,
    spec=StaticGatewayConfigurationSpec(gateway_vmss_profile=GatewayVmssProfile("rg", "vmss", 31)),
)


def provisioned(*problems: NodeProblem) -> decide.Provisioned:
    return decide.Provisioned(
        key=KEY,
        pool=POOL,
        frontend_ip="10.225.0.4",
        port=6001,
        prefix=None,
        nodes=NODES,
        node_problems=problems,
    )


def condition(update: object, kind: str) -> tuple[ConditionStatus, str, str]:
    for c in update.conditions:  # type: ignore[attr-defined]
        if c.type == kind:
            return c.status, c.reason, c.message
    raise AssertionError(kind)


def test_each_node_gets_its_own_secondary_ip_and_the_key_by_reference() -> None:
    gateways = nodes.node_gateways(SGC, KEY, "10.225.0.4", 6001, NODES)

    assert [g.node_name for g in gateways] == ["node-a", "node-b"]
    assert [g.secondary_ip for g in gateways] == ["10.224.0.6", "10.224.0.7"]
    assert {g.listen_port for g in gateways} == {6001}
    assert gateways[0].private_key_secret.name == f"sgw-{UID}"
    assert gateways[0].public_key == KEY.public_key
    assert nodes.gateway_for(gateways, "node-b") is gateways[1]
    assert nodes.gateway_for(gateways, "node-z") is None


def test_stale_gateways_are_those_on_departed_nodes_or_with_another_port_or_address() -> None:
    before = nodes.node_gateways(SGC, KEY, "10.225.0.4", 6001, NODES)
    same = nodes.node_gateways(SGC, KEY, "10.225.0.4", 6001, NODES)
    assert nodes.stale_gateways(before, same) == ()

    moved_port = nodes.node_gateways(SGC, KEY, "10.225.0.4", 6002, NODES)
    assert nodes.stale_gateways(before, moved_port) == before

    one_left = nodes.node_gateways(SGC, KEY, "10.225.0.4", 6001, NODES[:1])
    assert [g.node_name for g in nodes.stale_gateways(before, one_left)] == ["node-a"]


def test_problems_of_unchecked_nodes_are_kept_and_departed_nodes_dropped() -> None:
    no_agent = NodeProblem("node-a", "no agent")
    previous = (no_agent, NodeProblem("node-b", "boom"), NodeProblem("node-gone", "no agent"))
    merged = nodes.merge_problems(
        previous, checked=["node-b"], found=[], nodes=["node-a", "node-b"]
    )
    assert merged == (no_agent,)
    found = NodeProblem("node-a", "x")
    assert nodes.merge_problems((), ["node-a"], [found], ["node-a"]) == (found,)


def test_nodes_without_agent_or_gone_silent_are_left_out_until_their_agent_starts() -> None:
    problems = (
        NodeProblem("node-a", nodes.NO_AGENT),
        NodeProblem("node-b", nodes.NOT_ANSWERING),
        NodeProblem("node-c", "GatewaySecretMissing: not there yet"),
    )
    assert nodes.absent_agent_nodes(problems, restarted=[]) == {"node-a", "node-b"}
    assert nodes.absent_agent_nodes(problems, restarted=["node-b"]) == {"node-a"}
    # Histories recorded before the change: only a missing agent was left out.
    assert nodes.absent_agent_nodes(problems, [], silent_too=False) == {"node-a"}


def test_degraded_retries_back_off_to_eight_intervals() -> None:
    factors = [nodes.retry_backoff_factor(n) for n in range(7)]
    assert factors == [1, 1, 2, 4, 8, 8, 8]


def test_only_nodes_that_did_not_answer_are_retried_on_their_own() -> None:
    problems = [
        NodeProblem("node-a", nodes.NO_AGENT),
        NodeProblem("node-b", nodes.NOT_ANSWERING),
        NodeProblem("node-c", "wireguard: device busy"),  # its agent answered, with an error
    ]
    assert nodes.unanswering_nodes(problems) == {"node-a", "node-b"}
    assert nodes.unanswering_nodes([]) == set()


def test_node_retries_start_at_15_s_and_double_up_to_the_drift_interval() -> None:
    waits = [nodes.node_retry_seconds(n, 4, 300) for n in range(7)]
    assert waits == [15, 30, 60, 120, 240, 300, 300]
    assert nodes.node_retry_seconds(10_000, 4, 300) == 300  # no overflow, never hot


def test_a_long_answer_timeout_makes_the_first_retry_wait_twice_as_long() -> None:
    # A try of a silent node waits the answer timeout; at least twice that between tries.
    assert nodes.node_retry_seconds(0, 10, 300) == 20
    assert nodes.node_retry_seconds(0, 60, 300) == 120


def test_node_retries_never_come_sooner_than_the_first_wait_with_a_short_drift_interval() -> None:
    assert nodes.node_retry_seconds(0, 4, 5) == 15
    assert nodes.node_retry_seconds(3, 4, 5) == 15


def test_node_retry_back_off_resets_when_the_nodes_serve_or_another_node_is_named() -> None:
    assert nodes.node_retries_after({"node-a"}, {"node-a"}, 3) == 3  # still silent: keeps going
    assert nodes.node_retries_after({"node-a", "node-b"}, {"node-a"}, 3) == 3  # one came back
    assert nodes.node_retries_after({"node-a"}, set(), 3) == 0  # every node serves
    assert nodes.node_retries_after({"node-a"}, {"node-a", "node-b"}, 3) == 0  # a newly silent


def test_one_dead_node_keeps_ready_true_and_names_the_node_in_degraded() -> None:
    update = render.ready_status(
        DELIVERY, provisioned(NodeProblem("node-b", "no agent picked up the work"))
    )

    assert decide.provisioned_phase(provisioned(NodeProblem("node-b", "x"))) == Phase.DEGRADED
    assert condition(update, kube_names.CONDITION_READY)[0] == ConditionStatus.TRUE
    status, reason, message = condition(update, kube_names.CONDITION_DEGRADED)
    assert status == ConditionStatus.TRUE
    assert reason == kube_names.REASON_GATEWAY_NODES_NOT_READY
    assert "node-b: no agent picked up the work" in message and "1 of 2" in message


def test_no_node_serving_is_not_ready() -> None:
    update = render.ready_status(
        DELIVERY, provisioned(NodeProblem("node-a", "x"), NodeProblem("node-b", "y"))
    )
    assert condition(update, kube_names.CONDITION_READY)[0] == ConditionStatus.FALSE
    assert "2 of 2" in condition(update, kube_names.CONDITION_READY)[2]


def test_all_nodes_serving_is_ready_and_not_degraded() -> None:
    update = render.ready_status(DELIVERY, provisioned())
    assert decide.provisioned_phase(provisioned()) == Phase.READY
    assert condition(update, kube_names.CONDITION_DEGRADED)[0] == ConditionStatus.FALSE


def test_node_gateways_are_torn_down_first() -> None:
    record = AppliedConfiguration(
        sgc=SGC,
        key_secret=f"sgw-{UID}",
        pool=POOL,
        rule_registered=True,
        node_gateways=nodes.node_gateways(SGC, KEY, "10.225.0.4", 6001, NODES),
    )
    steps = decide.teardown_steps(record)
    assert steps[0] == TeardownStep.REMOVE_NODE_GATEWAYS
    after = decide.without_step(record, TeardownStep.REMOVE_NODE_GATEWAYS)
    assert after.node_gateways == () and after.rule_registered
    assert decide.created_by_run(replace(record, node_gateways=()), record).node_gateways == ()


def _endpoint(name: str, sgc: str, ip: str, key: str = KEY.public_key) -> dict[str, object]:
    return {
        "apiVersion": f"{kube_names.API_GROUP}/{kube_names.API_VERSION}",
        "kind": kube_names.POD_ENDPOINT_KIND,
        "metadata": {"namespace": "team-a", "name": name, "uid": name},
        "spec": {"staticGatewayConfiguration": sgc, "podIpAddress": ip, "podPublicKey": key},
    }


def test_peers_come_from_the_configurations_pod_endpoints_and_bad_ones_are_named() -> None:
    objects = [
        _endpoint("pod-b", "egress", "10.244.1.3/32"),
        _endpoint("pod-a", "egress", "10.244.1.2/32"),
        _endpoint("other", "another-gateway", "10.244.1.9/32"),
        _endpoint("broken", "egress", "not-an-ip"),
        _endpoint("keyless", "egress", "10.244.1.4/32", key=""),
    ]
    result = gateway_peers(objects, "egress")
    assert [(p.pod_endpoint, p.pod_ip) for p in result.as_table().rows()] == [
        ("team-a/pod-a", "10.244.1.2"),
        ("team-a/pod-b", "10.244.1.3"),
    ]
    assert len(result.skipped) == 2
    assert any("team-a/broken" in s and "podIpAddress" in s for s in result.skipped)


def test_a_pod_endpoint_moving_between_configurations_tells_both() -> None:
    created = WatchEvent("ADDED", _endpoint("pod-a", "egress", "10.244.1.2/32"))
    known, told = peer_changes({}, created)
    assert told == ("team-a/egress",)

    moved = WatchEvent("MODIFIED", _endpoint("pod-a", "other", "10.244.1.2/32"))
    known, told = peer_changes(known, moved)
    assert told == ("team-a/egress", "team-a/other")

    deleted = WatchEvent("DELETED", _endpoint("pod-a", "other", "10.244.1.2/32"))
    known, told = peer_changes(known, deleted)
    assert told == ("team-a/other",) and known == {}
