"""Gateway Nodes (label kubeegressgateway.azure.com/mode=true) → their pool's workflows.

When a gateway node joins or leaves, the GatewayPoolWorkflow of its pool gets `members_changed`:
that workflow is the single writer of the pool's ipConfigs and re-reads the pool's members. Each
running GatewayConfigWorkflow on the pool (found by its EgressgwPool search attribute) then gets
`nodes_changed`: its next pass learns the new node's addresses from the pool workflow and
configures the node's gateway, or drops the gateway of a node that left, without waiting for the
drift timer. Node events are rare, so one visibility query per event is cheap. A pool without a
workflow has no configuration yet: nothing to tell.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from kubernetes_asyncio.client import ApiClient, CoreV1Api
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from contracts import kube_names, resource_names, search_attributes
from contracts.workflow_io import GATEWAY_CONFIG_WORKFLOW, NODES_CHANGED, POOL_MEMBERS_CHANGED
from kubeclient.kube_source import KubeListWatch
from kubeclient.list_watch import WatchEvent, object_key

log = logging.getLogger(__name__)

GATEWAY_NODE_SELECTOR: Final = (
    f"{kube_names.GATEWAY_NODE_LABEL}={kube_names.GATEWAY_NODE_LABEL_VALUE}"
)
_AZURE_PROVIDER_PREFIX: Final = "azure://"


def node_pool(node: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(subscription, resource group, pool name) of a node, from its Azure providerID (VMSS
    instance: the VMSS; standalone VM: the AKS agent pool label), as Azure spells them; None
    when the node is not an Azure VM or names no pool."""
    spec = node.get("spec") or {}
    provider_id = str(spec.get("providerID") or "")
    if not provider_id.lower().startswith(_AZURE_PROVIDER_PREFIX):
        return None
    try:
        arm_id = resource_names.parse_arm_resource_id(provider_id[len(_AZURE_PROVIDER_PREFIX) :])
    except ValueError:
        return None
    types = tuple(t.lower() for t in arm_id.types)
    if types == ("virtualmachinescalesets", "virtualmachines"):
        pool = arm_id.names[0]
    elif types == ("virtualmachines",):
        labels = (node.get("metadata") or {}).get("labels") or {}
        pool = str(labels.get(kube_names.AKS_AGENT_POOL_LABEL) or "")
        if not pool:
            return None
    else:
        return None
    return arm_id.subscription, arm_id.resource_group, pool


def configurations_on_pool_query(pool_name: str) -> str:
    """Visibility query for the running configuration workflows registered on a pool."""
    quoted = pool_name.replace("'", "")
    return (
        f"WorkflowType = '{GATEWAY_CONFIG_WORKFLOW}' AND ExecutionStatus = 'Running' AND "
        f"{search_attributes.POOL.name} = '{quoted}'"
    )


def pool_workflow_id(node: Mapping[str, Any]) -> str | None:
    """The GatewayPoolWorkflow ID of a node's pool (see node_pool), or None."""
    pool = node_pool(node)
    return None if pool is None else resource_names.gateway_pool_workflow_id(*pool)


def membership_changes(
    members: Mapping[str, str], event: WatchEvent
) -> tuple[dict[str, str], tuple[str, ...]]:
    """Node name → pool workflow ID after `event`, and the pool workflows whose members changed."""
    name = object_key(event.object)
    before = members.get(name)
    after = None if event.type == "DELETED" else pool_workflow_id(event.object)
    updated = dict(members)
    if after is None:
        updated.pop(name, None)
    else:
        updated[name] = after
    changed = tuple(dict.fromkeys(p for p in (before, after) if p is not None and before != after))
    return updated, changed


class NodeWatcher:
    def __init__(self, api_client: ApiClient, temporal: Client) -> None:
        self._core = CoreV1Api(api_client)
        self._temporal = temporal
        self._members: dict[str, str] = {}

    def source(self) -> KubeListWatch:
        return KubeListWatch(self._core.list_node, label_selector=GATEWAY_NODE_SELECTOR)

    async def handle(self, event: WatchEvent) -> None:
        members, changed = membership_changes(self._members, event)
        for workflow_id in changed:
            await self._signal(workflow_id, object_key(event.object))
        pool = node_pool(event.object)
        # Only what the watch reports live: a listing (start-up, relist) would make every
        # configuration re-read Azure at once each time the controller starts; their drift
        # timer picks up what changed while nobody watched.
        if changed and pool is not None and not event.synthetic:
            await self._resync_configurations(pool[2], object_key(event.object))
        # Only remembered once every pool was told, so a failed signal is retried on relist.
        self._members = members

    async def _resync_configurations(self, pool_name: str, node: str) -> None:
        told = 0
        async for execution in self._temporal.list_workflows(
            configurations_on_pool_query(pool_name)
        ):
            try:
                await self._temporal.get_workflow_handle(execution.id).signal(NODES_CHANGED)
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:  # finished since it was listed
                    raise
                continue
            told += 1
        if told:
            log.info("node %s: told %d configurations on pool %s", node, told, pool_name)

    async def _signal(self, workflow_id: str, node: str) -> None:
        try:
            await self._temporal.get_workflow_handle(workflow_id).signal(POOL_MEMBERS_CHANGED)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                log.debug("node %s: no running pool workflow %s", node, workflow_id)
                return
            raise
        log.info("node %s changed membership of %s", node, workflow_id)
