"""The plugin <-> CNI manager protocol: upstream's NicService (NicAdd, NicDel, PodRetrieve; its
gRPC messages in docs/pod-side.md) plus NicCheck and Status, as JSON over the manager's Unix
socket.

One request per connection: the client writes one JSON object and a newline,
`{"method": "NicAdd", "params": {...}}`; the manager answers one line, `{"result": {...}}` or
`{"error": {"kind": "...", "message": "..."}}`, and closes. Field names follow upstream's proto
(camelCase). JSON over a socket keeps the plugin's imports to the standard library: a gRPC client
alone costs more start-up time than the plugin's whole budget allows for it.

Pure: encoding, decoding and validation; both sides import it.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.cni.cni_protocol import PodRef

MAX_MESSAGE_BYTES = 64 * 1024

NIC_ADD = "NicAdd"
NIC_CHECK = "NicCheck"
NIC_DEL = "NicDel"
POD_RETRIEVE = "PodRetrieve"
STATUS = "Status"
METHODS = (NIC_ADD, NIC_CHECK, NIC_DEL, POD_RETRIEVE, STATUS)

# Error kinds a manager answers with; the plugin maps each to a CNI error code (plugin.py).
UNAVAILABLE = "Unavailable"  # the API server is unreachable or overloaded: try again later
NOT_READY = "NotReady"  # the configuration has no gateway profile yet: try again later
NOT_FOUND = "NotFound"  # no such configuration in the pod's namespace
DELETING = "Deleting"  # the configuration is being deleted
POD_NOT_FOUND = "PodNotFound"
INVALID = "InvalidArgument"  # a request field (or the configuration's spec) cannot be used
REFUSED = "Refused"  # the API server refused the manager's call (e.g. 403)
MISMATCH = "Mismatch"  # NicCheck: the PodEndpoint is missing or differs
INTERNAL = "Internal"
KINDS = (UNAVAILABLE, NOT_READY, NOT_FOUND, DELETING, POD_NOT_FOUND, INVALID, REFUSED, MISMATCH)

DEFAULT_ROUTE_STATIC_EGRESS_GATEWAY = "staticEgressGateway"
DEFAULT_ROUTE_AZURE_NETWORKING = "azureNetworking"


class ManagerError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _str(params: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = params.get(key, "")
    if not isinstance(value, str):
        raise ManagerError(INVALID, f"{key} must be a string")
    if required and not value:
        raise ManagerError(INVALID, f"{key} is missing")
    return value


def _pod(params: Mapping[str, Any]) -> PodRef:
    raw = params.get("podConfig")
    if not isinstance(raw, Mapping):
        raise ManagerError(INVALID, "podConfig is missing")
    return PodRef(_str(raw, "podNamespace"), _str(raw, "podName"))


def _pod_json(pod: PodRef) -> dict[str, str]:
    return {"podNamespace": pod.namespace, "podName": pod.name}


def check_public_key(text: str, field: str = "publicKey") -> str:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ManagerError(INVALID, f"{field} is not base64") from None
    if len(raw) != 32:
        raise ManagerError(INVALID, f"{field} is {len(raw)} bytes, a WireGuard key is 32")
    return text


def check_pod_ip(text: str) -> str:
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise ManagerError(INVALID, f"allowedIp {text!r} is not an IPv4 address") from None
    if address.is_unspecified or address.is_multicast or address.is_loopback:
        raise ManagerError(INVALID, f"allowedIp {text} is not a pod address")
    return text


@dataclass(frozen=True)
class PodRequest:
    """PodRetrieve's request."""

    pod: PodRef

    def to_json(self) -> dict[str, Any]:
        return {"podConfig": _pod_json(self.pod)}

    @classmethod
    def from_json(cls, params: Mapping[str, Any]) -> PodRequest:
        return cls(_pod(params))


@dataclass(frozen=True)
class PodInfo:
    """PodRetrieve's answer."""

    uid: str
    annotations: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"uid": self.uid, "annotations": dict(self.annotations)}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PodInfo:
        annotations = raw.get("annotations") or {}
        if not isinstance(annotations, Mapping):
            raise ManagerError(INTERNAL, "annotations is not an object")
        return cls(
            uid=_str(raw, "uid", required=False),
            annotations={str(k): str(v) for k, v in annotations.items()},
        )


@dataclass(frozen=True)
class NicAddRequest:
    """NicAdd's and NicCheck's request."""

    pod: PodRef
    pod_ip: str  # IPv4, the PodEndpoint's podIpAddress without "/32"
    public_key: str  # base64
    gateway_name: str  # the annotation's value
    pod_uid: str = ""  # from PodRetrieve: the PodEndpoint's owner; "" makes the manager read it

    def to_json(self) -> dict[str, Any]:
        return {
            "podConfig": _pod_json(self.pod),
            "allowedIp": self.pod_ip,
            "publicKey": self.public_key,
            "gatewayName": self.gateway_name,
            "podUid": self.pod_uid,
        }

    @classmethod
    def from_json(cls, params: Mapping[str, Any]) -> NicAddRequest:
        return cls(
            pod=_pod(params),
            pod_ip=check_pod_ip(_str(params, "allowedIp")),
            public_key=check_public_key(_str(params, "publicKey")),
            gateway_name=_str(params, "gatewayName"),
            pod_uid=_str(params, "podUid", required=False),
        )


@dataclass(frozen=True)
class NicDelRequest:
    pod: PodRef
    # The public key the attachment used; the PodEndpoint is kept when it holds another one (a
    # newer sandbox of a pod with the same name). "" deletes whatever is there.
    public_key: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"podConfig": _pod_json(self.pod), "publicKey": self.public_key}

    @classmethod
    def from_json(cls, params: Mapping[str, Any]) -> NicDelRequest:
        key = _str(params, "publicKey", required=False)
        return cls(_pod(params), check_public_key(key) if key else "")


@dataclass(frozen=True)
class GatewayProfile:
    """NicAdd's answer: where the pod's wg0 connects and what it routes there."""

    endpoint_ip: str  # the configuration's load balancer frontend IP
    listen_port: int  # its load-balancing rule port
    public_key: str  # the gateway's base64 public key
    exclude_cidrs: tuple[str, ...]  # the configuration's spec.excludeCidrs, normalized
    default_route: str  # staticEgressGateway or azureNetworking

    def to_json(self) -> dict[str, Any]:
        return {
            "endpointIp": self.endpoint_ip,
            "listenPort": self.listen_port,
            "publicKey": self.public_key,
            "excludeCidrs": list(self.exclude_cidrs),
            "defaultRoute": self.default_route,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> GatewayProfile:
        port = raw.get("listenPort")
        cidrs = raw.get("excludeCidrs") or []
        route = _str(raw, "defaultRoute")
        if not isinstance(port, int) or not 0 < port < 65536:
            raise ManagerError(INVALID, "listenPort is not a port")
        if not isinstance(cidrs, list) or not all(isinstance(c, str) for c in cidrs):
            raise ManagerError(INVALID, "excludeCidrs is not a list of strings")
        if route not in (DEFAULT_ROUTE_STATIC_EGRESS_GATEWAY, DEFAULT_ROUTE_AZURE_NETWORKING):
            raise ManagerError(INVALID, f"defaultRoute {route!r} is unknown")
        endpoint = _str(raw, "endpointIp")
        try:
            ipaddress.IPv4Address(endpoint)
        except ValueError:
            raise ManagerError(INVALID, f"endpointIp {endpoint!r} is not IPv4") from None
        return cls(
            endpoint_ip=endpoint,
            listen_port=port,
            public_key=check_public_key(_str(raw, "publicKey")),
            exclude_cidrs=tuple(cidrs),
            default_route=route,
        )


# --- Wire format ---------------------------------------------------------------------------------


def encode_request(method: str, params: Mapping[str, Any]) -> bytes:
    return json.dumps({"method": method, "params": params}).encode() + b"\n"


def decode_request(line: bytes) -> tuple[str, Mapping[str, Any]]:
    try:
        raw = json.loads(line)
    except ValueError:
        raise ManagerError(INVALID, "request is not JSON") from None
    if not isinstance(raw, Mapping):
        raise ManagerError(INVALID, "request is not a JSON object")
    method = raw.get("method")
    params = raw.get("params", {})
    if method not in METHODS:
        raise ManagerError(INVALID, f"unknown method {method!r}")
    if not isinstance(params, Mapping):
        raise ManagerError(INVALID, "params is not an object")
    return str(method), params


def encode_result(result: Mapping[str, Any]) -> bytes:
    return json.dumps({"result": result}).encode() + b"\n"


def encode_error(error: ManagerError) -> bytes:
    body = {"kind": error.kind, "message": error.message}
    return json.dumps({"error": body}).encode() + b"\n"


def decode_reply(line: bytes) -> Mapping[str, Any]:
    """The result of a reply; ManagerError when the manager answered an error (or garbage)."""
    try:
        raw = json.loads(line)
    except ValueError:
        raise ManagerError(INTERNAL, "the manager's reply is not JSON") from None
    if not isinstance(raw, Mapping):
        raise ManagerError(INTERNAL, "the manager's reply is not a JSON object")
    error = raw.get("error")
    if isinstance(error, Mapping):
        kind = error.get("kind")
        message = error.get("message")
        raise ManagerError(
            kind if isinstance(kind, str) and kind in KINDS else INTERNAL,
            message if isinstance(message, str) else "the manager failed without a message",
        )
    result = raw.get("result")
    if not isinstance(result, Mapping):
        raise ManagerError(INTERNAL, "the manager's reply has neither result nor error")
    return result
