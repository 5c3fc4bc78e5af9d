"""Raw Kubernetes JSON of the objects the product reads and writes, as TypedDicts.

These describe what `to_object()` produces (and what the API server returns); readers accept any
`Mapping[str, Any]` and check types field by field (see raw_fields.py).
"""

from __future__ import annotations

from typing import TypedDict


class OwnerReferenceJson(TypedDict, total=False):
    apiVersion: str
    kind: str
    name: str
    uid: str
    controller: bool
    blockOwnerDeletion: bool


class ObjectMetaJson(TypedDict, total=False):
    name: str
    namespace: str
    uid: str
    generation: int
    resourceVersion: str
    creationTimestamp: str
    deletionTimestamp: str
    finalizers: list[str]
    labels: dict[str, str]
    annotations: dict[str, str]
    ownerReferences: list[OwnerReferenceJson]


class ObjectReferenceJson(TypedDict, total=False):
    apiVersion: str
    kind: str
    name: str
    namespace: str


class ConditionJson(TypedDict, total=False):
    type: str
    status: str
    reason: str
    message: str
    lastTransitionTime: str
    observedGeneration: int


# --- StaticGatewayConfiguration ------------------------------------------------------------------


class GatewayVmssProfileJson(TypedDict, total=False):
    vmssResourceGroup: str
    vmssName: str
    publicIpPrefixSize: int


class StaticGatewayConfigurationSpecJson(TypedDict, total=False):
    gatewayNodepoolName: str
    gatewayVmssProfile: GatewayVmssProfileJson
    defaultRoute: str
    provisionPublicIps: bool
    publicIpPrefixId: str
    excludeCidrs: list[str]


class GatewayServerProfileJson(TypedDict, total=False):
    ip: str
    port: int
    publicKey: str
    privateKeySecretRef: ObjectReferenceJson


class StaticGatewayConfigurationStatusJson(TypedDict, total=False):
    egressIpPrefix: str
    gatewayServerProfile: GatewayServerProfileJson
    conditions: list[ConditionJson]
    observedGeneration: int


class StaticGatewayConfigurationJson(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMetaJson
    spec: StaticGatewayConfigurationSpecJson
    status: StaticGatewayConfigurationStatusJson


# --- PodEndpoint ---------------------------------------------------------------------------------


class PodEndpointSpecJson(TypedDict, total=False):
    staticGatewayConfiguration: str
    podIpAddress: str
    podPublicKey: str


class PodEndpointJson(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMetaJson
    spec: PodEndpointSpecJson


# --- GatewayStatus -------------------------------------------------------------------------------


class GatewayConfigurationStatusJson(TypedDict, total=False):
    staticGatewayConfiguration: str
    interfaceName: str


class PeerConfigurationStatusJson(TypedDict, total=False):
    podEndpoint: str
    interfaceName: str
    publicKey: str


class GatewayStatusSpecJson(TypedDict, total=False):
    readyGatewayConfigurations: list[GatewayConfigurationStatusJson]
    readyPeerConfigurations: list[PeerConfigurationStatusJson]


class GatewayStatusJson(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMetaJson
    spec: GatewayStatusSpecJson
