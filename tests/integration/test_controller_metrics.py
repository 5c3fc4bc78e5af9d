"""`egressgw controller`'s /metrics as Prometheus scrapes it: ARM calls counted by operation and
status, reconcile passes timed and failures counted under kube-egress-gateway's names, a drift
repair counted, and Temporal's own worker metrics beside them; the values move as the
controller works."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from azure.mgmt.compute.aio import ComputeManagementClient

from contracts import resource_names
from tests.fixtures.controller_stack import ControllerStack
from tests.fixtures.metrics_scrape import Scrape, scrape
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow

LB_PUT = "PUT Microsoft.Network/loadBalancers"
VMSS_GET = "GET Microsoft.Compute/virtualMachineScaleSets"


async def scraped_until(
    port: int, check: Callable[[Scrape], bool], what: str, timeout: float = 60
) -> Scrape:
    seen: dict[str, Scrape] = {}

    async def done() -> bool:
        seen["last"] = await scrape(port)
        return check(seen["last"])

    await wait_for(done, timeout, what)
    return seen["last"]


async def strip_ip_config(
    stack: ControllerStack, compute: ComputeManagementClient, uid: str
) -> None:
    """Someone updates the scale set model without our ipConfig (a node image upgrade)."""
    ours = resource_names.managed_resource_name(uid)
    rg, name = stack.topology.resource_group, stack.topology.vmss_pools[0].vmss_name
    vmss = await compute.virtual_machine_scale_sets.get(rg, name)
    profile = vmss.virtual_machine_profile
    assert profile is not None and profile.network_profile is not None
    for nic in profile.network_profile.network_interface_configurations or []:
        nic.ip_configurations = [ip for ip in nic.ip_configurations if ip.name != ours]
    await (await compute.virtual_machine_scale_sets.begin_create_or_update(rg, name, vmss)).result()


async def test_controller_metrics_count_arm_calls_reconciles_failures_and_repairs(
    controller_stack: ControllerStack,
    async_compute_client: Callable[..., Awaitable[ComputeManagementClient]],
) -> None:
    stack = controller_stack
    stack.drift_check = "2s"
    controller = await stack.start_controller()
    port = controller.metrics_port
    namespace = stack.namespace
    before = await scrape(port)
    assert before.value("controller_reconcile_latency_count", namespace=namespace) == 0

    uid = await stack.create_sgc("metered")
    await stack.wait_ready("metered")
    ready = await scraped_until(
        port,
        lambda s: s.value("controller_reconcile_latency_count", namespace=namespace) >= 1,
        "a reconcile pass observed",
    )

    # ARM calls by operation and status (the load balancer PUT answered 2xx).
    lb_puts = [
        s for s in ready.matching("egressgw_arm_requests_total") if s.labels["operation"] == LB_PUT
    ]
    assert lb_puts and all(s.labels["status"].startswith("2") for s in lb_puts), lb_puts
    assert ready.value("egressgw_arm_requests_total", operation=VMSS_GET) >= 1
    assert ready.value("egressgw_arm_request_duration_seconds_count", operation=LB_PUT) >= 1
    # No resource name or ID in an operation label.
    assert all(
        "/subscriptions/" not in s.labels["operation"] and uid not in s.labels["operation"]
        for s in ready.matching("egressgw_arm_requests_total")
    )
    # The reconcile pass, under upstream's name and labels, with upstream's buckets.
    labels: dict[str, Any] = {
        "namespace": namespace,
        "operation": "reconcile_static_gateway_configuration",
        "subscription_id": stack.topology.subscription_id,
        "resource_group": stack.topology.resource_group,
    }
    assert ready.value("controller_reconcile_latency_count", **labels) >= 1
    assert ready.value("controller_reconcile_latency_sum", **labels) > 0
    assert ready.value("controller_reconcile_latency_bucket", le="1200.0", **labels) >= 1
    assert ready.types["controller_reconcile_latency"] == "histogram"
    # Temporal's worker metrics of the same process.
    assert ready.value("temporal_workflow_task_execution_latency_count") > 0
    assert ready.value("temporal_activity_execution_latency_count") > 0

    # Drift: the ipConfig stripped out of band is put back, and counted.
    await strip_ip_config(stack, await async_compute_client(), uid)
    # The repair is counted when the pass finds it, the pass's latency when the pass ends.
    passes_before = ready.value("controller_reconcile_latency_count", **labels)
    await scraped_until(
        port,
        lambda s: (
            s.value("egressgw_drift_repairs_total", namespace=namespace, part="gateway_pool") >= 1
            and s.value("controller_reconcile_latency_count", **labels) > passes_before
        ),
        "a drift repair counted, and the pass that made it",
    )

    # A configuration on a scale set that does not exist: ARM's 404 and the failed pass.
    spec = stack.vmss_spec()
    spec["gatewayVmssProfile"]["vmssName"] = "no-such-scale-set"
    await stack.create_sgc("broken", spec)
    failed = await scraped_until(
        port,
        lambda s: s.value("controller_reconcile_fail_count", resource=f"{namespace}/broken") >= 1,
        "the failed pass counted",
    )
    assert failed.value("egressgw_arm_requests_total", operation=VMSS_GET, status="404") >= 1
    assert failed.value("controller_reconcile_fail_count", resource=f"{namespace}/metered") == 0
    # Upstream's counter name is kept as it is (no _total added).
    assert "controller_reconcile_fail_count_total" not in failed.names()

    # Deletion is a pass of its own operation.
    await stack.delete_sgc("metered")
    await stack.wait_gone("metered")
    await scraped_until(
        port,
        lambda s: (
            s.value(
                "controller_reconcile_latency_count",
                namespace=namespace,
                operation="delete_static_gateway_configuration",
            )
            >= 1
        ),
        "the deletion pass observed",
    )


async def test_nodes_whose_agent_never_picks_up_work_are_counted_by_node(
    controller_stack: ControllerStack,
) -> None:
    stack = controller_stack
    controller = await stack.start_controller(
        flags=("--configure-nodes", "--node-answer-timeout", "1s")
    )
    await stack.create_sgc("agentless")
    pool = stack.topology.vmss_pools[0]
    nodes = {pool.computer_name(i) for i in range(pool.instance_count)}

    counted = await scraped_until(
        controller.metrics_port,
        lambda s: (
            {x.labels["node"] for x in s.matching("egressgw_node_schedule_to_start_failures_total")}
            >= nodes
        ),
        "schedule-to-start failures of every gateway node",
    )
    assert {
        x.labels["node"] for x in counted.matching("egressgw_node_schedule_to_start_failures_total")
    } == nodes
