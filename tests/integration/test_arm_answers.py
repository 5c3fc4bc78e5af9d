"""The emulator answers as ARM does, seen through the real azure-mgmt-* clients: an accepted
asynchronous write says Creating/Updating (also at zero latency), Retry-After is whole seconds,
and only api-versions the provider serves are accepted (the others with ARM's own errors)."""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline import PipelineResponse
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.network import NetworkManagementClient

from sim.arm import api_versions
from sim.arm.server import ArmEmulator
from sim.topology import Topology

NetFactory = Callable[..., NetworkManagementClient]
ComputeFactory = Callable[..., ComputeManagementClient]


class Exchanges:
    """Every response the SDK's pipeline saw (its raw_response_hook), in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int, dict[str, str], Any]] = []

    def __call__(self, response: PipelineResponse[Any, Any]) -> None:
        http = response.http_response
        request = http.request
        body: Any = None
        if http.read():  # LRO first answers arrive streamed; reading keeps them for the SDK
            body = http.json()
        headers = {k.lower(): v for k, v in http.headers.items()}
        self.seen.append((request.method, request.url, http.status_code, headers, body))

    def of(self, method: str) -> list[tuple[str, str, int, dict[str, str], Any]]:
        return [e for e in self.seen if e[0] == method]

    def retry_afters(self) -> list[str]:
        return [e[3]["retry-after"] for e in self.seen if "retry-after" in e[3]]


def _prefix_body(topology: Topology) -> dict[str, Any]:
    return {
        "location": topology.location,
        "sku": {"name": "Standard", "tier": "Regional"},
        "properties": {"prefixLength": 31, "publicIPAddressVersion": "IPv4"},
    }


@pytest.mark.parametrize("latency", [0.0, 1.5])
def test_an_accepted_put_says_updating_with_its_operation_header(
    network_client: NetFactory, arm_emulator: ArmEmulator, arm_topology: Topology, latency: float
) -> None:
    arm_emulator.set_latency({"PUT publicIPPrefixes": latency})
    net = network_client()
    seen = Exchanges()
    prefix = net.public_ip_prefixes.begin_create_or_update(
        arm_topology.resource_group, "answers-prefix", _prefix_body(arm_topology),
        raw_response_hook=seen,
    ).result()  # fmt: skip

    (put,) = seen.of("PUT")
    _, _, status, headers, body = put
    assert status == 201
    assert body["properties"]["provisioningState"] == "Updating"
    assert "azure-asyncoperation" in headers
    assert prefix.provisioning_state == "Succeeded"
    assert all(re.fullmatch(r"\d+", value) for value in seen.retry_afters())


def test_a_new_scale_set_says_creating(
    compute_client: ComputeFactory, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    cmp = compute_client()
    pool = arm_topology.vmss_pools[0]
    vmss = cmp.virtual_machine_scale_sets.get(arm_topology.resource_group, pool.vmss_name)
    vmss.id = None
    seen = Exchanges()
    created = cmp.virtual_machine_scale_sets.begin_create_or_update(
        arm_topology.resource_group, "answers-vmss", vmss, raw_response_hook=seen
    ).result()

    (put,) = seen.of("PUT")
    assert put[4]["properties"]["provisioningState"] == "Creating"
    assert "azure-asyncoperation" in put[3]
    assert created.provisioning_state == "Succeeded"


def test_a_delete_lro_completes_with_whole_second_retry_after(
    network_client: NetFactory, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    net = network_client()
    rg = arm_topology.resource_group
    net.public_ip_prefixes.begin_create_or_update(
        rg, "answers-gone", _prefix_body(arm_topology)
    ).result()
    arm_emulator.set_latency({"DELETE publicIPPrefixes": 1.5})
    seen = Exchanges()

    net.public_ip_prefixes.begin_delete(rg, "answers-gone", raw_response_hook=seen).result()

    (delete,) = seen.of("DELETE")
    assert delete[2] == 202
    assert {"location", "azure-asyncoperation", "retry-after"} <= set(delete[3])
    hints = seen.retry_afters()
    assert hints and all(re.fullmatch(r"\d+", value) for value in hints)
    assert int(hints[0]) >= 1  # the operation was still running when it was accepted
    prefixes = [p.name for p in net.public_ip_prefixes.list(rg)]
    assert "answers-gone" not in prefixes


def test_the_pinned_sdks_versions_are_served(
    network_client: NetFactory,
    compute_client: ComputeFactory,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
) -> None:
    """The versions azure-mgmt-network and azure-mgmt-compute send, scale set NICs included
    (2018-10-01), on the calls egressgw makes."""
    net, cmp = network_client(), compute_client()
    rg, pool = arm_topology.resource_group, arm_topology.vmss_pools[0]
    list(net.load_balancers.list(rg))
    list(net.public_ip_prefixes.list(rg))
    list(net.network_interfaces.list_virtual_machine_scale_set_network_interfaces(
        rg, pool.vmss_name
    ))  # fmt: skip
    cmp.virtual_machine_scale_sets.get(rg, pool.vmss_name)
    list(cmp.virtual_machine_scale_set_vms.list(rg, pool.vmss_name))

    versions = {(e.resource_type, e.api_version) for e in arm_emulator.request_log.entries}
    assert all(e.status == 200 for e in arm_emulator.request_log.entries)
    assert ("Microsoft.Network/loadBalancers", "2026-03-01") in versions
    assert ("Microsoft.Compute/virtualMachineScaleSets", "2026-04-01") in versions
    assert ("Microsoft.Compute/virtualMachineScaleSets/networkInterfaces", "2018-10-01") in versions


def _installed_versions(package: str) -> set[str]:
    """Every api-version the installed SDK package can send."""
    module = __import__(f"azure.mgmt.{package}", fromlist=["_configuration"])
    root = Path(module.__file__ or "").parent
    found: set[str] = set()
    for path in [root / "_configuration.py", *(root / "operations").glob("*.py")]:
        found |= set(re.findall(r"\"(\d{4}-\d{2}-\d{2}(?:-preview)?)\"", path.read_text()))
    return found


def test_the_table_holds_every_version_the_pinned_network_sdk_knows() -> None:
    served = set(api_versions.NETWORK) | set(api_versions.SCALE_SET_NETWORK)
    assert _installed_versions("network") - served == set()


def test_the_table_holds_the_pinned_compute_sdks_scale_set_versions() -> None:
    # Compute's package also covers disks and galleries (other version series, not emulated).
    text = (Path(__import__("azure.mgmt.compute").mgmt.compute.__file__).parent
            / "operations" / "_operations.py").read_text()  # fmt: skip
    scale_set_lists = re.findall(
        r"api_versions_list=\[([^\]]*\"2026-04-01\"[^\]]*)\]", text
    )  # the series that ends in the package's default, 2026-04-01
    listed = {v for group in scale_set_lists for v in re.findall(r"\"([\d-]+)\"", group)}
    assert listed and listed - set(api_versions.COMPUTE) == set()


@pytest.fixture
def tls(arm_emulator: ArmEmulator) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(arm_emulator.ca_path))


async def _get(arm_emulator: ArmEmulator, tls: ssl.SSLContext, path: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            arm_emulator.url + path, headers={"Authorization": "Bearer t"}, ssl=tls
        ) as resp,
    ):
        return resp.status, await resp.json()


@pytest.mark.parametrize(
    ("type_path", "version"),
    [
        ("Microsoft.Network/loadBalancers", "2025-05-01"),
        ("Microsoft.Network/publicIPPrefixes", "2018-07-01"),
        ("Microsoft.Compute/virtualMachineScaleSets", "2025-04-01"),
        ("Microsoft.Compute/virtualMachineScaleSets", "2026-04-01"),
    ],
)
async def test_other_current_sdks_versions_are_served(
    arm_emulator: ArmEmulator,
    tls: ssl.SSLContext,
    arm_topology: Topology,
    type_path: str,
    version: str,
) -> None:
    path = f"{arm_topology.resource_group_id}/providers/{type_path}?api-version={version}"
    status, body = await _get(arm_emulator, tls, path)
    assert status == 200, body
    assert isinstance(body["value"], list)


async def test_a_version_the_provider_does_not_serve_is_no_registered_provider(
    arm_emulator: ArmEmulator, tls: ssl.SSLContext, arm_topology: Topology
) -> None:
    pool = arm_topology.vmss_pools[0]
    # A network version on scale set NICs: what Go's armnetwork v1.0 ran into.
    path = (
        f"{arm_topology.resource_group_id}/providers/Microsoft.Compute/virtualMachineScaleSets/"
        f"{pool.vmss_name}/networkInterfaces?api-version=2025-05-01"
    )
    status, body = await _get(arm_emulator, tls, path)

    assert status == 400
    assert body["error"]["code"] == "NoRegisteredProviderFound"
    message = body["error"]["message"]
    assert message.startswith(
        f"No registered resource provider found for location '{arm_topology.location}' and "
        "API version '2025-05-01' for type 'virtualMachineScaleSets/networkInterfaces'."
    )
    assert "2018-10-01" in message and "The supported locations are" in message
    # Refused before the provider saw it: no operation, nothing logged as served.
    assert [e.status for e in arm_emulator.request_log.entries] == [400]


async def test_prefixes_predate_nothing_before_2018_07_01(
    arm_emulator: ArmEmulator, tls: ssl.SSLContext, arm_topology: Topology
) -> None:
    path = (
        f"{arm_topology.resource_group_id}/providers/Microsoft.Network/publicIPPrefixes"
        "?api-version=2018-06-01"
    )
    status, body = await _get(arm_emulator, tls, path)
    assert (status, body["error"]["code"]) == (400, "NoRegisteredProviderFound")
    assert "for type 'publicIPPrefixes'" in body["error"]["message"]


@pytest.mark.parametrize("version", ["1999-01-01", "2021-04-01-beta", "yesterday"])
async def test_arms_own_types_answer_invalid_api_version(
    arm_emulator: ArmEmulator, tls: ssl.SSLContext, arm_topology: Topology, version: str
) -> None:
    status, body = await _get(
        arm_emulator, tls, f"{arm_topology.resource_group_id}?api-version={version}"
    )
    assert (status, body["error"]["code"]) == (400, "InvalidApiVersionParameter")
    message = body["error"]["message"]
    assert message.startswith(f"The api-version '{version}' is invalid. The supported versions")
    assert "'2025-04-01,2024-11-01," in message  # newest first, as ARM lists them


def test_the_sdk_surfaces_the_refusal(network_client: NetFactory, arm_topology: Topology) -> None:
    net = network_client()
    with pytest.raises(HttpResponseError) as err:
        net.load_balancers.list(arm_topology.resource_group, api_version="2099-01-01").next()
    assert err.value.status_code == 400
    assert err.value.error is not None and err.value.error.code == "NoRegisteredProviderFound"
