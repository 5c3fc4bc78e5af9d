"""What `egressgw status` reads, and nothing else: StaticGatewayConfigurations and GatewayStatuses
from the API server, and each configuration's GatewayConfigWorkflow from Temporal (describe, which
needs no worker, then the `status` query, which a running controller answers).

Nothing here writes: a describe and a query change no workflow and add nothing to its history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any, Final

from kubernetes_asyncio.client import ApiClient, CustomObjectsApi
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.service import RPCError, RPCStatusCode

from contracts import kube_names, resource_names, search_attributes
from contracts.workflow_io import GET_STATUS, ConfigurationStatus
from egressgw.status.report import RUNNING, WorkflowFacts

# Concurrent describes and queries: enough to keep a long list quick, few enough for a server.
MAX_CONCURRENT: Final = 16

_STATUS_NAMES: Final = {
    WorkflowExecutionStatus.RUNNING: RUNNING,
    WorkflowExecutionStatus.COMPLETED: "Completed",
    WorkflowExecutionStatus.FAILED: "Failed",
    WorkflowExecutionStatus.CANCELED: "Canceled",
    WorkflowExecutionStatus.TERMINATED: "Terminated",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "ContinuedAsNew",
    WorkflowExecutionStatus.TIMED_OUT: "TimedOut",
}


async def list_configurations(api: ApiClient, namespace: str | None) -> list[dict[str, Any]]:
    """Every StaticGatewayConfiguration (of one namespace, or of all), sorted by namespace and
    name as kubectl lists them."""
    custom = CustomObjectsApi(api)
    group, version, plural = kube_names.API_GROUP, kube_names.API_VERSION, kube_names.SGC_PLURAL
    if namespace:
        listed = await custom.list_namespaced_custom_object(group, version, namespace, plural)
    else:
        listed = await custom.list_cluster_custom_object(group, version, plural)
    items: list[dict[str, Any]] = list(listed.get("items") or [])
    return sorted(items, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))


async def list_gateway_statuses(api: ApiClient) -> list[dict[str, Any]]:
    """The GatewayStatus of every gateway node (the agents write them in their namespace)."""
    listed = await CustomObjectsApi(api).list_cluster_custom_object(
        kube_names.API_GROUP, kube_names.API_VERSION, kube_names.GATEWAY_STATUS_PLURAL
    )
    return list(listed.get("items") or [])


def _retrying(description: WorkflowExecutionDescription) -> str:
    """The activity being retried after a failure, with that failure: what a configuration is
    stuck on while it is neither Ready nor Degraded (e.g. a permission the controller lacks)."""
    for pending in description.raw_description.pending_activities:
        message = pending.last_failure.message
        if message:
            return f"{pending.activity_type.name} (attempt {pending.attempt}): {message}"
    return ""


async def workflow_facts(
    client: Client, namespace: str, name: str, query_timeout: timedelta
) -> WorkflowFacts:
    workflow_id = resource_names.gateway_config_workflow_id(namespace, name)
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return WorkflowFacts(workflow_id=workflow_id, found=False)
        return WorkflowFacts(workflow_id=workflow_id, found=False, unreadable=err.message)
    status = description.status
    facts = WorkflowFacts(
        workflow_id=workflow_id,
        found=True,
        execution_status=_STATUS_NAMES.get(status, str(status)) if status else "",
        phase=description.typed_search_attributes.get(search_attributes.PHASE) or "",
        retrying=_retrying(description),
    )
    if status != WorkflowExecutionStatus.RUNNING:
        return facts
    try:
        answered: ConfigurationStatus = await handle.query(
            GET_STATUS, result_type=ConfigurationStatus, rpc_timeout=query_timeout
        )
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as err:
        # No worker polls (the controller is down) or it did not answer in time: what the
        # describe said stands.
        return replace(facts, unanswered=str(err))
    return WorkflowFacts(
        workflow_id=workflow_id,
        found=True,
        execution_status=facts.execution_status,
        phase=answered.phase,
        message=answered.message,
        nodes=tuple(node.node_name for node in answered.nodes),
        node_problems=answered.node_problems,
        retrying=facts.retrying,
    )


async def all_workflow_facts(
    client: Client, keys: Sequence[tuple[str, str]], query_timeout: timedelta
) -> list[WorkflowFacts]:
    """The facts for each (namespace, name), in order, MAX_CONCURRENT at a time."""
    gate = asyncio.Semaphore(MAX_CONCURRENT)

    async def one(namespace: str, name: str) -> WorkflowFacts:
        async with gate:
            return await workflow_facts(client, namespace, name, query_timeout)

    return list(await asyncio.gather(*(one(ns, name) for ns, name in keys)))


def unreadable_facts(keys: Sequence[tuple[str, str]], reason: str) -> list[WorkflowFacts]:
    """What status knows of the workflows when Temporal cannot be reached at all."""
    return [
        WorkflowFacts(
            workflow_id=resource_names.gateway_config_workflow_id(ns, name),
            found=False,
            unreadable=reason,
        )
        for ns, name in keys
    ]
