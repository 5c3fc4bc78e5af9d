"""StaticGatewayConfiguration (SGC): the user-facing object, field for field as upstream has it
(docs/upstream-compatibility.md §1.2, §1.3), plus the conditions and observedGeneration this
project adds to its status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from contracts import kube_names
from contracts.conditions import Condition
from contracts.kube_json import (
    GatewayServerProfileJson,
    GatewayVmssProfileJson,
    StaticGatewayConfigurationJson,
    StaticGatewayConfigurationSpecJson,
    StaticGatewayConfigurationStatusJson,
)
from contracts.object_meta import ObjectMeta, ObjectReference
from contracts.raw_fields import (
    read_bool,
    read_int,
    read_map,
    read_maps,
    read_str,
    read_strs,
)


class DefaultRoute(StrEnum):
    """Where a pod's default route points (spec.defaultRoute)."""

    AZURE_NETWORKING = "azureNetworking"
    STATIC_EGRESS_GATEWAY = "staticEgressGateway"


@dataclass(frozen=True)
class GatewayVmssProfile:
    vmss_resource_group: str = ""
    vmss_name: str = ""
    public_ip_prefix_size: int = 0

    @property
    def is_empty(self) -> bool:
        # Upstream compares the struct to its zero value: an all-default profile means "absent".
        return self == GatewayVmssProfile()

    @classmethod
    def from_object(
        cls, raw: Mapping[str, Any], path: str = "spec.gatewayVmssProfile"
    ) -> GatewayVmssProfile:
        return cls(
            vmss_resource_group=read_str(raw, "vmssResourceGroup", path),
            vmss_name=read_str(raw, "vmssName", path),
            public_ip_prefix_size=read_int(raw, "publicIpPrefixSize", path),
        )

    def to_object(self) -> GatewayVmssProfileJson:
        out: GatewayVmssProfileJson = {}
        if self.vmss_resource_group:
            out["vmssResourceGroup"] = self.vmss_resource_group
        if self.vmss_name:
            out["vmssName"] = self.vmss_name
        if self.public_ip_prefix_size:
            out["publicIpPrefixSize"] = self.public_ip_prefix_size
        return out


@dataclass(frozen=True)
class StaticGatewayConfigurationSpec:
    gateway_nodepool_name: str = ""
    gateway_vmss_profile: GatewayVmssProfile | None = None
    # Kept as the raw string so that a value an older CRD let through reaches validate_spec
    # instead of failing to parse; compare with DefaultRoute members (they are strings).
    default_route: str = DefaultRoute.STATIC_EGRESS_GATEWAY
    provision_public_ips: bool = True
    public_ip_prefix_id: str = ""
    exclude_cidrs: tuple[str, ...] = ()

    @property
    def vmss_profile(self) -> GatewayVmssProfile | None:
        """The VMSS profile when one is given; an empty profile counts as absent."""
        profile = self.gateway_vmss_profile
        return None if profile is None or profile.is_empty else profile

    @classmethod
    def from_object(
        cls, raw: Mapping[str, Any], path: str = "spec"
    ) -> StaticGatewayConfigurationSpec:
        profile = read_map(raw, "gatewayVmssProfile", path)
        return cls(
            gateway_nodepool_name=read_str(raw, "gatewayNodepoolName", path),
            gateway_vmss_profile=(
                None
                if profile is None
                else GatewayVmssProfile.from_object(profile, f"{path}.gatewayVmssProfile")
            ),
            default_route=read_str(
                raw, "defaultRoute", path, default=DefaultRoute.STATIC_EGRESS_GATEWAY
            ),
            provision_public_ips=read_bool(raw, "provisionPublicIps", path, default=True),
            public_ip_prefix_id=read_str(raw, "publicIpPrefixId", path),
            exclude_cidrs=read_strs(raw, "excludeCidrs", path),
        )

    def to_object(self) -> StaticGatewayConfigurationSpecJson:
        # Defaulted fields are always written, as the API server returns them after defaulting.
        out: StaticGatewayConfigurationSpecJson = {}
        if self.gateway_nodepool_name:
            out["gatewayNodepoolName"] = self.gateway_nodepool_name
        if self.gateway_vmss_profile is not None:
            out["gatewayVmssProfile"] = self.gateway_vmss_profile.to_object()
        out["defaultRoute"] = str(self.default_route)
        out["provisionPublicIps"] = self.provision_public_ips
        if self.public_ip_prefix_id:
            out["publicIpPrefixId"] = self.public_ip_prefix_id
        if self.exclude_cidrs:
            out["excludeCidrs"] = list(self.exclude_cidrs)
        return out


@dataclass(frozen=True)
class GatewayServerProfile:
    ip: str = ""  # the internal load balancer frontend IP
    port: int = 0  # the load-balancing rule port, also the gateway's WireGuard listen port
    public_key: str = ""  # base64 WireGuard public key of the gateway
    private_key_secret_ref: ObjectReference | None = None

    @classmethod
    def from_object(
        cls, raw: Mapping[str, Any], path: str = "status.gatewayServerProfile"
    ) -> GatewayServerProfile:
        ref = read_map(raw, "privateKeySecretRef", path)
        return cls(
            ip=read_str(raw, "ip", path),
            port=read_int(raw, "port", path),
            public_key=read_str(raw, "publicKey", path),
            private_key_secret_ref=(
                None
                if ref is None
                else ObjectReference.from_object(ref, f"{path}.privateKeySecretRef")
            ),
        )

    def to_object(self) -> GatewayServerProfileJson:
        out: GatewayServerProfileJson = {}
        if self.ip:
            out["ip"] = self.ip
        if self.port:
            out["port"] = self.port
        if self.public_key:
            out["publicKey"] = self.public_key
        if self.private_key_secret_ref is not None:
            out["privateKeySecretRef"] = self.private_key_secret_ref.to_object()
        return out


@dataclass(frozen=True)
class StaticGatewayConfigurationStatus:
    # Public mode: the public IP prefix CIDR; private mode: the secondary IPs joined by ",".
    egress_ip_prefix: str = ""
    gateway_server_profile: GatewayServerProfile | None = None
    conditions: tuple[Condition, ...] = ()
    observed_generation: int = 0

    @classmethod
    def from_object(
        cls, raw: Mapping[str, Any], path: str = "status"
    ) -> StaticGatewayConfigurationStatus:
        profile = read_map(raw, "gatewayServerProfile", path)
        return cls(
            egress_ip_prefix=read_str(raw, "egressIpPrefix", path),
            gateway_server_profile=(
                None
                if profile is None
                else GatewayServerProfile.from_object(profile, f"{path}.gatewayServerProfile")
            ),
            conditions=tuple(
                Condition.from_object(item, f"{path}.conditions[{index}]")
                for index, item in enumerate(read_maps(raw, "conditions", path))
            ),
            observed_generation=read_int(raw, "observedGeneration", path),
        )

    def to_object(self) -> StaticGatewayConfigurationStatusJson:
        out: StaticGatewayConfigurationStatusJson = {}
        if self.egress_ip_prefix:
            out["egressIpPrefix"] = self.egress_ip_prefix
        if self.gateway_server_profile is not None:
            out["gatewayServerProfile"] = self.gateway_server_profile.to_object()
        if self.conditions:
            out["conditions"] = [condition.to_object() for condition in self.conditions]
        if self.observed_generation:
            out["observedGeneration"] = self.observed_generation
        return out


@dataclass(frozen=True)
class StaticGatewayConfiguration:
    metadata: ObjectMeta
    spec: StaticGatewayConfigurationSpec
    status: StaticGatewayConfigurationStatus = StaticGatewayConfigurationStatus()

    @classmethod
    def from_object(cls, raw: Mapping[str, Any]) -> StaticGatewayConfiguration:
        metadata = read_map(raw, "metadata", "")
        spec = read_map(raw, "spec", "")
        status = read_map(raw, "status", "")
        return cls(
            metadata=ObjectMeta.from_object(metadata or {}),
            spec=StaticGatewayConfigurationSpec.from_object(spec or {}),
            status=StaticGatewayConfigurationStatus.from_object(status or {}),
        )

    def to_object(self) -> StaticGatewayConfigurationJson:
        out: StaticGatewayConfigurationJson = {
            "apiVersion": kube_names.GROUP_VERSION,
            "kind": kube_names.SGC_KIND,
            "metadata": self.metadata.to_object(),
            "spec": self.spec.to_object(),
        }
        status = self.status.to_object()
        if status:
            out["status"] = status
        return out
