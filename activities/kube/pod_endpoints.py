"""A configuration's pods: the PodEndpoints (written by the CNI manager on each pod's node) that
name it, turned into the WireGuard peers its gateways carry.

A PodEndpoint that does not parse is skipped and named in the result: one bad object must not
keep every other pod of the configuration from its gateway.

A request that allows it is answered from the controller's PodEndpoint watch cache
(kubeclient/object_cache.py, filled by watchers/pod_endpoint_watcher.py in the same process) once
that has listed: a peer pass then costs no API request, where listing a thousand PodEndpoints
took seconds on a busy API server (bench/peer_propagation.py).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes_asyncio.client import ApiClient, CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException
from temporalio import activity

from activities.kube.errors import activity_error
from contracts import kube_names
from contracts.activity_io import LIST_GATEWAY_PEERS, GatewayPeers, ListPeersInput
from contracts.node_io import GatewayPeer, PeerTable
from contracts.pod_endpoint import PodEndpoint
from contracts.raw_fields import ObjectFormatError
from kubeclient.object_cache import ObjectCache

log = logging.getLogger(__name__)


def gateway_peers(objects: Iterable[Mapping[str, Any]], sgc_name: str) -> GatewayPeers:
    """Peers of the PodEndpoints naming `sgc_name`, sorted by endpoint; unparsable ones skipped.
    Keys and addresses are checked again by the agent; here only what makes a peer at all."""
    peers: list[GatewayPeer] = []
    skipped: list[str] = []
    for raw in objects:
        try:
            endpoint = PodEndpoint.from_object(raw)
        except ObjectFormatError as err:
            skipped.append(f"a PodEndpoint that does not parse: {err}")
            continue
        spec = endpoint.spec
        if spec.static_gateway_configuration != sgc_name:
            continue
        name = f"{endpoint.metadata.namespace}/{endpoint.metadata.name}"
        try:
            pod_ip = ipaddress.IPv4Interface(spec.pod_ip_address).ip
        except ValueError:
            skipped.append(f"{name}: podIpAddress {spec.pod_ip_address!r} is not an IPv4 address")
            continue
        if not spec.pod_public_key:
            skipped.append(f"{name}: podPublicKey is empty")
            continue
        peers.append(GatewayPeer(spec.pod_public_key, str(pod_ip), name))
    return GatewayPeers(
        table=PeerTable.of(sorted(peers, key=lambda p: p.pod_endpoint)), skipped=tuple(skipped)
    )


class PodEndpointActivities:
    def __init__(self, api_client: ApiClient, cache: ObjectCache | None = None) -> None:
        self._custom = CustomObjectsApi(api_client)
        self._cache = cache

    @activity.defn(name=LIST_GATEWAY_PEERS)
    async def list_gateway_peers(self, request: ListPeersInput) -> GatewayPeers:
        cache = self._cache
        if request.from_watch_cache and cache is not None and cache.synced:
            objects = cache.objects(request.namespace)
        else:
            objects = await self._list(request.namespace)
        result = gateway_peers(objects, request.name)
        for problem in result.skipped:
            log.warning("%s/%s: skipped %s", request.namespace, request.name, problem)
        return result

    async def _list(self, namespace: str) -> list[Mapping[str, Any]]:
        try:
            listed = await self._custom.list_namespaced_custom_object(
                kube_names.API_GROUP,
                kube_names.API_VERSION,
                namespace,
                kube_names.POD_ENDPOINT_PLURAL,
            )
        except ApiException as exc:
            raise activity_error(exc, f"list PodEndpoints in {namespace}") from None
        items: list[Mapping[str, Any]] = listed.get("items") or []
        return items
