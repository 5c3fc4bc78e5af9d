"""The control plane survives losing its worker or its Temporal server in the middle of
provisioning: the configuration still becomes Ready, and Azure holds each resource once."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from azure.mgmt.network import NetworkManagementClient

from contracts import resource_names
from tests.e2e.control_plane import ControlPlane, wait_for

VMSS = "virtualMachineScaleSets"
VMSS_INSTANCES = "virtualMachineScaleSets/virtualMachines"

pytestmark = pytest.mark.slow


async def wait_for_write(plane: ControlPlane, resource_type: str) -> None:
    """Until the emulator has accepted a PUT of `resource_type`: its operation is now running,
    and the activity that sent it is polling."""

    async def seen() -> bool:
        return plane.arm.request_log.count("PUT", resource_type) > 0

    await wait_for(seen, 60, f"a PUT of {resource_type}", every=0.05)


def assert_provisioned_once(
    plane: ControlPlane, uid: str, network: NetworkManagementClient
) -> None:
    prefixes = [p.name for p in network.public_ip_prefixes.list(plane.topology.resource_group)]
    assert prefixes == [resource_names.managed_resource_name(uid)]
    lb = plane.load_balancer()
    assert lb is not None
    assert [r["name"] for r in lb["properties"]["loadBalancingRules"]] == [uid]
    assert [p["name"] for p in lb["properties"]["probes"]] == [uid]
    assert len(lb["properties"]["frontendIPConfigurations"]) == 1
    assert plane.vmss_ip_config_names().count(resource_names.managed_resource_name(uid)) == 1
    assert plane.arm.request_log.count("PUT", "publicIPPrefixes") == 1


async def test_worker_killed_during_an_activity_converges_without_duplicates(
    plane: ControlPlane, network_client: Callable[..., NetworkManagementClient]
) -> None:
    plane.arm.set_latency({f"PUT {VMSS}": 3.0})
    first = await plane.start_controller("first")
    uid = await plane.create_sgc("crash")
    await wait_for_write(plane, VMSS)

    first.kill()
    second = await plane.start_controller("second")
    obj = await plane.wait_ready("crash", timeout=150)

    assert obj["status"]["egressIpPrefix"]
    assert_provisioned_once(plane, uid, network_client())
    # The interrupted model update was waited for, not sent again.
    assert plane.arm.request_log.count("PUT", VMSS) == 1, plane.logs()
    assert await second.stop() == 0


async def test_temporal_server_restarted_mid_run_converges(
    plane: ControlPlane, network_client: Callable[..., NetworkManagementClient]
) -> None:
    plane.arm.set_latency({f"PUT {VMSS_INSTANCES}": 2.0})
    controller = await plane.start_controller()
    uid = await plane.create_sgc("restart")
    await wait_for_write(plane, VMSS_INSTANCES)

    await plane.temporal.stop()
    await plane.temporal.start()  # same SQLite file: the workflows' histories are all there
    obj = await plane.wait_ready("restart", timeout=150)

    assert obj["status"]["egressIpPrefix"]
    assert_provisioned_once(plane, uid, network_client())
    assert controller.process is not None and controller.process.poll() is None
    assert await controller.stop() == 0
