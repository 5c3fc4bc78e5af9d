"""Continue-as-new on a Temporal dev server that suggests it after a few dozen events: every
workflow carries its state into the next run, so a later spec change and the deletion still
act on everything the earlier runs created."""

from __future__ import annotations

import sysconfig
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient
from kubernetes_asyncio.client import ApiClient
from temporalio.testing import WorkflowEnvironment

from activities.temporal.single_writers import load_balancer_workflow_id
from agent.wireguard_keys import generate_private_key, public_key_of, to_base64
from contracts import resource_names, search_attributes
from contracts.workflow_io import PEERS_CHANGED, SpecDelivery
from sim.arm.server import ArmEmulator
from sim.topology import Topology
from tests.fixtures import histories
from tests.fixtures.dry_run_agents import agents, create_pod_endpoint, node_names
from tests.fixtures.waiting import wait_for
from tests.fixtures.workflow_stack import Stack, StackKube, StackOptions, make_stack

TEMPORAL_CLI = Path(sysconfig.get_path("scripts")) / "temporal"


@pytest.fixture(scope="module")
async def eager_server() -> AsyncIterator[WorkflowEnvironment]:
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_CLI),  # never download
        ip="127.0.0.1",
        search_attributes=list(search_attributes.ALL),
        dev_server_extra_args=[
            "--dynamic-config-value",
            "limit.historyCount.suggestContinueAsNew=20",
        ],
    ) as env:
        yield env


@pytest.fixture
async def stack(
    eager_server: WorkflowEnvironment,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
    stack_kube: StackKube,
    async_network_client: Callable[..., Awaitable[NetworkManagementClient]],
    async_compute_client: Callable[..., Awaitable[ComputeManagementClient]],
    stack_options: StackOptions,
) -> AsyncIterator[Stack]:
    address = eager_server.client.service_client.config.target_host
    async for made in make_stack(
        address,
        arm_emulator,
        arm_topology,
        stack_kube,
        async_network_client,
        async_compute_client,
        stack_options,
    ):
        yield made


async def test_state_survives_continue_as_new(stack: Stack) -> None:
    spec = stack.vmss_spec()
    sgc = await stack.create_sgc("long-lived", spec)
    assert (await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))).phase == "Ready"
    private = stack.vmss_spec(provision_public_ips=False)
    second = await stack.apply(SpecDelivery(sgc=sgc, generation=2, spec=private))
    assert second.phase == "Ready", second.message
    assert stack.prefix(sgc.uid) is None  # the carried record still knew the managed prefix

    config_id = resource_names.gateway_config_workflow_id(sgc.namespace, sgc.name)
    handle = stack.client.get_workflow_handle(config_id)
    description = await handle.describe()
    assert description.run_id != description.raw_description.workflow_execution_info.first_run_id
    pool_id = resource_names.gateway_pool_workflow_id(
        stack.topology.subscription_id, stack.topology.resource_group, stack.vmss_pool.vmss_name
    )
    for single_writer in (load_balancer_workflow_id(stack.settings.scope), pool_id):
        described = await stack.client.get_workflow_handle(single_writer).describe()
        assert described.run_id != described.raw_description.workflow_execution_info.first_run_id

    await stack.delete_sgc(sgc.name)
    await stack.deliver(SpecDelivery(sgc=sgc, generation=2, spec=private, deleting=True))
    final = await stack.client.get_workflow_handle(config_id).result()
    assert final["phase"] == "Deleted"
    assert stack.load_balancer() is None
    assert not any(n.startswith("egressgateway-") for n in stack.vmss_ip_config_names())
    assert await stack.get_sgc("long-lived") is None


@pytest.mark.parametrize(
    "stack_options",
    [StackOptions(batch_quiet=timedelta(0), configure_nodes=True, node_answer_timeout_seconds=3)],
)
async def test_peers_after_continue_as_new_leave_azure_alone(
    stack: Stack, agent_kube: ApiClient, tmp_path: Path
) -> None:
    nodes = node_names(stack)
    async with agents(stack, agent_kube, tmp_path, nodes) as running:
        spec = stack.vmss_spec()
        sgc = await stack.create_sgc("renewed", spec)
        status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))
        assert status.phase == "Ready", status.message
        handle = stack.handle(sgc)

        async def continued() -> bool:
            described = await handle.describe()
            first = described.raw_description.workflow_execution_info.first_run_id
            return described.run_id != first

        await wait_for(continued, what="the first pass's run to continue as new")
        renewed_run = (await handle.describe()).run_id
        azure_requests = len(stack.arm.request_log.entries)

        key = to_base64(public_key_of(generate_private_key()))
        await create_pod_endpoint(stack, "pod-a", "renewed", "10.244.1.7/32", key)
        await handle.signal(PEERS_CHANGED)

        async def everywhere() -> bool:
            return all(
                [str(p.allowed_ip) for p in running[n].dataplane.peers(status.port)]
                == ["10.244.1.7"]
                for n in nodes
            )

        await wait_for(everywhere, what="the pod on every node")
        # A node pass: the new run did not go through Azure again to reach the nodes.
        assert len(stack.arm.request_log.entries) == azure_requests
        # That run's node pass grew its history past the limit: it has continued as new again.
        await histories.record(
            stack.client,
            "nodes_peers_after_continue_as_new",
            {"config": handle.id},
            {"config": renewed_run},
        )


@pytest.mark.parametrize(
    "stack_options",
    [StackOptions(batch_quiet=timedelta(0), configure_nodes=True, node_answer_timeout_seconds=3)],
)
async def test_peers_changed_during_the_last_pass_of_a_run_are_synced_by_the_next(
    stack: Stack, agent_kube: ApiClient, tmp_path: Path
) -> None:
    nodes = node_names(stack)
    async with agents(stack, agent_kube, tmp_path, nodes) as running:
        spec = stack.vmss_spec()
        sgc = await stack.create_sgc("carried", spec)
        status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))
        assert status.phase == "Ready", status.message
        handle = stack.handle(sgc)
        keys = [to_base64(public_key_of(generate_private_key())) for _ in range(2)]

        def peer_ips(node: str) -> list[str]:
            return [str(p.allowed_ip) for p in running[node].dataplane.peers(status.port)]

        async def run_id() -> str:
            return (await handle.describe()).run_id

        # The next peer pass is held on the first node until pod-b is created and signalled:
        # that pass then ends its run (its history is past the limit) with the signal unserved.
        first = running[nodes[0]].dataplane
        async with first._lock:  # the dry-run node's one-at-a-time lock, held from the test
            before = await run_id()
            await create_pod_endpoint(stack, "pod-a", "carried", "10.244.1.7/32", keys[0])
            await handle.signal(PEERS_CHANGED)

            async def sync_scheduled() -> bool:
                history = await handle.fetch_history()
                return any(
                    e.activity_task_scheduled_event_attributes.activity_type.name
                    == "node.sync_peers"
                    for e in history.events
                )

            await wait_for(sync_scheduled, what="the peer pass to reach the nodes")
            await create_pod_endpoint(stack, "pod-b", "carried", "10.244.1.8/32", keys[1])
            await handle.signal(PEERS_CHANGED)

        async def continued() -> bool:
            return await run_id() != before

        await wait_for(continued, what="the run to continue as new")

        async def both_everywhere() -> bool:
            return all(peer_ips(n) == ["10.244.1.7", "10.244.1.8"] for n in nodes)

        # No further signal: the new run knows from its input that peers changed.
        await wait_for(both_everywhere, what="pod-b on every node")
        # The run that began with the carried change, for the replay tests.
        runs = [run async for run in stack.client.list_workflows(f"WorkflowId = '{handle.id}'")]
        runs.sort(key=lambda run: run.start_time)
        (carried,) = [run for previous, run in pairwise(runs) if previous.run_id == before]
        await histories.record(
            stack.client,
            "nodes_peers_carried_over_continue_as_new",
            {"config": handle.id},
            {"config": carried.run_id},
        )
