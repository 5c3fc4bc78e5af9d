"""Every Kubernetes activity, bound to one client, for `Worker(activities=...)`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes_asyncio.client import ApiClient

from activities.kube.events import EventActivities
from activities.kube.finalizers import FinalizerActivities
from activities.kube.gateway_keys import GatewayKeyActivities
from activities.kube.pod_endpoints import PodEndpointActivities
from activities.kube.status import StatusActivities
from kubeclient.object_cache import ObjectCache


def kube_activities(
    api_client: ApiClient, pod_endpoint_cache: ObjectCache | None = None
) -> list[Callable[..., Any]]:
    """`pod_endpoint_cache`: the PodEndpoint watch's cache of the same process, if it runs."""
    keys = GatewayKeyActivities(api_client)
    status = StatusActivities(api_client)
    events = EventActivities(api_client)
    finalizers = FinalizerActivities(api_client)
    pod_endpoints = PodEndpointActivities(api_client, pod_endpoint_cache)
    return [
        keys.ensure_gateway_key,
        keys.delete_gateway_key,
        status.update_sgc_status,
        events.record_sgc_event,
        finalizers.remove_sgc_finalizer,
        pod_endpoints.list_gateway_peers,
    ]
