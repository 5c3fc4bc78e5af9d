"""Gateway nodes configured by GatewayConfigWorkflow through node agents, on the real dev server
and API server with the ARM emulator (tests/fixtures/workflow_stack.py). The agents here are the
real node activities with the dry-run dataplane (tests/fixtures/dry_run_agents.py): everything but
the kernel (tests/netns and tests/e2e cover that part).

Set EGRESSGW_RECORD_HISTORIES=1 to (re)write these runs' histories under tests/replay/next/.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient
from kubernetes_asyncio.client import ApiClient
from temporalio.api.enums.v1 import EventType

from agent.wireguard_devices import InterfaceNotFoundError
from agent.wireguard_keys import generate_private_key, public_key_of, to_base64
from contracts import kube_names, node_io, resource_names
from contracts.activity_io import SgcRef
from contracts.workflow_io import GET_STATUS, PEERS_CHANGED, ConfigurationStatus, SpecDelivery
from egressgw.dev.temporal_server import TemporalDevServer
from sim.arm.server import ArmEmulator
from sim.topology import Topology
from tests.fixtures import histories
from tests.fixtures.dry_run_agents import (
    DryRunAgent,
    agents,
    create_pod_endpoint,
    gateway_status,
    node_names,
)
from tests.fixtures.kube_accounts import ComponentAccount, grant_namespace
from tests.fixtures.kube_proxy import KubeProxy
from tests.fixtures.sgc_status import condition
from tests.fixtures.waiting import wait_for
from tests.fixtures.workflow_stack import G, Stack, StackKube, StackOptions, V, make_stack


@pytest.fixture
def stack_options() -> StackOptions:
    return StackOptions(
        batch_quiet=timedelta(0), configure_nodes=True, node_answer_timeout_seconds=3
    )


async def test_every_gateway_node_is_configured_and_reported(
    stack: Stack, agent_kube: ApiClient, tmp_path: Path
) -> None:
    nodes = node_names(stack)
    async with agents(stack, agent_kube, tmp_path, nodes) as running:
        spec = stack.vmss_spec()
        sgc = await stack.create_sgc("everywhere", spec)
        status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

        assert status.phase == "Ready", status.message
        assert status.node_problems == ()
        interface = f"wg-{status.port}"
        for node in nodes:
            agent = running[node]
            assert agent.dataplane.interfaces() == {interface: sgc.uid}
            assert await agent.probe_status(sgc.uid) == 200
            reported = await gateway_status(stack, node)
            assert reported["spec"]["readyGatewayConfigurations"] == [
                {
                    "staticGatewayConfiguration": f"{stack.namespace}/everywhere",
                    "interfaceName": interface,
                }
            ]
        # Each node SNATs to its own secondary IP: the one the pool workflow reported for it.
        secondary = {n.node_name: n.secondary_ip for n in status.nodes}
        for node in nodes:
            records = (tmp_path / f"{node}.jsonl").read_text()
            assert secondary[node] in records
        gateway = await stack.handle(sgc).query(
            node_io.NODE_GATEWAY_QUERY, nodes[0], result_type=node_io.NodeGateway
        )
        assert gateway is not None and gateway.secondary_ip == secondary[nodes[0]]
        assert "PrivateKey" not in (tmp_path / f"{nodes[0]}.jsonl").read_text()
        await stack.record("nodes_configured", sgc, single_writers=True)


async def test_a_node_without_agent_is_named_and_comes_back_when_its_agent_starts(
    stack: Stack, agent_kube: ApiClient, tmp_path: Path
) -> None:
    healthy, dead = node_names(stack)
    async with agents(stack, agent_kube, tmp_path, [healthy]) as running:
        spec = stack.vmss_spec()
        sgc = await stack.create_sgc("half", spec)
        status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

        assert status.phase == "Degraded"
        assert [p.node_name for p in status.node_problems] == [dead]
        obj = await stack.get_sgc("half")
        assert obj is not None
        assert condition(obj, "Ready")["status"] == "True"  # the healthy node serves
        degraded = condition(obj, "Degraded")
        assert degraded["status"] == "True" and dead in degraded["message"]
        assert "no agent picked up the work" in degraded["message"]
        assert await running[healthy].probe_status(sgc.uid) == 200
        assert obj["status"]["gatewayServerProfile"]["port"] == status.port

        # The agent starts and tells the workflow, as egressgw agent does on start.
        async with agents(stack, agent_kube, tmp_path, [dead]) as late:
            await stack.handle(sgc).signal(
                node_io.NODE_AGENT_STARTED, node_io.NodeAgentStarted(dead, "test-instance")
            )

            async def recovered() -> bool:
                current = await stack.get_sgc("half")
                return current is not None and condition(current, "Degraded")["status"] == "False"

            await wait_for(recovered, what="the late node to be configured")
            assert await late[dead].probe_status(sgc.uid) == 200
            events = await stack.events(sgc)
            assert any(
                reason == kube_names.REASON_GATEWAY_NODES_NOT_READY for _, reason, _ in events
            )
            await stack.record("nodes_agent_late", sgc)


async def test_pod_endpoints_become_peers_and_deletion_clears_the_nodes(
    stack: Stack, agent_kube: ApiClient, tmp_path: Path
) -> None:
    nodes = node_names(stack)
    async with agents(stack, agent_kube, tmp_path, nodes) as running:
        spec = stack.vmss_spec()
        sgc = await stack.create_sgc("with-pods", spec)
        status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))
        assert status.phase == "Ready", status.message

        pod_key = to_base64(public_key_of(generate_private_key()))
        await create_pod_endpoint(stack, "pod-a", "with-pods", "10.244.1.7/32", pod_key)
        # A malformed key must not keep the good pod from its gateway.
        await create_pod_endpoint(stack, "pod-bad", "with-pods", "10.244.1.8/32", "bm90LWEta2V5")
        await stack.handle(sgc).signal(PEERS_CHANGED)  # what the PodEndpoint watcher sends

        async def peers_everywhere() -> bool:
            return all(
                [str(p.allowed_ip) for p in running[n].dataplane.peers(status.port)]
                == ["10.244.1.7"]
                for n in nodes
            )

        await wait_for(peers_everywhere, what="the pod to become a peer on every node")
        listed = [
            {
                "podEndpoint": f"{stack.namespace}/pod-a",
                "interfaceName": f"wg-{status.port}",
                "publicKey": pod_key,
            }
        ]

        async def reported() -> bool:
            # A peer sync's GatewayStatus write follows it in the background.
            spec = (await gateway_status(stack, nodes[0]))["spec"]
            return bool(spec.get("readyPeerConfigurations") == listed)

        await wait_for(reported, what="GatewayStatus to list the pod")

        handle = await stack.deliver(SpecDelivery(sgc=sgc, generation=1, spec=spec, deleting=True))
        await handle.result()
        for node in nodes:
            assert running[node].dataplane.interfaces() == {}
            assert await running[node].probe_status(sgc.uid) == 503
        await stack.record("nodes_peers_and_delete", sgc)


def peer_ips(agent: DryRunAgent, port: int) -> list[str]:
    """The pod IPs wg-<port> holds; none while the node has no such gateway."""
    try:
        return [str(p.allowed_ip) for p in agent.dataplane.peers(port)]
    except InterfaceNotFoundError:
        return []


async def scheduled(stack: Stack, sgc: SgcRef, activity: str, task_queue: str = "") -> int:
    """Activities of `activity`'s type (on `task_queue`, if given) the workflow's current run
    has scheduled."""
    history = await stack.handle(sgc).fetch_history()
    return sum(
        1
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == activity
        and task_queue in ("", event.activity_task_scheduled_event_attributes.task_queue.name)
    )


async def test_a_node_without_agent_does_not_hold_back_the_peers_of_the_others(
    stack: Stack, agent_kube: ApiClient, tmp_path: Path
) -> None:
    healthy, dead = node_names(stack)
    dead_queue = resource_names.node_task_queue(dead)
    async with agents(stack, agent_kube, tmp_path, [healthy]) as running:
        spec = stack.vmss_spec()
        sgc = await stack.create_sgc("absent", spec)
        status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))
        assert [p.node_name for p in status.node_problems] == [dead]
        asked = await scheduled(stack, sgc, node_io.APPLY_NODE_GATEWAY, dead_queue)

        key = to_base64(public_key_of(generate_private_key()))
        await create_pod_endpoint(stack, "pod-a", "absent", "10.244.1.7/32", key)
        await stack.handle(sgc).signal(PEERS_CHANGED)

        async def on_the_healthy_node() -> bool:
            return peer_ips(running[healthy], status.port) == ["10.244.1.7"]

        await wait_for(on_the_healthy_node, what="the pod on the node whose agent runs")
        # The peer pass did not wait for the node without agent: it did not ask it at all.
        assert await scheduled(stack, sgc, node_io.SYNC_NODE_PEERS, dead_queue) == 0
        assert await scheduled(stack, sgc, node_io.APPLY_NODE_GATEWAY, dead_queue) == asked
        current = await stack.handle(sgc).query(GET_STATUS, result_type=ConfigurationStatus)
        assert [p.node_name for p in current.node_problems] == [dead]

        # Its agent starts: the node gets the gateway with today's peers.
        async with agents(stack, agent_kube, tmp_path, [dead]) as late:
            await stack.handle(sgc).signal(
                node_io.NODE_AGENT_STARTED, node_io.NodeAgentStarted(dead, "test-instance")
            )

            async def on_the_late_node() -> bool:
                return peer_ips(late[dead], status.port) == ["10.244.1.7"]

            await wait_for(on_the_late_node, what="the pod on the node whose agent came back")
        await stack.record("nodes_absent_agent_skipped", sgc, single_writers=True)


def timer_options(drift_check_seconds: int) -> StackOptions:
    return StackOptions(
        batch_quiet=timedelta(0),
        configure_nodes=True,
        node_answer_timeout_seconds=3,
        drift_check_seconds=drift_check_seconds,
        peer_sync_seconds=2,
    )


@pytest.mark.parametrize("stack_options", [timer_options(drift_check_seconds=3600)])
async def test_the_periodic_peer_sync_follows_pod_endpoints_no_signal_told_of(
    stack: Stack, agent_kube: ApiClient, tmp_path: Path
) -> None:
    nodes = node_names(stack)
    async with agents(stack, agent_kube, tmp_path, nodes) as running:
        spec = stack.vmss_spec()
        sgc = await stack.create_sgc("synced", spec)
        status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))
        assert status.phase == "Ready", status.message

        # No watcher runs here: nobody signals these changes, and the drift pass is an hour
        # away; only the peer sync timer (2 s) finds them.
        key = to_base64(public_key_of(generate_private_key()))
        await create_pod_endpoint(stack, "pod-a", "synced", "10.244.1.7/32", key)

        async def everywhere(ips: list[str]) -> bool:
            return all(peer_ips(running[n], status.port) == ips for n in nodes)

        await wait_for(lambda: everywhere(["10.244.1.7"]), what="the pod on every node")
        await stack.custom.delete_namespaced_custom_object(
            G, V, stack.namespace, kube_names.POD_ENDPOINT_PLURAL, "pod-a"
        )
        await wait_for(lambda: everywhere([]), what="the pod gone from every node")
        assert await scheduled(stack, sgc, "ensure_load_balancer_rule") == 1  # Azure untouched
        await stack.record("nodes_peer_sync_timer", sgc)


@pytest.mark.parametrize("stack_options", [timer_options(drift_check_seconds=6)])
async def test_peer_syncs_do_not_put_the_drift_check_off(
    stack: Stack, agent_kube: ApiClient, tmp_path: Path
) -> None:
    """The drift check comes due from the last full pass: peer syncs every 2 s in between do
    not restart its 6 s."""
    async with agents(stack, agent_kube, tmp_path, node_names(stack)):
        spec = stack.vmss_spec()
        sgc = await stack.create_sgc("drifting", spec)
        status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))
        assert status.phase == "Ready", status.message

        async def drift_checked() -> bool:
            return await scheduled(stack, sgc, "ensure_load_balancer_rule") >= 2

        await wait_for(drift_checked, 60, "a drift pass between the peer syncs")
        assert await scheduled(stack, sgc, node_io.SYNC_NODE_PEERS) >= 2
        await stack.record("nodes_peer_sync_and_drift", sgc)


@pytest.fixture
async def proxied_stack(
    temporal_server: TemporalDevServer,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
    stack_kube: StackKube,
    kube_proxy: KubeProxy,
    controller_account: ComponentAccount,
    async_network_client: Callable[..., Awaitable[NetworkManagementClient]],
    async_compute_client: Callable[..., Awaitable[ComputeManagementClient]],
    stack_options: StackOptions,
) -> AsyncIterator[tuple[Stack, KubeProxy]]:
    """The workflow stack with the controller's Kubernetes calls through `kube_proxy`."""
    async with kube_proxy.client_for(controller_account.kubeconfig) as controller:
        kube = replace(stack_kube, controller=controller)
        async for made in make_stack(
            temporal_server.address,
            arm_emulator,
            arm_topology,
            kube,
            async_network_client,
            async_compute_client,
            stack_options,
        ):
            yield made, kube_proxy


async def test_peers_that_cannot_be_listed_are_left_on_the_nodes(
    proxied_stack: tuple[Stack, KubeProxy], agent_account: ComponentAccount, tmp_path: Path
) -> None:
    stack, proxy = proxied_stack
    await grant_namespace(stack.kube.admin, agent_account, stack.secret_namespace)
    nodes = node_names(stack)
    async with (
        await agent_account.client() as agent_api,
        agents(stack, agent_api, tmp_path, nodes) as running,
    ):
        spec = stack.vmss_spec()
        sgc = await stack.create_sgc("unlisted", spec)
        key = to_base64(public_key_of(generate_private_key()))
        await create_pod_endpoint(stack, "pod-a", "unlisted", "10.244.1.7/32", key)
        status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))
        assert status.phase == "Ready", status.message
        assert all(peer_ips(running[n], status.port) == ["10.244.1.7"] for n in nodes)

        endpoints = f"/apis/{G}/{V}/namespaces/{stack.namespace}/podendpoints"
        proxy.answer_next("GET", endpoints, 400, message="refused for this test")
        await stack.handle(sgc).signal(PEERS_CHANGED)

        async def list_refused() -> bool:
            return any(r.status == 400 for r in proxy.sent("GET", endpoints))

        await wait_for(list_refused, what="the refused list")
        await wait_for(
            lambda: pass_settled(stack, sgc), what="the peer pass after the refused list"
        )
        # No sync of an empty set: every node still carries the pod.
        assert all(peer_ips(running[n], status.port) == ["10.244.1.7"] for n in nodes)
        assert await scheduled(stack, sgc, node_io.SYNC_NODE_PEERS) == 0
        await stack.record("nodes_peers_unlisted_kept", sgc)


async def pass_settled(stack: Stack, sgc: SgcRef) -> bool:
    """The workflow waits again (a timer started) after the last signal it got."""
    events = (await stack.handle(sgc).fetch_history()).events
    signalled = [i for i, e in enumerate(events) if e.event_type == SIGNALED]
    return bool(signalled) and any(e.event_type == TIMER for e in events[signalled[-1] :])


SIGNALED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
TIMER = EventType.EVENT_TYPE_TIMER_STARTED


async def test_under_peer_churn_a_run_continues_as_new_before_its_history_grows_large(
    stack: Stack, agent_kube: ApiClient, tmp_path: Path
) -> None:
    """Every peer pass records the whole peer set; the run continues as new at about 1.5 MB
    (gateway_config.HISTORY_BYTES_LIMIT), not at the server's 4 MB suggestion."""
    nodes = node_names(stack)
    async with agents(stack, agent_kube, tmp_path, nodes) as running:
        spec = stack.vmss_spec()
        sgc = await stack.create_sgc("churn", spec)
        status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))
        assert status.phase == "Ready", status.message
        limit = asyncio.Semaphore(16)

        async def pod(n: int) -> None:
            key = to_base64(public_key_of(generate_private_key()))
            async with limit:
                await create_pod_endpoint(
                    stack, f"pod-{n}", "churn", f"10.244.{n // 200}.{n % 200 + 1}/32", key
                )

        await asyncio.gather(*(pod(n) for n in range(500)))
        handle = stack.handle(sgc)
        first_run = (await handle.describe()).run_id

        async def passes() -> int:
            return await scheduled(stack, sgc, node_io.SYNC_NODE_PEERS)

        for _ in range(40):  # a pass per signal, each recording the 500 peers three times
            if (await handle.describe()).run_id != first_run:
                break
            done = await passes()
            await handle.signal(PEERS_CHANGED)

            async def passed(before: int = done) -> bool:
                described = await handle.describe()
                return described.run_id != first_run or await passes() > before

            await wait_for(passed, what="a peer pass")
        described = await handle.describe()
        assert described.run_id != first_run, "still the first run after 40 peer passes"
        first = await stack.client.get_workflow_handle(handle.id, run_id=first_run).describe()
        assert first.raw_description.workflow_execution_info.history_size_bytes < 2_500_000
        assert all(len(running[n].dataplane.peers(status.port)) == 500 for n in nodes)
        await histories.record(
            stack.client,
            "nodes_peer_churn_history_limit",
            {"config": handle.id},
            {"config": first_run},
        )
