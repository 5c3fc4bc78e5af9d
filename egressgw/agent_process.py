"""`egressgw agent`: one gateway node's agent process.

Parts: the load balancer's health probe (listening first, so the load balancer sees this node as
down rather than unreachable while the rest starts), the Kubernetes client (key Secrets, the
node's GatewayStatus), the dataplane (or, with --dry-run, a recorder), and a Temporal worker on
the node's task queue running the node activities.

Node sync (docs/design.md: "a node that comes back tells the workflows, which re-apply its state"):
once the worker runs, the agent lists the running GatewayConfigWorkflows, asks each what this
node should hold (query NODE_GATEWAY_QUERY), removes what none of them accounts for, and signals
NODE_AGENT_STARTED to those that have a gateway here so they re-apply it. The list, queries and
orphan removal repeat every --cleanup-interval; a round in which any query fails removes nothing,
since an unanswered configuration might want what is on the node.

Peer resync: every --peer-resync-interval each interface's peers are made again exactly what the
workflow last asked for (NodeActivities.resync_peers), so a peer added or removed on the node by
hand is undone without any call to Temporal or Kubernetes.

SIGTERM or SIGINT: the probe drains (every answer 503 for --probe-drain) while the worker lets
in-flight activities finish. Then the agent takes its gateways off the node (NodeActivities.
withdraw): a gateway left running would keep the pods' WireGuard sessions with this node while the
load balancer sends their packets elsewhere. With --keep-gateways-on-stop, or when the worker
stopped with an error, the gateways stay and keep forwarding, and the next agent on the node
adopts them. Then the clients close.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from opentelemetry import trace
from temporalio.client import Client, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError

from contracts import node_io, resource_names
from contracts.node_io import NodeAgentStarted, NodeGateway
from contracts.workflow_io import GATEWAY_CONFIG_WORKFLOW
from egressgw.agent_flags import AgentOptions
from egressgw.agent_metrics import AgentMetrics, agent_telemetry
from egressgw.service_clients import connect_temporal, kube_api_client

if TYPE_CHECKING:
    from kubernetes_asyncio.client import ApiClient
    from temporalio.worker import Worker

    from agent.gateway_dataplane import Dataplane
    from agent.node_activities import NodeActivities
    from agent.probe_server import ProbeServer

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

AGENT_SERVICE: Final = "egressgw-agent"  # service.name of its spans

RUNNING_GATEWAY_CONFIGS: Final = (
    f"WorkflowType = '{GATEWAY_CONFIG_WORKFLOW}' AND ExecutionStatus = 'Running'"
)
# Queries in flight at once: each is a workflow task on some controller worker.
QUERY_CONCURRENCY: Final = 8
# A configuration whose worker does not answer in this time counts as a failed query.
QUERY_TIMEOUT: Final = timedelta(seconds=10)
# How often the agent looks for pods the load balancer moved here (agent/session_handover.py):
# a moved pod's traffic resumes within about this long after the load balancer moved it.
HAND_OVER_INTERVAL: Final = timedelta(seconds=1)


# --- Node sync decisions (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class QueryOutcome:
    """One configuration's answer for this node."""

    workflow_id: str
    gateway: NodeGateway | None = None
    failure: str = ""  # why the query failed; "" when it answered


@dataclass(frozen=True)
class SyncPlan:
    # What the node should hold; None when some configuration did not answer, so nothing may
    # be removed this round.
    desired: tuple[NodeGateway, ...] | None
    to_signal: tuple[str, ...]  # workflow IDs to tell that this agent started


def plan_sync(
    outcomes: Iterable[QueryOutcome], *, signalled: Collection[str], startup_done: bool
) -> SyncPlan:
    """What one round does with the answers. Signals go out until a round has reached every
    configuration (startup_done), each workflow once per agent process."""
    answers = list(outcomes)
    failed = any(outcome.failure for outcome in answers)
    with_gateway = [o for o in answers if not o.failure and o.gateway is not None]
    desired = (
        None
        if failed
        else tuple(
            sorted(
                (o.gateway for o in with_gateway if o.gateway is not None),
                key=lambda g: (g.listen_port, g.sgc_uid),
            )
        )
    )
    to_signal = (
        ()
        if startup_done
        else tuple(sorted({o.workflow_id for o in with_gateway} - set(signalled)))
    )
    return SyncPlan(desired=desired, to_signal=to_signal)


def startup_finished(plan: SyncPlan, undelivered: Collection[str]) -> bool:
    """The start-up sync is over once a round had every answer and every signal went out."""
    return plan.desired is not None and not undelivered


# --- Node sync (I/O) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncRound:
    listed: int
    failed: tuple[str, ...]  # workflow IDs whose query failed
    removed: tuple[str, ...] | None  # what orphan removal changed; None: skipped
    signalled: tuple[str, ...]


# How a query fails: the server refuses or times out (RPCError), the workflow's code raises or
# has no such query (WorkflowQueryFailedError), or the answer is not a NodeGateway (TypeError,
# ValueError from the data converter).
QUERY_FAILURES: Final = (
    RPCError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    TypeError,
    ValueError,
)


class NodeSync:
    """List, query, remove orphans, signal: one round per call of `run_round`."""

    def __init__(
        self,
        client: Client,
        node_name: str,
        remove_orphans: Callable[[Sequence[NodeGateway]], Awaitable[list[str]]],
        *,
        agent_instance: str | None = None,
        visibility_query: str = RUNNING_GATEWAY_CONFIGS,
        concurrency: int = QUERY_CONCURRENCY,
        query_timeout: timedelta = QUERY_TIMEOUT,
    ) -> None:
        self._client = client
        self._node_name = node_name
        self._remove_orphans = remove_orphans
        self.agent_instance = agent_instance or str(uuid.uuid4())
        self._visibility_query = visibility_query
        self._limit = asyncio.Semaphore(concurrency)
        self._query_timeout = query_timeout
        self._signalled: set[str] = set()
        self.startup_done = False

    async def run_round(self) -> SyncRound:
        """One round is one span, the parent of its queries and signals."""
        with _tracer.start_as_current_span(
            "node sync", attributes={"k8s.node.name": self._node_name}
        ):
            return await self._round()

    async def _round(self) -> SyncRound:
        workflow_ids = [
            execution.id async for execution in self._client.list_workflows(self._visibility_query)
        ]
        outcomes = await asyncio.gather(*(self._query(wid) for wid in dict.fromkeys(workflow_ids)))
        plan = plan_sync(outcomes, signalled=self._signalled, startup_done=self.startup_done)
        failed = tuple(o.workflow_id for o in outcomes if o.failure)
        for outcome in outcomes:
            if outcome.failure:
                log.warning(
                    "configuration %s did not say what node %s should hold: %s",
                    outcome.workflow_id,
                    self._node_name,
                    outcome.failure,
                )
        removed: tuple[str, ...] | None = None
        if plan.desired is None:
            log.warning(
                "not removing orphans this round: %d of %d configurations did not answer",
                len(failed),
                len(outcomes),
            )
        else:
            removed = tuple(await self._remove_orphans(plan.desired))  # logged by the node
        delivered = await self._signal(plan.to_signal)
        self._signalled.update(delivered)
        undelivered = set(plan.to_signal) - set(delivered)
        if not self.startup_done and startup_finished(plan, undelivered):
            self.startup_done = True
            log.info(
                "node sync done: %d configuration(s) hold a gateway here, told to re-apply",
                len(self._signalled),
            )
        return SyncRound(
            listed=len(outcomes), failed=failed, removed=removed, signalled=tuple(delivered)
        )

    async def _query(self, workflow_id: str) -> QueryOutcome:
        async with self._limit:
            handle = self._client.get_workflow_handle(workflow_id)
            try:
                # None comes back as a null payload, whatever result_type says.
                gateway: object = await handle.query(
                    node_io.NODE_GATEWAY_QUERY,
                    self._node_name,
                    result_type=NodeGateway,
                    rpc_timeout=self._query_timeout,
                )
            except QUERY_FAILURES as exc:  # no answer; the plan removes nothing this round
                return QueryOutcome(workflow_id, failure=f"{type(exc).__name__}: {exc}")
        if gateway is not None and not isinstance(gateway, NodeGateway):
            return QueryOutcome(workflow_id, failure=f"unexpected answer {type(gateway)}")
        return QueryOutcome(workflow_id, gateway=gateway)

    async def _signal(self, workflow_ids: Sequence[str]) -> list[str]:
        started = NodeAgentStarted(node_name=self._node_name, agent_instance=self.agent_instance)
        delivered: list[str] = []
        for workflow_id in workflow_ids:
            try:
                await self._client.get_workflow_handle(workflow_id).signal(
                    node_io.NODE_AGENT_STARTED, started
                )
            except RPCError as exc:  # retried next round (the workflow may have ended)
                log.warning("could not tell %s that the agent started: %s", workflow_id, exc)
                continue
            delivered.append(workflow_id)
        return delivered

    async def run(self, interval: timedelta, stop: asyncio.Event) -> None:
        """Rounds until `stop`: the first at once, then every `interval`."""
        while not stop.is_set():
            try:
                done = await self.run_round()
                log.debug("node sync round: %s", done)
            except Exception:  # a failed round is retried next interval, not fatal
                log.exception("node sync round failed; retrying in %s", interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval.total_seconds())


# --- Session hand-over ---------------------------------------------------------------------------


async def run_every(
    what: str, action: Callable[[], Awaitable[object]], interval: timedelta, stop: asyncio.Event
) -> None:
    """`action` every `interval` until `stop` (each logs what it did). A failed round is logged
    and the next one tries again (an interface may be going away under it)."""
    while not stop.is_set():
        try:
            await action()
        except Exception:
            log.warning("%s round failed", what, exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval.total_seconds())


# --- The process ---------------------------------------------------------------------------------


def open_node_dataplane(options: AgentOptions) -> Dataplane:
    """The dataplane that changes this node, or with --dry-run the one that records instead."""
    if options.dry_run is not None:
        from agent.dry_run_dataplane import DryRunDataplane

        options.dry_run.parent.mkdir(parents=True, exist_ok=True)
        return DryRunDataplane(options.dry_run, options.settings)
    from agent.gateway_dataplane import open_dataplane

    return open_dataplane(options.settings, host_netns=options.host_netns)


class AgentProcess:
    """One agent process's parts, started and stopped in order."""

    def __init__(self, options: AgentOptions, *, agent_instance: str | None = None) -> None:
        self.options = options
        self.agent_instance = agent_instance or str(uuid.uuid4())
        self.metrics: AgentMetrics | None = None

    async def run(self, stop: asyncio.Event) -> int:
        from agent.probe_server import ProbeServer, listening_socket

        options = self.options
        sock = await asyncio.to_thread(
            listening_socket, options.probe_host, options.probe_port, netns=options.host_netns
        )
        probe = ProbeServer(
            options.probe_host,
            options.probe_port,
            drain_seconds=options.probe_drain.total_seconds(),
        )
        await probe.start(sock)
        where = f" in network namespace {options.host_netns}" if options.host_netns else ""
        log.info("health probe on port %d%s", probe.port, where)
        telemetry, self.metrics = agent_telemetry(options.metrics)
        try:
            await telemetry.start(
                options.tracing,
                AGENT_SERVICE,
                {"k8s.node.name": options.node_name, "service.instance.id": self.agent_instance},
            )
            temporal = await connect_temporal(
                options.temporal,
                stop,
                runtime=telemetry.runtime,
                interceptors=telemetry.interceptors,
            )
            if temporal is None:
                return 0
            log.info("connected to Temporal at %s", options.temporal.describe())
            kube = await kube_api_client(options.kubeconfig)
            try:
                return await self._serve(temporal, kube, probe, stop)
            finally:
                await kube.close()
        finally:
            await probe.stop()  # no-op when _serve already drained it
            await telemetry.stop()

    async def _serve(
        self, temporal: Client, kube: ApiClient, probe: ProbeServer, stop: asyncio.Event
    ) -> int:
        from temporalio.worker import Worker

        from agent.gateway_secret_reader import GatewaySecretReader
        from agent.gateway_status_report import GatewayStatusReport
        from agent.node_activities import NodeActivities

        options = self.options
        task_queue = resource_names.node_task_queue(options.node_name)
        dataplane = open_node_dataplane(options)
        try:
            status = GatewayStatusReport(
                kube, node_name=options.node_name, namespace=options.namespace
            )
            # What a GatewayStatus lists was made ready by this agent: one left by an earlier
            # agent (killed, or before the node's network was rebuilt) is cleared first.
            await status.flush()
            node = NodeActivities(
                options.node_name,
                dataplane,
                GatewaySecretReader(kube),
                probe,
                status,
                recent_grace=options.orphan_grace.total_seconds(),
            )
            if self.metrics is not None:
                self.metrics.watch(node.gateway_peers)
            worker = Worker(
                temporal,
                task_queue=task_queue,
                activities=node.activities(),
                graceful_shutdown_timeout=options.graceful_shutdown,
            )
            sync = NodeSync(
                temporal, options.node_name, node.remove_orphans, agent_instance=self.agent_instance
            )
            exit_code = await self._until_stopped(worker, sync, probe, stop, task_queue, node)
            await node.settle()
            if exit_code == 0 and options.withdraw_on_stop:
                changes = await node.withdraw()
                log.info(
                    "agent stopped; gateways withdrawn from the node (%d changes)", len(changes)
                )
            else:
                log.info("agent stopped; gateway interfaces stay in place")
            return exit_code
        finally:
            await dataplane.close()

    async def _until_stopped(
        self,
        worker: Worker,
        sync: NodeSync,
        probe: ProbeServer,
        stop: asyncio.Event,
        task_queue: str,
        node: NodeActivities,
    ) -> int:
        options = self.options
        worker_task = asyncio.create_task(worker.run(), name="temporal worker")
        stop_task = asyncio.create_task(stop.wait(), name="stop requested")
        sync_stop = asyncio.Event()
        sync_task = asyncio.create_task(
            sync.run(options.cleanup_interval, sync_stop), name="node sync"
        )
        hand_over_task = asyncio.create_task(
            run_every("session hand-over", node.hand_over, HAND_OVER_INTERVAL, sync_stop),
            name="session hand-over",
        )
        resync_task = asyncio.create_task(
            run_every("peer resync", node.resync_peers, options.peer_resync_interval, sync_stop),
            name="peer resync",
        )
        log.info(
            "agent running: node %s, task queue %s, cleanup every %s, peer resync every %s%s",
            options.node_name,
            task_queue,
            options.cleanup_interval,
            options.peer_resync_interval,
            f", dry run recorded in {options.dry_run}" if options.dry_run else "",
        )
        exit_code = 0
        try:
            done, _ = await asyncio.wait(
                {worker_task, stop_task}, return_when=asyncio.FIRST_COMPLETED
            )
            if worker_task in done:
                log.error("the Temporal worker stopped: %s", worker_task.exception() or "no error")
                exit_code = 1
            else:
                log.info("stopping: probes drain while in-flight activities finish")
        finally:
            stop_task.cancel()
            sync_stop.set()
            for task in (sync_task, hand_over_task, resync_task):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            shutdown = [probe.stop()]
            if not worker_task.done():
                shutdown.append(worker.shutdown())
            await asyncio.gather(*shutdown)
            with contextlib.suppress(Exception):
                await worker_task
        return exit_code


def _forget_parent_signal_handling() -> None:
    # A forked child shares the parent's signal wakeup fd (asyncio's self-pipe): a SIGTERM it
    # receives would be read by the parent's event loop as the parent's own, and stop it.
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)


@functools.cache  # once per process: each registration would run on every fork
def isolate_forked_children() -> None:
    """Keep signals sent to forked helper processes away from this process's event loop.

    pyroute2 forks a helper to enter a network namespace and ends it with SIGTERM; the helper
    inherits asyncio's signal handling, so without this an agent or dev stack that touches a
    namespace would stop itself. Call once, before installing signal handlers.
    """
    os.register_at_fork(after_in_child=_forget_parent_signal_handling)


async def run_agent(options: AgentOptions) -> int:
    """Run until SIGTERM/SIGINT; the process's exit code."""
    isolate_forked_children()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await AgentProcess(options).run(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
