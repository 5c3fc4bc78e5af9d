"""The Temporal dev server restarted in the middle of provisioning (same SQLite file): the
worker and the workflows pick up where they were and the configuration still becomes Ready,
with one of everything in Azure."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient

from contracts import resource_names
from contracts.workflow_io import SpecDelivery
from egressgw.dev.temporal_server import TemporalDevServer, TemporalServerSettings
from sim.arm.server import ArmEmulator
from sim.ports import free_port_block
from sim.topology import Topology
from tests.fixtures.sgc_status import condition
from tests.fixtures.waiting import wait_for
from tests.fixtures.workflow_stack import Stack, StackKube, StackOptions, make_stack


@pytest.fixture
async def own_server(tmp_path: Path) -> AsyncIterator[TemporalDevServer]:
    base = free_port_block(3, start=33000)
    server = TemporalDevServer(TemporalServerSettings.headless(tmp_path, base))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def stack(
    own_server: TemporalDevServer,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
    stack_kube: StackKube,
    async_network_client: Callable[..., Awaitable[NetworkManagementClient]],
    async_compute_client: Callable[..., Awaitable[ComputeManagementClient]],
) -> AsyncIterator[Stack]:
    async for made in make_stack(
        own_server.address,
        arm_emulator,
        arm_topology,
        stack_kube,
        async_network_client,
        async_compute_client,
        StackOptions(),
    ):
        yield made


async def test_server_restart_mid_provisioning_converges(
    stack: Stack, own_server: TemporalDevServer
) -> None:
    stack.arm.set_latency({"PUT virtualMachineScaleSets": 2.0})
    spec = stack.vmss_spec()
    sgc = await stack.create_sgc("restarted", spec)
    await stack.deliver(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    async def vmss_put_seen() -> bool:
        return stack.arm.request_log.count("PUT", "virtualMachineScaleSets") > 0

    await wait_for(vmss_put_seen, what="the VMSS model PUT")
    await own_server.stop()
    await own_server.start()

    async def ready() -> bool:
        obj = await stack.get_sgc("restarted")
        return obj is not None and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in obj.get("status", {}).get("conditions", [])
        )

    await wait_for(ready, timeout=90, what="Ready after the server restart")
    obj = await stack.get_sgc("restarted")
    assert obj is not None and condition(obj, "Degraded")["status"] == "False"
    lb = stack.load_balancer()
    assert lb is not None
    assert [r["name"] for r in lb["properties"]["loadBalancingRules"]] == [sgc.uid]
    names = [
        ip
        for ip in stack.vmss_ip_config_names()
        if ip.startswith(resource_names.MANAGED_RESOURCE_PREFIX)
    ]
    assert names == [resource_names.managed_resource_name(sgc.uid)]
