"""This node's GatewayStatus: what the agent has ready, for `kubectl get gatewaystatus <node>`
(docs/upstream-compatibility.md §1.4).

The agent records gateways and peers in memory as it applies them; `flush` writes the object
when that content changed. The spec is rebuilt from the current state on every flush, so it holds
only what is there now (upstream once leaked stale peers until the object neared etcd's 1.5 MB
limit), and it is capped at `max_peers` peer entries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kubernetes_asyncio.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException

from contracts import kube_names
from contracts.gateway_status import (
    GatewayConfigurationStatus,
    GatewayStatus,
    GatewayStatusSpec,
    PeerConfigurationStatus,
)
from contracts.object_meta import ObjectMeta, OwnerReference
from contracts.raw_fields import ObjectFormatError
from kubeclient.errors import api_failure, is_conflict, is_not_found

log = logging.getLogger(__name__)

# Writes that lose a race with another writer re-read and try again this many times in all.
WRITE_ATTEMPTS: Final = 5


@dataclass(frozen=True)
class BoundedSpec:
    spec: GatewayStatusSpec
    dropped_peers: int  # peer entries left out to stay within max_peers


def gateway_status_spec(
    gateways: Mapping[str, str],
    peers: Mapping[str, Sequence[tuple[str, str]]],
    max_peers: int,
) -> BoundedSpec:
    """The spec for gateways {interface: "ns/sgc"} and peers {interface: [(pod endpoint,
    public key)]}: sorted, one entry per public key and interface (the lowest pod endpoint wins),
    and the first `max_peers` peer entries in that order."""
    ready_gateways = sorted(
        (
            GatewayConfigurationStatus(static_gateway_configuration=sgc, interface_name=interface)
            for interface, sgc in gateways.items()
        ),
        key=lambda item: (item.interface_name, item.static_gateway_configuration),
    )
    ready_peers: list[PeerConfigurationStatus] = []
    for interface in sorted(peers):
        by_key: dict[str, str] = {}
        for pod_endpoint, public_key in peers[interface]:
            kept = by_key.get(public_key)
            if kept is None or pod_endpoint < kept:
                by_key[public_key] = pod_endpoint
        ready_peers.extend(
            PeerConfigurationStatus(
                pod_endpoint=pod_endpoint, interface_name=interface, public_key=public_key
            )
            for public_key, pod_endpoint in by_key.items()
        )
    ready_peers.sort(key=lambda item: (item.interface_name, item.pod_endpoint, item.public_key))
    limit = max(max_peers, 0)
    return BoundedSpec(
        spec=GatewayStatusSpec(
            ready_gateway_configurations=tuple(ready_gateways),
            ready_peer_configurations=tuple(ready_peers[:limit]),
        ),
        dropped_peers=max(len(ready_peers) - limit, 0),
    )


class ReadyState:
    """What the node has ready, as the agent records it; no I/O."""

    def __init__(self) -> None:
        self._gateways: dict[str, str] = {}  # interface -> "ns/sgc"
        self._peers: dict[str, tuple[tuple[str, str], ...]] = {}  # interface -> peers

    def set_gateway(self, sgc: str, interface_name: str) -> None:
        """`sgc` is "<namespace>/<name>"; an interface carries one configuration."""
        self._gateways[interface_name] = sgc

    def remove_gateway(self, interface_name: str) -> None:
        """Forget the interface's gateway and its peers."""
        self._gateways.pop(interface_name, None)
        self._peers.pop(interface_name, None)

    def set_peers(self, interface_name: str, peers: Sequence[tuple[str, str]]) -> None:
        """Make the interface's peers exactly these (pod endpoint "ns/name", public key)."""
        if peers:
            self._peers[interface_name] = tuple(peers)
        else:
            self._peers.pop(interface_name, None)

    def spec(self, max_peers: int) -> BoundedSpec:
        return gateway_status_spec(self._gateways, self._peers, max_peers)


def _stored_spec(obj: Mapping[str, Any]) -> GatewayStatusSpec | None:
    """The spec of a stored object, or None when it is not one this code can read."""
    raw = obj.get("spec")
    try:
        return GatewayStatusSpec.from_object(raw if isinstance(raw, Mapping) else {})
    except ObjectFormatError:
        return None  # someone wrote a malformed spec: replace it


class GatewayStatusReport:
    def __init__(
        self,
        api: ApiClient,
        *,
        node_name: str,
        namespace: str,
        max_peers: int = 2000,
    ) -> None:
        if max_peers < 0:
            raise ValueError(f"max_peers must not be negative, got {max_peers}")
        self._custom = CustomObjectsApi(api)
        self._core = CoreV1Api(api)
        self._node_name = node_name
        self._namespace = namespace
        self._max_peers = max_peers
        self._ready = ReadyState()
        self._written: GatewayStatusSpec | None = None  # last spec known to be stored
        self._stored: dict[str, Any] | None = None  # the object as last read or written
        self._lock = asyncio.Lock()

    def set_gateway(self, sgc: str, interface_name: str) -> None:
        self._ready.set_gateway(sgc, interface_name)

    def remove_gateway(self, interface_name: str) -> None:
        self._ready.remove_gateway(interface_name)

    def set_peers(self, interface_name: str, peers: Sequence[tuple[str, str]]) -> None:
        self._ready.set_peers(interface_name, peers)

    async def flush(self) -> bool:
        """Write the object if its content changed since the last write; True if it wrote.

        Kubernetes errors other than lost races propagate; the next flush tries again.
        """
        async with self._lock:
            bounded = self._ready.spec(self._max_peers)
            if bounded.spec == self._written:
                return False
            if bounded.dropped_peers:
                log.warning(
                    "GatewayStatus %s/%s: %d peer entries left out to stay within max_peers=%d",
                    self._namespace,
                    self._node_name,
                    bounded.dropped_peers,
                    self._max_peers,
                )
            wrote = await self._write(bounded.spec)
            self._written = bounded.spec
            return wrote

    async def _write(self, spec: GatewayStatusSpec) -> bool:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            if self._stored is None:
                self._stored = await self._read()
            stored = self._stored
            try:
                if stored is None:
                    self._stored = await self._create(spec)
                    return True
                if _stored_spec(stored) == spec:
                    return False  # already there, e.g. written before an agent restart
                self._stored = await self._replace(stored, spec)
                return True
            except ApiException as exc:
                # 409: another writer got there first (stale resourceVersion, or created it);
                # 404 on replace: deleted since it was read (e.g. garbage-collected with its
                # Node). A 404 on create (no such namespace) cannot be helped by retrying.
                lost_race = is_conflict(exc) or (is_not_found(exc) and stored is not None)
                if not lost_race or attempt == WRITE_ATTEMPTS:
                    raise
                log.info(
                    "GatewayStatus %s/%s changed underneath (HTTP %d); re-reading",
                    self._namespace,
                    self._node_name,
                    api_failure(exc).status,
                )
                self._stored = None
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _read(self) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = await self._custom.get_namespaced_custom_object(
                kube_names.API_GROUP,
                kube_names.API_VERSION,
                self._namespace,
                kube_names.GATEWAY_STATUS_PLURAL,
                self._node_name,
            )
        except ApiException as exc:
            if is_not_found(exc):
                return None
            raise
        return obj

    async def _node_owner(self) -> tuple[OwnerReference, ...]:
        """An owner reference to this node, so the object goes when the Node does; none when
        the Node does not exist (the object is still worth having for debugging)."""
        try:
            node = await self._core.read_node(self._node_name)
        except ApiException as exc:
            if is_not_found(exc):
                log.info("Node %s not found; GatewayStatus without owner", self._node_name)
                return ()
            raise
        return (
            OwnerReference(
                api_version="v1", kind="Node", name=self._node_name, uid=node.metadata.uid
            ),
        )

    async def _create(self, spec: GatewayStatusSpec) -> dict[str, Any]:
        meta = ObjectMeta(
            name=self._node_name,
            namespace=self._namespace,
            owner_references=await self._node_owner(),
        )
        body = GatewayStatus(metadata=meta, spec=spec).to_object()
        created: dict[str, Any] = await self._custom.create_namespaced_custom_object(
            kube_names.API_GROUP,
            kube_names.API_VERSION,
            self._namespace,
            kube_names.GATEWAY_STATUS_PLURAL,
            body,
        )
        return created

    async def _replace(self, stored: Mapping[str, Any], spec: GatewayStatusSpec) -> dict[str, Any]:
        # The stored metadata (resourceVersion, owner, labels others added) goes back as read;
        # a concurrent change makes the API server refuse it with 409.
        body = {**stored, "spec": spec.to_object()}
        replaced: dict[str, Any] = await self._custom.replace_namespaced_custom_object(
            kube_names.API_GROUP,
            kube_names.API_VERSION,
            self._namespace,
            kube_names.GATEWAY_STATUS_PLURAL,
            self._node_name,
            body,
        )
        return replaced
