"""The control plane survives losing its worker or its Temporal server in the middle of
provisioning: the configuration still becomes Ready, and Azure holds each resource once."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from azure.mgmt.network import NetworkManagementClient

from contracts import resource_names
from tests.fixtures.controller_stack import ControllerStack
from tests.fixtures.waiting import wait_for

VMSS = "virtualMachineScaleSets"
VMSS_INSTANCES = "virtualMachineScaleSets/virtualMachines"

pytestmark = pytest.mark.slow


async def wait_for_write(stack: ControllerStack, resource_type: str) -> None:
    """Until the emulator has accepted a PUT of `resource_type`: its operation is now running,
    and the activity that sent it is polling."""

    async def seen() -> bool:
        return stack.arm.request_log.count("PUT", resource_type) > 0

    await wait_for(seen, 60, f"a PUT of {resource_type}", every=0.05)


def assert_provisioned_once(
    stack: ControllerStack, uid: str, network: NetworkManagementClient
) -> None:
    prefixes = [p.name for p in network.public_ip_prefixes.list(stack.topology.resource_group)]
    assert prefixes == [resource_names.managed_resource_name(uid)]
    lb = stack.load_balancer()
    assert lb is not None
    assert [r["name"] for r in lb["properties"]["loadBalancingRules"]] == [uid]
    assert [p["name"] for p in lb["properties"]["probes"]] == [uid]
    assert len(lb["properties"]["frontendIPConfigurations"]) == 1
    assert stack.vmss_ip_config_names().count(resource_names.managed_resource_name(uid)) == 1
    assert stack.arm.request_log.count("PUT", "publicIPPrefixes") == 1


async def test_worker_killed_during_an_activity_converges_without_duplicates(
    controller_stack: ControllerStack, network_client: Callable[..., NetworkManagementClient]
) -> None:
    stack = controller_stack
    stack.arm.set_latency({f"PUT {VMSS}": 3.0})
    first = await stack.start_controller("first")
    uid = await stack.create_sgc("crash")
    await wait_for_write(stack, VMSS)

    first.kill()
    second = await stack.start_controller("second")
    obj = await stack.wait_ready("crash", timeout=150)

    assert obj["status"]["egressIpPrefix"]
    assert_provisioned_once(stack, uid, network_client())
    # The interrupted model update was waited for, not sent again.
    assert stack.arm.request_log.count("PUT", VMSS) == 1, stack.logs()
    assert await second.stop() == 0


async def test_temporal_server_restarted_mid_run_converges(
    controller_stack: ControllerStack, network_client: Callable[..., NetworkManagementClient]
) -> None:
    stack = controller_stack
    stack.arm.set_latency({f"PUT {VMSS_INSTANCES}": 2.0})
    controller = await stack.start_controller()
    uid = await stack.create_sgc("restart")
    await wait_for_write(stack, VMSS_INSTANCES)

    await stack.temporal.stop()
    await stack.temporal.start()  # same SQLite file: the workflows' histories are all there
    obj = await stack.wait_ready("restart", timeout=150)

    assert obj["status"]["egressIpPrefix"]
    assert_provisioned_once(stack, uid, network_client())
    assert controller.process is not None and controller.process.poll() is None
    assert await controller.stop() == 0
