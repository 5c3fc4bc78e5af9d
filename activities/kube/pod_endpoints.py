"""A configuration's pods: the PodEndpoints (written by the CNI manager on each pod's node, which
is planned; tests write them meanwhile) that name it, turned into the WireGuard peers its gateways
carry.

A PodEndpoint that does not parse is skipped and named in the result: one bad object must not
keep every other pod of the configuration from its gateway.
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
from contracts.activity_io import LIST_GATEWAY_PEERS, GatewayPeers, SgcRef
from contracts.node_io import GatewayPeer, PeerTable
from contracts.pod_endpoint import PodEndpoint
from contracts.raw_fields import ObjectFormatError

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
    def __init__(self, api_client: ApiClient) -> None:
        self._custom = CustomObjectsApi(api_client)

    @activity.defn(name=LIST_GATEWAY_PEERS)
    async def list_gateway_peers(self, sgc: SgcRef) -> GatewayPeers:
        try:
            listed = await self._custom.list_namespaced_custom_object(
                kube_names.API_GROUP,
                kube_names.API_VERSION,
                sgc.namespace,
                kube_names.POD_ENDPOINT_PLURAL,
            )
        except ApiException as exc:
            raise activity_error(exc, f"list PodEndpoints in {sgc.namespace}") from None
        result = gateway_peers(listed.get("items") or [], sgc.name)
        for problem in result.skipped:
            log.warning("%s/%s: skipped %s", sgc.namespace, sgc.name, problem)
        return result
