"""The IMDS stand-in's instance and load balancer documents, read over HTTP the way the gateway
agent (and the Go implementation's pkg/imds) reads them."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from sim.imds import ImdsEmulator, InstanceMetadata, LoadBalancerFrontend
from sim.topology import Topology

HEADERS = {"Metadata": "true"}


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def test_instance_document_describes_the_vmss_instance(
    imds: ImdsEmulator, arm_topology: Topology
) -> None:
    status, body = await get(f"{imds.url}/metadata/instance?api-version=2021-10-01", HEADERS)
    assert status == 200
    compute = body["compute"]
    pool = arm_topology.vmss_pools[0]
    assert compute["osProfile"]["computerName"] == pool.computer_name(0)
    assert compute["vmScaleSetName"] == pool.vmss_name
    assert compute["resourceGroupName"] == arm_topology.resource_group
    assert compute["tags"] == f"aks-managed-poolName:{pool.pool_name}"
    assert compute["resourceId"].endswith(
        f"/virtualMachineScaleSets/{pool.vmss_name}/virtualMachines/0"
    )
    subnet = body["network"]["interface"][0]["ipv4"]["subnet"][0]
    assert subnet == {"address": "10.224.0.0", "prefix": "16"}


async def test_sub_paths_and_text_format(imds: ImdsEmulator) -> None:
    base = f"{imds.url}/metadata/instance"
    status, text = await get(
        f"{base}/compute/osProfile/computerName?api-version=2021-10-01&format=text", HEADERS
    )
    assert (status, text) == (200, imds.instance.computer_name)
    status, subnet = await get(
        f"{base}/network/interface/0/ipv4/subnet/0?api-version=2021-10-01", HEADERS
    )
    assert (status, subnet["prefix"]) == (200, "16")
    status, _ = await get(f"{base}/compute/nope?api-version=2021-10-01", HEADERS)
    assert status == 404


@pytest.mark.parametrize(
    ("path", "headers", "fragment"),
    [
        ("/metadata/instance?api-version=2021-10-01", {}, "metadata header"),
        ("/metadata/instance", HEADERS, "api-version"),
        ("/metadata/identity/oauth2/token?api-version=2018-02-01", HEADERS, "audience"),
        (
            "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://x",
            {"Metadata": "false"},
            "metadata header",
        ),
    ],
)
async def test_requests_the_real_service_refuses_are_refused(
    imds: ImdsEmulator, path: str, headers: dict[str, str], fragment: str
) -> None:
    status, body = await get(imds.url + path, headers)
    assert status == 400
    assert fragment in body["error_description"]


async def test_tags_with_several_entries_and_the_load_balancer_document() -> None:
    instance = InstanceMetadata(
        computer_name="aks-gwvmpool-0",
        tags={"aks-managed-poolName": "gwvmpool", "aks-managed-nic-name": "aks-gwvmpool-0-nic"},
        load_balancer_frontends=(LoadBalancerFrontend("10.225.0.4", "10.224.0.5"),),
    )
    async with ImdsEmulator(instance=instance, system_assigned=False) as imds:
        _, body = await get(f"{imds.url}/metadata/instance?api-version=2021-10-01", HEADERS)
        assert body["compute"]["tags"] == (
            "aks-managed-poolName:gwvmpool;aks-managed-nic-name:aks-gwvmpool-0-nic"
        )
        assert body["compute"]["resourceId"].endswith("/virtualMachines/aks-gwvmpool-0")
        _, lb = await get(f"{imds.url}/metadata/loadbalancer?api-version=2020-10-01", HEADERS)
        assert lb["loadbalancer"]["publicIpAddresses"] == [
            {"frontendIpAddress": "10.225.0.4", "privateIpAddress": "10.224.0.5"}
        ]
        # No identity at all: a token request is refused the way IMDS refuses it.
        status, error = await get(
            f"{imds.url}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://x",
            HEADERS,
        )
        assert (status, error["error_description"]) == (400, "Identity not found")
