"""PodEndpoint: one per pod that uses a gateway, written by the CNI manager on the pod's node
(planned; until then by tests and the dev stack) and read by the gateway agents to add the pod as
a WireGuard peer (docs/upstream-compatibility.md §1.4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contracts import kube_names
from contracts.kube_json import PodEndpointJson, PodEndpointSpecJson
from contracts.object_meta import ObjectMeta
from contracts.raw_fields import read_map, read_str


@dataclass(frozen=True)
class PodEndpointSpec:
    static_gateway_configuration: str = ""  # SGC name, in the pod's namespace
    pod_ip_address: str = ""  # IPv4 CIDR, "x.x.x.x/32"
    pod_public_key: str = ""  # base64 WireGuard public key of the pod's wg0

    @classmethod
    def from_object(cls, raw: Mapping[str, Any], path: str = "spec") -> PodEndpointSpec:
        return cls(
            static_gateway_configuration=read_str(raw, "staticGatewayConfiguration", path),
            pod_ip_address=read_str(raw, "podIpAddress", path),
            pod_public_key=read_str(raw, "podPublicKey", path),
        )

    def to_object(self) -> PodEndpointSpecJson:
        out: PodEndpointSpecJson = {}
        if self.static_gateway_configuration:
            out["staticGatewayConfiguration"] = self.static_gateway_configuration
        if self.pod_ip_address:
            out["podIpAddress"] = self.pod_ip_address
        if self.pod_public_key:
            out["podPublicKey"] = self.pod_public_key
        return out


@dataclass(frozen=True)
class PodEndpoint:
    metadata: ObjectMeta
    spec: PodEndpointSpec

    @classmethod
    def from_object(cls, raw: Mapping[str, Any]) -> PodEndpoint:
        return cls(
            metadata=ObjectMeta.from_object(read_map(raw, "metadata", "") or {}),
            spec=PodEndpointSpec.from_object(read_map(raw, "spec", "") or {}),
        )

    def to_object(self) -> PodEndpointJson:
        return {
            "apiVersion": kube_names.GROUP_VERSION,
            "kind": kube_names.POD_ENDPOINT_KIND,
            "metadata": self.metadata.to_object(),
            "spec": self.spec.to_object(),
        }
