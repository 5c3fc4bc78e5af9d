"""The emulator's HTTP control API (/_emulator/...) as the dev stack and other processes use it,
plus conflicts between a scale set and its instances while an operation runs."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient

from sim.arm.server import ArmEmulator
from sim.topology import Topology


@pytest.fixture
async def control(arm_emulator: ArmEmulator) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """control(method, path, json=None) -> (status, parsed body or None)."""
    tls = ssl.create_default_context(cafile=str(arm_emulator.ca_path))
    async with aiohttp.ClientSession() as session:

        async def call(method: str, path: str, json: Any = None) -> tuple[int, Any]:
            async with session.request(
                method, f"{arm_emulator.url}/_emulator/{path}", json=json, ssl=tls
            ) as resp:
                text = await resp.text()
                return resp.status, (await resp.json() if text else None)

        yield call


async def test_faults_over_http(
    control: Callable[..., Awaitable[Any]],
    async_network_client: Callable[..., Awaitable[NetworkManagementClient]],
    arm_topology: Topology,
) -> None:
    status, rule = await control(
        "POST",
        "faults",
        {"effect": "error", "status": 500, "resource_type": "virtualNetworks", "count": 1},
    )
    assert status == 201 and rule["count"] == 1
    status, listed = await control("GET", "faults")
    assert [r["id"] for r in listed["value"]] == [rule["id"]]
    net = await async_network_client(retry_total=0)
    with pytest.raises(HttpResponseError) as err:
        await net.virtual_networks.get(arm_topology.resource_group, arm_topology.vnet_name)
    assert err.value.status_code == 500
    status, listed = await control("GET", "faults")
    assert listed["value"][0]["hits"] == 1 and listed["value"][0]["count"] == 0
    await control("POST", "faults", {"effect": "throttle", "retry_after": 3})
    assert (await control("DELETE", "faults"))[0] == 204
    assert (await control("GET", "faults"))[1]["value"] == []
    assert (await control("POST", "faults", {"effect": "nonsense"}))[0] == 400
    vnet = await net.virtual_networks.get(arm_topology.resource_group, arm_topology.vnet_name)
    assert vnet.name == arm_topology.vnet_name


async def test_request_log_over_http(
    control: Callable[..., Awaitable[Any]],
    async_network_client: Callable[..., Awaitable[NetworkManagementClient]],
    arm_topology: Topology,
) -> None:
    net = await async_network_client()
    await net.virtual_networks.get(arm_topology.resource_group, arm_topology.vnet_name)
    status, log = await control("GET", "requests")
    assert status == 200
    (entry,) = log["value"]  # the control calls themselves are not logged
    assert entry["method"] == "GET"
    assert entry["resource_type"] == "Microsoft.Network/virtualNetworks"
    assert entry["api_version"] == "2026-03-01"
    assert entry["status"] == 200
    assert (await control("DELETE", "requests"))[0] == 204
    assert (await control("GET", "requests"))[1]["value"] == []


async def test_latency_and_provisioning_state_over_http(
    control: Callable[..., Awaitable[Any]],
    async_compute_client: Callable[..., Awaitable[ComputeManagementClient]],
    arm_topology: Topology,
) -> None:
    rg, vmss_name = arm_topology.resource_group, arm_topology.vmss_pools[0].vmss_name
    status, latency = await control(
        "PUT", "latency", {"PUT virtualMachineScaleSets/virtualMachines": 1.0}
    )
    assert status == 200 and latency == {"PUT virtualMachineScaleSets/virtualMachines": 1.0}
    cmp = await async_compute_client()
    vm = await cmp.virtual_machine_scale_set_vms.get(rg, vmss_name, "0")
    poller = await cmp.virtual_machine_scale_set_vms.begin_update(rg, vmss_name, "0", vm)
    # While the instance update runs, the scale set model cannot be written.
    vmss = await cmp.virtual_machine_scale_sets.get(rg, vmss_name)
    with pytest.raises(HttpResponseError) as err:
        await cmp.virtual_machine_scale_sets.begin_create_or_update(rg, vmss_name, vmss)
    assert err.value.status_code == 409
    assert err.value.error.code == "AnotherOperationInProgress"
    assert (await poller.result()).provisioning_state == "Succeeded"
    status, body = await control(
        "POST", "provisioning-state", {"resourceId": vm.id, "provisioningState": "Failed"}
    )
    assert status == 200 and body["properties"]["provisioningState"] == "Failed"
    again = await cmp.virtual_machine_scale_set_vms.get(rg, vmss_name, "0")
    assert again.provisioning_state == "Failed"
    missing = {"resourceId": vm.id + "9", "provisioningState": "Failed"}
    assert (await control("POST", "provisioning-state", missing))[0] == 404


async def test_if_none_match_and_resource_group_delete(
    async_compute_client: Callable[..., Awaitable[ComputeManagementClient]],
    async_network_client: Callable[..., Awaitable[NetworkManagementClient]],
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
) -> None:
    rg, vmss_name = arm_topology.resource_group, arm_topology.vmss_pools[0].vmss_name
    cmp = await async_compute_client()
    vmss = await cmp.virtual_machine_scale_sets.get(rg, vmss_name)
    with pytest.raises(ResourceExistsError):
        await cmp.virtual_machine_scale_sets.begin_create_or_update(
            rg, vmss_name, vmss, match_condition=MatchConditions.IfMissing
        )
    net = await async_network_client()
    # Deleting the resource group (through the raw pipeline: resource groups live in another SDK)
    # takes everything in it along.
    tls = ssl.create_default_context(cafile=str(arm_emulator.ca_path))
    async with (
        aiohttp.ClientSession() as session,
        session.delete(
            f"{arm_emulator.url}{arm_topology.resource_group_id}?api-version=2021-04-01",
            headers={"Authorization": "Bearer t"},
            ssl=tls,
        ) as resp,
    ):
        assert resp.status == 202
        assert "Azure-AsyncOperation" in resp.headers
    with pytest.raises(ResourceNotFoundError) as err:
        await net.virtual_networks.get(rg, arm_topology.vnet_name)
    assert err.value.error.code == "ResourceGroupNotFound"
    assert list(arm_emulator.store) == []
