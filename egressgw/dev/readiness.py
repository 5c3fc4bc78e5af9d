"""When the dev stack is really serving: the controller and every gateway agent are polling their
Temporal task queues, every node holds the gateways its configurations want of it, the nodes are
Ready and every regular node's CNI manager answers and has removed the node's cni-not-ready
taint (pods can be scheduled there and get the plugin).

After a restart the configurations still say Ready from before while the node network was
rebuilt empty; the agents tell the workflows they started and the workflows re-apply. `dev up`
waits for that, so that nobody sees Ready over a node that has nothing yet. The wanted gateways
come from the workflows themselves (query `node_gateway`), what a node holds from its agent's
GatewayStatus, which each agent resets when it starts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Final

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from contracts import node_io, resource_names
from contracts.gateway_status import GatewayStatusSpec
from contracts.node_io import NodeGateway
from contracts.workflow_io import GATEWAY_CONFIG_WORKFLOW

RUNNING_CONFIGURATIONS: Final = (
    f"WorkflowType = '{GATEWAY_CONFIG_WORKFLOW}' AND ExecutionStatus = 'Running'"
)
_QUERY_TIMEOUT: Final = timedelta(seconds=5)


@dataclass(frozen=True)
class NodesWaiting:
    """What the nodes still lack: Ready, and on regular nodes the CNI installed."""

    not_ready: tuple[str, ...] = ()
    cni_not_installed: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServingReport:
    controller_polling: bool
    agents_not_polling: tuple[str, ...]  # node names
    gateways_missing: tuple[tuple[str, str], ...]  # (node, "<namespace>/<name>")
    unanswered: str = ""  # why the workflows could not be asked what they want
    nodes_not_ready: tuple[str, ...] = ()  # Nodes whose runtime has not reported Ready
    # Regular nodes whose CNI manager does not answer or has not removed the cni-not-ready taint
    cni_not_installed: tuple[str, ...] = ()

    @property
    def serving(self) -> bool:
        return (
            self.controller_polling
            and not self.agents_not_polling
            and not self.gateways_missing
            and not self.unanswered
            and not self.nodes_not_ready
            and not self.cni_not_installed
        )

    def waiting_for(self) -> str:
        parts = []
        if self.nodes_not_ready:
            parts.append("the nodes " + ", ".join(self.nodes_not_ready) + " to be Ready")
        if self.cni_not_installed:
            parts.append(
                "the CNI managers of "
                + ", ".join(self.cni_not_installed)
                + " (answering, cni-not-ready taint removed)"
            )
        if self.unanswered:
            parts.append(f"the configurations to answer ({self.unanswered})")
        if not self.controller_polling:
            parts.append("the controller to poll its task queue")
        if self.agents_not_polling:
            parts.append("the agents of " + ", ".join(self.agents_not_polling))
        if self.gateways_missing:
            parts.append(
                "gateways " + ", ".join(f"{sgc} on {node}" for node, sgc in self.gateways_missing)
            )
        return "; ".join(parts) or "nothing"


def missing_gateways(
    wanted: Mapping[str, set[str]], held: Mapping[str, set[str]]
) -> tuple[tuple[str, str], ...]:
    """(node, configuration) pairs a configuration wants on a node that the node does not hold."""
    return tuple(
        sorted((node, sgc) for node, sgcs in wanted.items() for sgc in sgcs - held.get(node, set()))
    )


def held_gateways(gateway_statuses: Sequence[Mapping[str, object]]) -> dict[str, set[str]]:
    """Per node (the GatewayStatus's name), the configurations its agent reports ready."""
    held: dict[str, set[str]] = {}
    for obj in gateway_statuses:
        metadata = obj.get("metadata")
        spec = obj.get("spec")
        if not isinstance(metadata, Mapping) or not isinstance(spec, Mapping):
            continue
        parsed = GatewayStatusSpec.from_object(spec)
        held[str(metadata.get("name"))] = {
            g.static_gateway_configuration for g in parsed.ready_gateway_configurations
        }
    return held


async def _polled(client: Client, task_queue: str, kind: TaskQueueType.ValueType) -> bool:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=kind,
        )
    )
    return bool(response.pollers)


async def _wanted(client: Client, nodes: Sequence[str]) -> dict[str, set[str]]:
    wanted: dict[str, set[str]] = {}
    async for execution in client.list_workflows(RUNNING_CONFIGURATIONS):
        handle = client.get_workflow_handle(execution.id)
        for node in nodes:
            gateway = await handle.query(
                node_io.NODE_GATEWAY_QUERY,
                node,
                result_type=NodeGateway,
                rpc_timeout=_QUERY_TIMEOUT,
            )
            if gateway is not None:
                wanted.setdefault(node, set()).add(f"{gateway.sgc_namespace}/{gateway.sgc_name}")
    return wanted


async def serving_report(
    client: Client,
    nodes: Sequence[str],
    read_gateway_statuses: Callable[[], Awaitable[list[Mapping[str, object]]]],
) -> ServingReport:
    controller = await _polled(
        client,
        resource_names.CONTROLLER_TASK_QUEUE,
        TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    silent = [
        node
        for node in nodes
        if not await _polled(
            client,
            resource_names.node_task_queue(node),
            TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        )
    ]
    missing: tuple[tuple[str, str], ...] = ()
    if controller and not silent:
        wanted = await _wanted(client, nodes)
        missing = missing_gateways(wanted, held_gateways(await read_gateway_statuses()))
    return ServingReport(controller, tuple(silent), missing)


async def wait_serving(
    client: Client,
    nodes: Sequence[str],
    read_gateway_statuses: Callable[[], Awaitable[list[Mapping[str, object]]]],
    *,
    timeout: float,
    progress: Callable[[str], None],
    nodes_waiting: Callable[[], Awaitable[NodesWaiting]] | None = None,
) -> ServingReport:
    """Poll until serving; returns the last report (not serving when the timeout passed)."""
    deadline = time.monotonic() + timeout
    said = ""
    report = ServingReport(False, tuple(nodes), ())
    while time.monotonic() < deadline:
        try:
            report = await serving_report(client, nodes, read_gateway_statuses)
        except RPCError as err:  # e.g. a query to a workflow not yet picked up again
            report = ServingReport(
                report.controller_polling, report.agents_not_polling, (), unanswered=err.message
            )
        if nodes_waiting is not None:
            waiting = await nodes_waiting()
            report = replace(
                report,
                nodes_not_ready=waiting.not_ready,
                cni_not_installed=waiting.cni_not_installed,
            )
        if report.serving:
            return report
        progress_line = f"waiting for {report.waiting_for()}"
        if progress_line != said:
            progress(progress_line)
            said = progress_line
        await asyncio.sleep(0.2)
    return report
