"""GatewayStatus: one per gateway node, listing what that node has ready; a debugging aid for
users (`kubectl get gatewaystatus <node> -o yaml`), as upstream has it
(docs/upstream-compatibility.md §1.4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contracts import kube_names
from contracts.kube_json import (
    GatewayConfigurationStatusJson,
    GatewayStatusJson,
    GatewayStatusSpecJson,
    PeerConfigurationStatusJson,
)
from contracts.object_meta import ObjectMeta
from contracts.raw_fields import read_map, read_maps, read_str


@dataclass(frozen=True)
class GatewayConfigurationStatus:
    static_gateway_configuration: str  # "<namespace>/<name>"
    interface_name: str  # "wg-<port>"

    @classmethod
    def from_object(cls, raw: Mapping[str, Any], path: str) -> GatewayConfigurationStatus:
        return cls(
            static_gateway_configuration=read_str(raw, "staticGatewayConfiguration", path),
            interface_name=read_str(raw, "interfaceName", path),
        )

    def to_object(self) -> GatewayConfigurationStatusJson:
        return {
            "staticGatewayConfiguration": self.static_gateway_configuration,
            "interfaceName": self.interface_name,
        }


@dataclass(frozen=True)
class PeerConfigurationStatus:
    pod_endpoint: str  # "<namespace>/<name>"
    interface_name: str
    public_key: str

    @classmethod
    def from_object(cls, raw: Mapping[str, Any], path: str) -> PeerConfigurationStatus:
        return cls(
            pod_endpoint=read_str(raw, "podEndpoint", path),
            interface_name=read_str(raw, "interfaceName", path),
            public_key=read_str(raw, "publicKey", path),
        )

    def to_object(self) -> PeerConfigurationStatusJson:
        return {
            "podEndpoint": self.pod_endpoint,
            "interfaceName": self.interface_name,
            "publicKey": self.public_key,
        }


@dataclass(frozen=True)
class GatewayStatusSpec:
    ready_gateway_configurations: tuple[GatewayConfigurationStatus, ...] = ()
    ready_peer_configurations: tuple[PeerConfigurationStatus, ...] = ()

    @classmethod
    def from_object(cls, raw: Mapping[str, Any], path: str = "spec") -> GatewayStatusSpec:
        gateways = read_maps(raw, "readyGatewayConfigurations", path)
        peers = read_maps(raw, "readyPeerConfigurations", path)
        return cls(
            ready_gateway_configurations=tuple(
                GatewayConfigurationStatus.from_object(
                    item, f"{path}.readyGatewayConfigurations[{index}]"
                )
                for index, item in enumerate(gateways)
            ),
            ready_peer_configurations=tuple(
                PeerConfigurationStatus.from_object(
                    item, f"{path}.readyPeerConfigurations[{index}]"
                )
                for index, item in enumerate(peers)
            ),
        )

    def to_object(self) -> GatewayStatusSpecJson:
        out: GatewayStatusSpecJson = {}
        if self.ready_gateway_configurations:
            out["readyGatewayConfigurations"] = [
                item.to_object() for item in self.ready_gateway_configurations
            ]
        if self.ready_peer_configurations:
            out["readyPeerConfigurations"] = [
                item.to_object() for item in self.ready_peer_configurations
            ]
        return out


@dataclass(frozen=True)
class GatewayStatus:
    metadata: ObjectMeta  # named after the node, in the agent's namespace
    spec: GatewayStatusSpec = GatewayStatusSpec()

    @classmethod
    def from_object(cls, raw: Mapping[str, Any]) -> GatewayStatus:
        return cls(
            metadata=ObjectMeta.from_object(read_map(raw, "metadata", "") or {}),
            spec=GatewayStatusSpec.from_object(read_map(raw, "spec", "") or {}),
        )

    def to_object(self) -> GatewayStatusJson:
        return {
            "apiVersion": kube_names.GROUP_VERSION,
            "kind": kube_names.GATEWAY_STATUS_KIND,
            "metadata": self.metadata.to_object(),
            "spec": self.spec.to_object(),
        }
