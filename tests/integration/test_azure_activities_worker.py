"""The Azure activities on a real worker against the Temporal dev server: registered under their
contract names, and their classified errors steering the server's retries (a throttled call is
retried and converges; a refused one fails the workflow after one attempt with Azure's text)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient
from temporalio import workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.azure.catalog import azure_activities
from contracts import activity_io, resource_names
from contracts.activity_io import ApplyLoadBalancerInput, ApplyLoadBalancerResult, LoadBalancerRule
from contracts.azure_state import AzureScope
from egressgw.dev.temporal_server import TemporalDevServer
from sim.arm.server import ArmEmulator
from sim.topology import Topology

AsyncNet = Callable[..., Awaitable[NetworkManagementClient]]
AsyncCompute = Callable[..., Awaitable[ComputeManagementClient]]
UID = "6a0c2d4e-0000-4000-8000-000000000001"
POOL = "6a0c2d4e-ffff-4000-8000-00000000000f"


@workflow.defn(name="test-apply-load-balancer")
class ApplyLoadBalancerOnce:
    """Calls the activity by name, as LoadBalancerWorkflow does, with a bounded retry policy."""

    @workflow.run
    async def run(self, data: ApplyLoadBalancerInput) -> ApplyLoadBalancerResult:
        result: ApplyLoadBalancerResult = await workflow.execute_activity(
            activity_io.APPLY_LOAD_BALANCER,
            data,
            result_type=ApplyLoadBalancerResult,
            activity_id="lb/test",
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100), maximum_attempts=5
            ),
        )
        return result


def _input(t: Topology, subnet: str | None = None) -> ApplyLoadBalancerInput:
    scope = AzureScope(
        subscription_id=t.subscription_id,
        location=t.location,
        resource_group=t.resource_group,
        load_balancer_resource_group=t.resource_group,
        load_balancer_name=resource_names.DEFAULT_LOAD_BALANCER_NAME,
        vnet_resource_group=t.resource_group,
        vnet_name=t.vnet_name,
        subnet_name=subnet or t.gateway_subnet_name,
    )
    return ApplyLoadBalancerInput(scope, (LoadBalancerRule(UID, POOL, f"/gw/{UID}"),))


@pytest.fixture
async def worker_client(
    temporal_server: TemporalDevServer,
    async_network_client: AsyncNet,
    async_compute_client: AsyncCompute,
) -> AsyncIterator[tuple[Client, str]]:
    client = await Client.connect(temporal_server.address)
    queue = f"azure-activities-{uuid.uuid4().hex[:8]}"
    network = await async_network_client(retry_total=0)
    compute = await async_compute_client(retry_total=0)
    async with Worker(
        client,
        task_queue=queue,
        workflows=[ApplyLoadBalancerOnce],
        activities=azure_activities(network, compute),
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        yield client, queue


async def _execute(client: Client, queue: str, data: ApplyLoadBalancerInput) -> Any:
    return await client.execute_workflow(
        ApplyLoadBalancerOnce.run,
        data,
        id=f"test-lb-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        execution_timeout=timedelta(seconds=60),
    )


async def test_throttled_calls_are_retried_by_the_server_until_they_converge(
    worker_client: tuple[Client, str], arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    client, queue = worker_client
    arm_emulator.faults.add(
        effect="throttle", method="GET", resource_type="loadBalancers", count=2, retry_after=1
    )
    result = await _execute(client, queue, _input(arm_topology))
    assert [(r.owner_uid, r.port) for r in result.rules] == [(UID, 6000)]
    # Two throttled attempts, then the one that read, planned and wrote.
    reads = [
        e.status
        for e in arm_emulator.request_log.entries
        if e.method == "GET" and (e.resource_type or "").endswith("loadBalancers")
    ]
    assert reads[:3] == [429, 429, 404]  # 404: no load balancer yet, so it is created
    assert arm_emulator.request_log.count("PUT", "loadBalancers") == 1


async def test_a_refusal_fails_after_one_attempt_with_azures_message(
    worker_client: tuple[Client, str], arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    client, queue = worker_client
    with pytest.raises(WorkflowFailureError) as failed:
        await _execute(client, queue, _input(arm_topology, subnet="no-such-subnet"))
    activity_error = failed.value.cause
    assert isinstance(activity_error, ActivityError)
    refusal = activity_error.cause
    assert isinstance(refusal, ApplicationError)
    assert refusal.type == "AzureInvalidResourceReference"
    assert refusal.non_retryable
    assert "no-such-subnet" in refusal.message
    assert arm_emulator.request_log.count("PUT", "loadBalancers") == 1
