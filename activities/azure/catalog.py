"""Every Azure activity, bound to one pair of clients, for a worker's `activities=` list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient

from activities.azure.gateway_pool import GatewayPoolActivities
from activities.azure.load_balancer import LoadBalancerActivities
from activities.azure.public_ip_prefix import PublicIpPrefixActivities


def azure_activities(
    network: NetworkManagementClient, compute: ComputeManagementClient
) -> list[Callable[..., Any]]:
    """The activities named under "Azure" in contracts.activity_io.

    Build the clients with `retry_total=0`: retries belong to the workflows' RetryPolicy, which
    honours Retry-After through the classified errors (activities/azure/errors.py).
    """
    pools = GatewayPoolActivities(network, compute)
    prefixes = PublicIpPrefixActivities(network)
    load_balancers = LoadBalancerActivities(network)
    return [
        pools.resolve_gateway_pool,
        pools.apply_vmss_model,
        pools.list_gateway_pool_members,
        pools.reconcile_gateway_pool_member,
        prefixes.ensure_managed_public_ip_prefix,
        prefixes.get_byo_public_ip_prefix,
        prefixes.delete_managed_public_ip_prefix,
        load_balancers.apply_load_balancer,
    ]
