"""Raw ARM JSON, as GET returns it and PUT takes it: the parts the planners read and write.

Everything is `total=False` because ARM omits what is unset; fields not listed here pass through
the planners untouched (they copy whole documents and change only what they own).
"""

from __future__ import annotations

from typing import Any, TypedDict


class SubResourceJson(TypedDict):
    id: str


class FrontendIpPropertiesJson(TypedDict, total=False):
    privateIPAddress: str
    privateIPAllocationMethod: str
    privateIPAddressVersion: str
    subnet: SubResourceJson
    publicIPAddress: SubResourceJson


class FrontendIpConfigurationJson(TypedDict, total=False):
    name: str
    id: str
    properties: FrontendIpPropertiesJson


class BackendAddressPoolJson(TypedDict, total=False):
    name: str
    id: str
    properties: dict[str, Any]


class ProbePropertiesJson(TypedDict, total=False):
    protocol: str
    port: int
    requestPath: str
    intervalInSeconds: int
    probeThreshold: int
    numberOfProbes: int


class ProbeJson(TypedDict, total=False):
    name: str
    id: str
    properties: ProbePropertiesJson


class LoadBalancingRulePropertiesJson(TypedDict, total=False):
    protocol: str
    frontendPort: int
    backendPort: int
    enableFloatingIP: bool
    frontendIPConfiguration: SubResourceJson
    backendAddressPool: SubResourceJson
    backendAddressPools: list[SubResourceJson]
    probe: SubResourceJson


class LoadBalancingRuleJson(TypedDict, total=False):
    name: str
    id: str
    properties: LoadBalancingRulePropertiesJson


class LoadBalancerPropertiesJson(TypedDict, total=False):
    frontendIPConfigurations: list[FrontendIpConfigurationJson]
    backendAddressPools: list[BackendAddressPoolJson]
    probes: list[ProbeJson]
    loadBalancingRules: list[LoadBalancingRuleJson]
    inboundNatRules: list[dict[str, Any]]
    inboundNatPools: list[dict[str, Any]]
    outboundRules: list[dict[str, Any]]
    provisioningState: str


class LoadBalancerJson(TypedDict, total=False):
    id: str
    name: str
    location: str
    etag: str
    sku: dict[str, str]
    tags: dict[str, str]
    properties: LoadBalancerPropertiesJson


# --- NICs: VMSS network profiles (model and instances) and standalone NICs --------------------


class PublicIpAddressConfigurationPropertiesJson(TypedDict, total=False):
    publicIPPrefix: SubResourceJson


class PublicIpAddressConfigurationJson(TypedDict, total=False):
    name: str
    properties: PublicIpAddressConfigurationPropertiesJson


class IpConfigurationPropertiesJson(TypedDict, total=False):
    primary: bool
    privateIPAddress: str
    privateIPAllocationMethod: str
    privateIPAddressVersion: str
    subnet: SubResourceJson
    publicIPAddressConfiguration: PublicIpAddressConfigurationJson  # VMSS profiles
    publicIPAddress: SubResourceJson  # standalone NICs
    loadBalancerBackendAddressPools: list[SubResourceJson]
    provisioningState: str


class IpConfigurationJson(TypedDict, total=False):
    name: str
    id: str
    properties: IpConfigurationPropertiesJson


class NicConfigurationPropertiesJson(TypedDict, total=False):
    primary: bool
    ipConfigurations: list[IpConfigurationJson]


class NicConfigurationJson(TypedDict, total=False):
    """One entry of a VMSS networkProfile's networkInterfaceConfigurations."""

    name: str
    properties: NicConfigurationPropertiesJson


class NetworkInterfacePropertiesJson(TypedDict, total=False):
    ipConfigurations: list[IpConfigurationJson]
    provisioningState: str
    virtualMachine: SubResourceJson
    primary: bool


class NetworkInterfaceJson(TypedDict, total=False):
    """A NIC resource (standalone, or a VMSS instance's NIC read through the network API)."""

    id: str
    name: str
    location: str
    etag: str
    tags: dict[str, str]
    properties: NetworkInterfacePropertiesJson


class PublicIpPrefixPropertiesJson(TypedDict, total=False):
    prefixLength: int
    ipPrefix: str
    publicIPAddressVersion: str
    publicIPAddresses: list[SubResourceJson]
    provisioningState: str


class PublicIpPrefixJson(TypedDict, total=False):
    id: str
    name: str
    location: str
    etag: str
    sku: dict[str, str]
    properties: PublicIpPrefixPropertiesJson
