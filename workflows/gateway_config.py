"""GatewayConfigWorkflow: one long-lived entity workflow per StaticGatewayConfiguration.

Deliveries (signal `deliver` or update `apply`) set the desired state; the run loop reconciles it
pass by pass (docs/control-plane.md): key Secret ‖ gateway pool, load balancer rule ‖ public IP
prefix, pool ipConfig, gateway nodes, status. A deletion tears down what the configuration owns, in
reverse. Every decision comes from gateway_config_decisions, every message from
gateway_config_status and every activity call from gateway_config_steps; this module holds the
entity's state and sequences the steps, recording before each step what that step may create, so
that a failed pass compensates exactly that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final

from temporalio import workflow
from temporalio.exceptions import ActivityError, FailureError, is_cancelled_exception

from contracts import kube_names, node_io, resource_names, search_attributes
from contracts.activity_io import EventInput, LoadBalancerRule, PoolIpConfig, StatusUpdate
from contracts.failure_types import failure_reason
from contracts.node_io import NodeAgentStarted, NodeGateway, PeerTable
from contracts.spec_validation import FieldError, controller_errors, validate_spec
from contracts.workflow_io import (
    APPLY_SPEC,
    DELIVER_SPEC,
    GATEWAY_CONFIG_WORKFLOW,
    GET_STATUS,
    NODES_CHANGED,
    PEERS_CHANGED,
    AppliedConfiguration,
    ConfigurationStatus,
    GatewayConfigInput,
    GatewayConfigState,
    NodeProblem,
    SpecDelivery,
)
from workflows import gateway_config_decisions as decide
from workflows import gateway_config_status as render
from workflows import node_decisions as nodes
from workflows import node_fanout as fanout
from workflows import pass_metrics
from workflows.failures import failure_causes, failure_types
from workflows.gateway_config_decisions import Phase, Provisioned, TeardownStep
from workflows.gateway_config_steps import ConfigSteps

# Command-order changes since 0.1.0 (tests/replay/README.md); each id names what it changed.
# After continue-as-new, node work (peers, a restarted agent) runs a node pass instead of a full
# verifying pass through Azure: under peer churn the history fills in seconds, and a full pass
# then held every peer change back by the time the single writers take.
PATCH_NODE_PASS_AFTER_CONTINUE: Final = "node-pass-after-continue-as-new"
# Peer passes leave out nodes whose agent was missing: each waited the schedule-to-start timeout
# and held back the peers of every other gateway.
PATCH_SKIP_ABSENT_AGENTS: Final = "peer-pass-skips-absent-agents"
# The periodic full peer sync on a timer of its own (ControllerSettings.peer_sync_seconds), and
# the drift check due from the last full pass rather than from the last pass of any kind.
PATCH_PEER_SYNC_TIMER: Final = "peer-sync-timer"
# The PodEndpoints are listed by a local activity: a peer pass then waits for one workflow task
# fewer (the list is mostly a read of the controller's watch cache).
PATCH_LOCAL_PEER_LIST: Final = "local-peer-list"
# Peers that could not be listed are left on the nodes as they are: a peer pass used to sync an
# empty set then, taking every pod off its gateways after a failed list.
PATCH_KEEP_PEERS_UNLISTED: Final = "keep-peers-when-unlisted"
# Continue as new once the history passes HISTORY_BYTES_LIMIT, well before the server suggests it
# (4 MB): under peer churn every pass records the whole peer set, and a signal that arrives as
# the run completes makes the worker replay the whole history first (seconds at 4 MB).
PATCH_SMALLER_HISTORIES: Final = "continue-as-new-at-history-bytes-limit"
# The controller's own refusals (contracts/spec_validation.controller_errors: a prefix size Azure
# does not offer, a size in private mode, a bring-your-own prefix in another subscription) and a
# nodepool's prefix size tag Azure does not offer: refused before any activity, or before the
# first Azure write; these specs used to reach Azure.
PATCH_CONTROLLER_REFUSALS: Final = "controller-refusals-before-azure"
# A bring-your-own prefix is checked before the load balancer rule is written, not alongside it:
# a prefix that does not exist then costs no rule write (and no compensation).
PATCH_BYO_PREFIX_FIRST: Final = "byo-prefix-checked-before-rule"
HISTORY_BYTES_LIMIT: Final = 1_500_000
# Teardown removes the ipConfig before the load balancer rule (was: rule first): two
# configurations of one pool deleted together removed the pool's last rules, and with them the
# backend pool that the scale set's primary ipConfig still referenced, so the next scale set
# write was refused (InvalidResourceReference).
PATCH_IP_CONFIG_BEFORE_RULE: Final = "teardown-ipconfig-before-rule"
# A node whose agent stopped answering in the middle of a call (its heartbeat timeout, no longer
# retried: activity_calls.NODE) is left out of peer passes until its agent says it started, as a
# node without agent is.
PATCH_SILENT_NODES_ABSENT: Final = "silent-nodes-left-out-of-peer-passes"
# Deletion does not wait for the nodes: their gateways are removed while Azure and Kubernetes are
# cleaned up, and the finalizer goes once those are done; a node whose agent does not answer
# removes the leftovers itself when it returns (the agent's orphan removal).
PATCH_DELETE_WITHOUT_WAITING_FOR_NODES: Final = "delete-without-waiting-for-nodes"
# An apply waiting on a node whose agent says it started (it was killed in the middle) is given up
# and made again to the new agent at once, rather than after the answer timeout and the pass.
PATCH_REAPPLY_RESTARTED_AT_ONCE: Final = "re-apply-restarted-agents-at-once"
# Nodes named for not answering are tried again on a timer of their own (node_decisions
# node_retry_seconds: 15 s doubling up to the drift interval), Azure untouched: an agent that
# stalled or lost the network for a while comes back without a start signal, and waited for the
# drift pass (5 minutes, longer for a Degraded configuration).
PATCH_NODE_RETRY_TIMER: Final = "node-retry-timer"


class _Wake(Enum):
    WORK = "work"  # a delivery, or node work (peers changed, an agent started)
    DRIFT = "drift"  # the drift timer: a verifying pass
    PEER_SYNC = "peer sync"  # the peer sync timer: re-list the peers and sync every node
    NODE_RETRY = "node retry"  # the node retry timer: try the nodes that did not answer again


class _Refused(Exception):
    """A check in this workflow (not Azure) refused the configuration, e.g. prefix capacity;
    `reason` is the Degraded condition's."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class _StepFailed(Exception):
    """One of several concurrent steps failed; names it so the user's message can."""

    def __init__(self, step: str, error: BaseException) -> None:
        super().__init__(step)
        self.step = step
        self.error = error


async def _all(*steps: tuple[str, Awaitable[Any]]) -> list[Any]:
    """Run named steps concurrently and wait for every one of them before raising the first
    failure, so that compensation never overlaps a step that is still running."""
    results = await asyncio.gather(*(step for _, step in steps), return_exceptions=True)
    for (name, _), result in zip(steps, results, strict=True):
        if isinstance(result, asyncio.CancelledError) or is_cancelled_exception(result):
            raise result
        if isinstance(result, BaseException):
            raise _StepFailed(name, result)
    return results


def _initial_state() -> GatewayConfigState:
    return GatewayConfigState(
        status=ConfigurationStatus(phase=Phase.PENDING, observed_generation=0)
    )


@workflow.defn(name=GATEWAY_CONFIG_WORKFLOW)
class GatewayConfigWorkflow:
    @workflow.init
    def __init__(self, input: GatewayConfigInput) -> None:
        self._input = input
        self._settings = input.settings
        self._steps = ConfigSteps(input.settings)
        self._state = input.state or _initial_state()  # all that continue-as-new carries
        # Deliveries accepted vs. reconciled: `apply` callers wait for their delivery's pass.
        self._accepted = 1 if decide.reconcile_wanted(self._state.status, self._desired) else 0
        self._reconciled = 0
        self._resync = False
        self._finished = False
        self._pass = 0
        self._last_written: StatusUpdate | None = None
        self._step = "waiting for a delivery"
        # Node side: peers are re-listed after continue-as-new (None: not listed this run).
        self._peers: PeerTable | None = None
        self._peers_changed = self._state.peers_changed
        self._restarted_nodes: set[str] = set(self._state.restarted_nodes)
        # Agent start signals per node, this run: an apply waiting on a node whose agent starts
        # is made again at once (node_fanout.Restarts).
        self._agent_starts: dict[str, int] = {}
        # With a peer sync timer of its own (PATCH_PEER_SYNC_TIMER): when the drift check and
        # the next full peer sync are due; None: from the next wait on.
        self._drift_due: datetime | None = None
        self._peer_sync_due: datetime | None = None
        # The node retry timer (PATCH_NODE_RETRY_TIMER): when the nodes that did not answer are
        # tried again, which nodes those are, and how many tries of them on their own so far
        # (the back-off; not carried over continue-as-new).
        self._node_retry_due: datetime | None = None
        self._unanswering: set[str] = set()
        self._node_retries = 0
        self._provisioned: Provisioned | None = None  # the last good pass, this run
        # Node gateway removals a deletion runs alongside its other steps (_teardown).
        self._node_removals: list[asyncio.Future[None]] = []
        # Upserted only on change: each upsert is a history event, and drift passes are frequent.
        applied = self._state.applied
        self._pool_attribute = applied.pool.name if applied and applied.pool else ""

    # The parts of the carried state, by name.

    @property
    def _desired(self) -> SpecDelivery | None:
        return self._state.desired

    @property
    def _applied(self) -> AppliedConfiguration | None:
        return self._state.applied

    @_applied.setter
    def _applied(self, applied: AppliedConfiguration | None) -> None:
        self._state.applied = applied

    @property
    def _status(self) -> ConfigurationStatus:
        return self._state.status

    @_status.setter
    def _status(self, status: ConfigurationStatus) -> None:
        self._state.status = status

    # --- Messages --------------------------------------------------------------------------------

    @workflow.signal(name=DELIVER_SPEC)
    def deliver(self, delivery: SpecDelivery) -> None:
        self._accept(delivery)

    @workflow.update(name=APPLY_SPEC)
    async def apply(self, delivery: SpecDelivery) -> ConfigurationStatus:
        self._accept(delivery)
        target = self._accepted
        await workflow.wait_condition(lambda: self._reconciled >= target or self._finished)
        return self._status

    @workflow.signal(name=NODES_CHANGED)
    def nodes_changed(self) -> None:
        self._resync = True

    @workflow.signal(name=PEERS_CHANGED)
    def peers_changed(self) -> None:
        self._peers_changed = True

    @workflow.signal(name=node_io.NODE_AGENT_STARTED)
    def node_agent_started(self, started: NodeAgentStarted) -> None:
        self._restarted_nodes.add(started.node_name)
        self._agent_starts[started.node_name] = self._agent_starts.get(started.node_name, 0) + 1

    @workflow.query(name=GET_STATUS)
    def status(self) -> ConfigurationStatus:
        return self._status

    @workflow.query(name=node_io.NODE_GATEWAY_QUERY)
    def node_gateway(self, node_name: str) -> NodeGateway | None:
        """What `node_name` should hold for this configuration, for its agent's cleanup."""
        if self._applied is None:
            return None
        return nodes.gateway_for(self._applied.node_gateways, node_name)

    def _accept(self, delivery: SpecDelivery) -> None:
        if decide.accept_delivery(self._desired, delivery):
            self._state.desired = delivery
            self._accepted += 1

    # --- Run loop --------------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: GatewayConfigInput) -> ConfigurationStatus:
        workflow.upsert_search_attributes(
            [
                search_attributes.NAMESPACE.value_set(input.namespace),
                search_attributes.NAME.value_set(input.name),
            ]
        )
        self._publish()
        while True:
            wake = await self._wait_for_work()
            verify = wake is _Wake.DRIFT
            if wake is _Wake.PEER_SYNC:
                self._peers_changed = True  # a full peer sync: re-list, sync every node
            if wake is _Wake.NODE_RETRY:
                await self._retry_unanswering_nodes()
                await self._continue_as_new_if_suggested()
                continue
            if not verify and not self._has_work():
                # Only node work: new peers, a restarted agent or the peer sync timer.
                if self._provisioned is not None or workflow.patched(
                    PATCH_NODE_PASS_AFTER_CONTINUE
                ):
                    # Azure is left alone
                    await self._node_pass(authoritative=wake is _Wake.PEER_SYNC)
                    await self._continue_as_new_if_suggested()
                    continue
                verify = True  # after continue-as-new: a verifying pass, which does the nodes too
            target = self._accepted
            resync, self._resync = self._resync, False
            # A full pass does all three (it tries every node)
            self._drift_due = self._peer_sync_due = self._node_retry_due = None
            finished = await self._reconcile(verify=verify or resync)
            self._reconciled = max(self._reconciled, target)
            if finished:
                self._finished = True
                await workflow.wait_condition(workflow.all_handlers_finished)
                return self._status
            await self._continue_as_new_if_suggested()

    async def _wait_for_work(self) -> _Wake:
        """Wait for a delivery or a node change, or for the drift or peer sync timer. A Degraded
        configuration waits longer after each failed pass (node_decisions)."""
        timeout: timedelta | None = None
        if decide.drift_check_due(self._status):
            timeout = timedelta(seconds=self._settings.drift_check_seconds)
            if self._status.phase == Phase.DEGRADED:
                timeout *= nodes.retry_backoff_factor(self._status.failed_passes)
        peer_sync = self._peer_sync_interval()
        node_retry = self._node_retry_interval()
        if (
            node_retry is not None
            and (timeout is None or node_retry < timeout)
            and workflow.patched(PATCH_NODE_RETRY_TIMER)
        ):
            if peer_sync is not None and (timeout is None or peer_sync < timeout):
                peer_sync = peer_sync if workflow.patched(PATCH_PEER_SYNC_TIMER) else None
            else:
                peer_sync = None
            return await self._wait_until_due(timeout, peer_sync, node_retry)
        if (
            peer_sync is not None
            and (timeout is None or peer_sync < timeout)
            and workflow.patched(PATCH_PEER_SYNC_TIMER)
        ):
            return await self._wait_until_due(timeout, peer_sync)
        try:
            await workflow.wait_condition(
                lambda: self._has_work() or self._node_work(), timeout=timeout
            )
        except TimeoutError:
            return _Wake.DRIFT
        return _Wake.WORK

    def _peer_sync_interval(self) -> timedelta | None:
        """The peer sync timer's interval, when it runs on its own: configured, and nodes to
        sync."""
        seconds = self._settings.peer_sync_seconds
        if seconds <= 0 or not self._settings.configure_nodes:
            return None
        if self._applied is None or not self._applied.node_gateways:
            return None
        return timedelta(seconds=seconds)

    def _node_retry_interval(self) -> timedelta | None:
        """How long after the last try the nodes named for not answering are tried again; None
        when none is (which resets the back-off, as a newly named node does)."""
        unanswering = nodes.unanswering_nodes(self._status.node_problems)
        if not self._settings.configure_nodes or self._applied is None:
            unanswering = set()
        self._node_retries = nodes.node_retries_after(
            self._unanswering, unanswering, self._node_retries
        )
        if unanswering - self._unanswering or not unanswering:
            self._node_retry_due = None
        self._unanswering = unanswering
        if not unanswering:
            return None
        return timedelta(
            seconds=nodes.node_retry_seconds(
                self._node_retries,
                self._settings.node_answer_timeout_seconds,
                self._settings.drift_check_seconds,
            )
        )

    async def _wait_until_due(
        self,
        drift: timedelta | None,
        peer_sync: timedelta | None,
        node_retry: timedelta | None = None,
    ) -> _Wake:
        """As _wait_for_work, with deadlines kept across node passes: the drift check falls due
        `drift` after the last full pass, the peer sync `peer_sync` after the last pass that
        synced every node's peers, the node retry `node_retry` after the last try of the nodes
        that did not answer. On a tie the drift pass goes first (it does the others' work too),
        then the peer sync."""
        now = workflow.now()
        if peer_sync is not None and self._peer_sync_due is None:
            self._peer_sync_due = now + peer_sync
        if drift is None:
            self._drift_due = None
        elif self._drift_due is None:
            self._drift_due = now + drift
        if node_retry is not None and self._node_retry_due is None:
            self._node_retry_due = now + node_retry
        candidates = [
            (due, wake)
            for due, wake, wanted in (
                (self._drift_due, _Wake.DRIFT, drift),
                (self._peer_sync_due, _Wake.PEER_SYNC, peer_sync),
                (self._node_retry_due, _Wake.NODE_RETRY, node_retry),
            )
            if due is not None and wanted is not None
        ]
        due, wake = min(candidates, key=lambda candidate: candidate[0])  # the first on a tie
        if due <= now:
            return _Wake.WORK if self._has_work() or self._node_work() else wake
        try:
            await workflow.wait_condition(
                lambda: self._has_work() or self._node_work(), timeout=due - now
            )
        except TimeoutError:
            return wake
        return _Wake.WORK

    async def _continue_as_new_if_suggested(self) -> None:
        info = workflow.info()
        if not info.is_continue_as_new_suggested() and not (
            info.get_current_history_size() > HISTORY_BYTES_LIMIT
            and workflow.patched(PATCH_SMALLER_HISTORIES)
        ):
            return
        # An update waiting for a pass would never finish if we waited for it here: serve it.
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() or self._has_work())
        if self._has_work():
            return
        self._state.peers_changed = self._peers_changed
        self._state.restarted_nodes = tuple(sorted(self._restarted_nodes))
        workflow.continue_as_new(replace(self._input, state=self._state))

    def _has_work(self) -> bool:
        return self._accepted > self._reconciled or self._resync

    async def _retry_unanswering_nodes(self) -> None:
        """The node retry timer: the gateway again on the nodes named for not answering (and
        the other failing ones), as when their agent says it started; Azure untouched."""
        self._node_retries += 1
        self._node_retry_due = None
        await self._node_pass(retry=self._unanswering)

    def _node_work(self) -> bool:
        """New peers or a restarted agent, for a configuration whose nodes were configured."""
        if self._applied is None or not self._applied.node_gateways:
            return False
        return self._peers_changed or bool(self._restarted_nodes)

    def _superseded(self, delivery: SpecDelivery) -> bool:
        """A newer delivery arrived during the pass: stop between steps and reconcile that."""
        return self._desired is not delivery

    def _tag(self, desired: SpecDelivery) -> str:
        return f"{desired.sgc.uid}/g{desired.generation}/p{self._pass}"

    async def _reconcile(self, *, verify: bool) -> bool:
        """One pass towards the desired state; True when the object is gone and we are done.
        Its duration and outcome go to the controller's metrics (pass_metrics)."""
        desired = self._desired
        if desired is None:
            return False
        started = workflow.now()
        finished = await self._reconcile_pass(desired, verify=verify)
        pass_metrics.pass_finished(
            self._settings,
            desired.sgc.namespace,
            desired.sgc.name,
            deleting=desired.deleting,
            took=workflow.now() - started,
            failed=self._status.phase in (Phase.DEGRADED, Phase.INVALID),
        )
        return finished

    async def _reconcile_pass(self, desired: SpecDelivery, *, verify: bool) -> bool:
        self._pass += 1
        applied = self._applied
        if applied is not None and applied.sgc.uid != desired.sgc.uid:
            # A new object under the same name: the old one's resources go first.
            try:
                await self._teardown(applied, f"replaced/{applied.sgc.uid}/p{self._pass}")
            except ActivityError as err:
                await self._report_failure(
                    desired,
                    render.failure_message("tearing down the replaced object", failure_causes(err)),
                    failure_reason(failure_types(err)),
                )
                return False
            self._applied = None
        if desired.deleting:
            return await self._delete(desired)
        errors = validate_spec(desired.spec)
        own = controller_errors(desired.spec, self._settings.scope.subscription_id)
        # With the CRD's errors the pass stops here anyway: the marker is needed only when the
        # controller's own refusal is what stops it.
        if own and (errors or workflow.patched(PATCH_CONTROLLER_REFUSALS)):
            errors += own
        if errors:
            await self._report_invalid(desired, errors)
            return False
        await self._provision(desired, verify=verify)
        return False

    # --- Invalid spec ----------------------------------------------------------------------------

    async def _report_invalid(self, desired: SpecDelivery, errors: list[FieldError]) -> None:
        message = render.invalid_spec_message(errors)
        self._set_phase(Phase.INVALID, desired, "waiting for a corrected spec", message)
        await self._write_status(render.invalid_status(desired, errors))
        await self._event(
            desired, kube_names.EVENT_TYPE_WARNING, kube_names.EVENT_INVALID_SPEC, message
        )

    # --- Provisioning ----------------------------------------------------------------------------

    async def _provision(self, desired: SpecDelivery, *, verify: bool) -> None:
        uid = desired.sgc.uid
        tag = self._tag(desired)
        steps = self._steps
        before = self._applied or AppliedConfiguration(sgc=desired.sgc)
        retrying = self._status.phase == Phase.DEGRADED
        if not verify:
            self._set_phase(Phase.PROVISIONING, desired, "starting")
            await self._write_status(render.provisioning_status(desired))
            await self._event(
                desired,
                kube_names.EVENT_TYPE_NORMAL,
                kube_names.EVENT_RECONCILING,
                f"provisioning generation {desired.generation}",
            )
        plan = decide.plan_prefix(desired)
        record = replace(before, key_secret=resource_names.gateway_secret_name(uid))
        self._applied = record
        try:
            self._set_step("key Secret ‖ resolve gateway pool")
            key, pool = await _all(
                ("gateway key Secret", steps.ensure_key(desired, tag)),
                ("gateway pool lookup", steps.resolve_pool(desired, tag)),
            )
            if self._superseded(desired):
                return
            if pool.name != self._pool_attribute:
                self._pool_attribute = pool.name
                workflow.upsert_search_attributes([search_attributes.POOL.value_set(pool.name)])
            problem = decide.prefix_capacity_error(desired, pool)
            if problem is not None:
                self._step = "public IP prefix capacity check"
                raise _Refused(problem, kube_names.REASON_PUBLIC_IP_PREFIX_TOO_SMALL)
            problem = decide.prefix_length_error(desired, pool)
            if problem is not None and workflow.patched(PATCH_CONTROLLER_REFUSALS):
                self._step = "public IP prefix size check"
                raise _Refused(problem, kube_names.REASON_INVALID_GATEWAY_POOL)

            rule = LoadBalancerRule(
                owner_uid=uid,
                lb_pool_name=pool.lb_pool_name,
                probe_path=resource_names.probe_path(uid),
            )
            if plan.kind != decide.PrefixKind.NONE and (
                retrying
                or (plan.kind is decide.PrefixKind.BYO and workflow.patched(PATCH_BYO_PREFIX_FIRST))
            ):
                # After a failure, the prefix (the usual refusal: quota, a wrong BYO prefix) is
                # settled before the rule, so a refused retry creates no rule to compensate; a
                # user's prefix is only read, so it is checked first on every pass.
                record = replace(record, managed_prefix=plan.managed_name or record.managed_prefix)
                self._applied = record
                self._set_step("public IP prefix" + (" (retry)" if retrying else ""))
                prefix = await steps.ensure_prefix(plan, pool, tag)
                record = replace(record, rule_registered=True)
                self._applied = record
                self._set_step("load balancer rule" + (" (retry)" if retrying else ""))
                rule_result = await steps.ensure_rule(rule, tag, verify=verify)
            else:
                record = replace(
                    record,
                    rule_registered=True,
                    managed_prefix=plan.managed_name or record.managed_prefix,
                )
                self._applied = record
                self._set_step("load balancer rule ‖ public IP prefix")
                rule_result, prefix = await _all(
                    ("load balancer rule", steps.ensure_rule(rule, tag, verify=verify)),
                    ("public IP prefix", steps.ensure_prefix(plan, pool, tag)),
                )
            if self._superseded(desired):
                return

            ip_config = PoolIpConfig(
                owner_uid=uid,
                ip_config_name=resource_names.managed_resource_name(uid),
                public_ip_prefix_id=prefix.id if prefix is not None else "",
            )
            record = replace(record, pool=pool, public_ip_prefix_id=ip_config.public_ip_prefix_id)
            self._applied = record
            self._set_step(f"ipConfig on gateway pool {pool.name}")
            pool_result = await steps.ensure_ip_config(pool, ip_config, tag, verify=verify)

            release = decide.plan_release(before, replace(record, managed_prefix=plan.managed_name))
            if release.old_pool is not None:
                self._set_step(f"release old gateway pool {release.old_pool.name}")
                await steps.remove_ip_config(release.old_pool, uid, f"release/{tag}")
            if release.managed_prefix:
                self._set_step("delete the replaced managed prefix")
                await steps.delete_prefix(release.managed_prefix, f"release/{tag}")
            self._applied = replace(
                record, managed_prefix=plan.managed_name, generation=desired.generation
            )
        except (ActivityError, _Refused, _StepFailed, asyncio.CancelledError) as err:
            await self._compensate(desired, before, err)
            if is_cancelled_exception(err):
                raise
            return

        provisioned = Provisioned(
            key=key,
            pool=pool,
            frontend_ip=rule_result.frontend_ip,
            port=rule_result.port,
            prefix=prefix,
            nodes=pool_result.nodes,
        )
        if self._settings.configure_nodes:
            provisioned = await self._configure_nodes(desired, provisioned, tag)
        self._provisioned = provisioned
        previous_phase = self._status.phase
        message = render.ready_message(provisioned)
        await self._report_provisioned(desired, provisioned)
        if verify:
            for part, changes in (
                ("load_balancer", rule_result.repaired),
                ("gateway_pool", pool_result.repaired),
            ):
                pass_metrics.drift_repaired(
                    desired.sgc.namespace, part, sum(1 for c in changes if c.concerns(uid))
                )
            repaired = render.drift_event_message(
                (*rule_result.repaired, *pool_result.repaired), uid
            )
            if repaired is not None:
                workflow.logger.info("drift repaired for %s: %s", uid, repaired)
                await self._event(
                    desired, kube_names.EVENT_TYPE_NORMAL, render.EVENT_DRIFT_REPAIRED, repaired
                )
        if not verify or previous_phase != Phase.READY:
            await self._event(
                desired, kube_names.EVENT_TYPE_NORMAL, kube_names.EVENT_RECONCILED, message
            )

    async def _compensate(
        self, desired: SpecDelivery, before: AppliedConfiguration, err: BaseException
    ) -> None:
        """Undo exactly what this pass created, shielded from cancellation, then report."""
        step, cause = (err.step, err.error) if isinstance(err, _StepFailed) else (self._step, err)
        reason = kube_names.REASON_PROVISIONING_FAILED
        if is_cancelled_exception(cause):
            message = render.cancelled_message(step)
        elif isinstance(cause, _Refused):
            message = render.failure_message(step, [str(cause)])
            reason = cause.reason
        else:
            message = render.failure_message(step, failure_causes(cause))
            reason = failure_reason(failure_types(cause))
        after = self._applied or before
        created = decide.created_by_run(before, after)
        self._set_phase(Phase.DEGRADED, desired, "compensating", message)

        async def undo() -> None:
            for step in self._teardown_steps(created):
                await self._undo(step, created, f"compensate/{desired.sgc.uid}/p{self._pass}")
                current = self._applied or before
                self._applied = decide.without_step(current, step, restore=before)

        try:
            await asyncio.shield(asyncio.ensure_future(undo()))
        except ActivityError as undo_err:
            # What could not be undone stays in the applied record for the next pass or deletion.
            message += "; cleanup incomplete: " + render.failure_message(
                "compensation", failure_causes(undo_err)
            )
        await self._report_failure(desired, message, reason)

    async def _report_failure(self, desired: SpecDelivery, message: str, reason: str) -> None:
        self._set_phase(
            Phase.DEGRADED, desired, "waiting for a new spec or the drift timer", message
        )
        self._count_failure(True)
        await self._write_status(render.failed_status(desired, message, reason))
        await self._event(
            desired, kube_names.EVENT_TYPE_WARNING, kube_names.EVENT_RECONCILE_ERROR, message
        )

    # --- Deletion --------------------------------------------------------------------------------

    async def _delete(self, desired: SpecDelivery) -> bool:
        self._set_phase(Phase.DELETING, desired, "tearing down")
        await self._event(
            desired,
            kube_names.EVENT_TYPE_NORMAL,
            kube_names.EVENT_DELETING,
            "deleting the configuration's Azure resources and key Secret",
        )
        # The key Secret is deleted even when no pass recorded it: deleting nothing is harmless.
        record = replace(
            self._applied or AppliedConfiguration(sgc=desired.sgc),
            key_secret=resource_names.gateway_secret_name(desired.sgc.uid),
        )
        self._applied = record
        nodes_aside = bool(record.node_gateways) and workflow.patched(
            PATCH_DELETE_WITHOUT_WAITING_FOR_NODES
        )
        try:
            await self._teardown(
                record, f"delete/{desired.sgc.uid}/p{self._pass}", nodes_aside=nodes_aside
            )
            self._set_step("remove finalizer")
            await self._steps.remove_finalizer(desired.sgc, f"{desired.sgc.uid}/p{self._pass}")
        except ActivityError as err:
            message = render.failure_message(self._step, failure_causes(err))
            self._set_phase(Phase.DEGRADED, desired, "deletion will be retried", message)
            await self._write_status(
                render.delete_failed_status(desired, message, failure_reason(failure_types(err)))
            )
            await self._event(
                desired, kube_names.EVENT_TYPE_WARNING, kube_names.EVENT_DELETE_ERROR, message
            )
            return False
        finally:
            # The object may be gone by now; the nodes' answers (or their answer timeouts) are
            # waited for only so that the run does not end with calls in flight.
            await self._node_removals_done()
        self._applied = None
        self._set_phase(Phase.DELETED, desired, "done")
        return True

    async def _teardown(
        self, record: AppliedConfiguration, tag: str, *, nodes_aside: bool = False
    ) -> None:
        """Undo `record` in the documented order, keeping the applied record current after each
        step so an interrupted teardown resumes where it stopped. With `nodes_aside` the nodes'
        gateways are removed alongside the later steps rather than before them
        (_node_removals_done waits for them): a node that does not answer holds nothing up."""
        for step in self._teardown_steps(record):
            self._step = str(step)
            if nodes_aside and step is TeardownStep.REMOVE_NODE_GATEWAYS:
                self._node_removals.append(
                    asyncio.ensure_future(self._remove_node_gateways(record.node_gateways, tag))
                )
            else:
                await self._undo(step, record, tag)
            if self._applied is not None:
                self._applied = decide.without_step(self._applied, step)

    @staticmethod
    def _teardown_steps(record: AppliedConfiguration) -> tuple[TeardownStep, ...]:
        both = record.rule_registered and record.pool is not None
        # Asked only when the order matters, so other teardowns record no marker.
        return decide.teardown_steps(
            record, ip_config_first=both and workflow.patched(PATCH_IP_CONFIG_BEFORE_RULE)
        )

    async def _node_removals_done(self) -> None:
        removals, self._node_removals = self._node_removals, []
        if removals:
            await asyncio.gather(*removals)

    async def _undo(self, step: TeardownStep, record: AppliedConfiguration, tag: str) -> None:
        uid = record.sgc.uid
        match step:
            case TeardownStep.REMOVE_NODE_GATEWAYS:
                await self._remove_node_gateways(record.node_gateways, tag)
            case TeardownStep.REMOVE_RULE:
                await self._steps.remove_rule(uid, tag)
            case TeardownStep.REMOVE_IP_CONFIG:
                assert record.pool is not None
                await self._steps.remove_ip_config(record.pool, uid, tag)
            case TeardownStep.DELETE_MANAGED_PREFIX:
                await self._steps.delete_prefix(record.managed_prefix, tag)
            case TeardownStep.DELETE_KEY:
                await self._steps.delete_key(record.sgc, tag)

    # --- Gateway nodes ----------------------------------------------------------------------------
    # Each node's agent configures its gateway (egressgw-node-<name> task queue). A node whose
    # agent is missing or fails is named in the status; the other nodes are configured regardless,
    # and Azure is not compensated for it: the healthy nodes serve.

    async def _configure_nodes(
        self, desired: SpecDelivery, provisioned: Provisioned, tag: str
    ) -> Provisioned:
        assert self._applied is not None
        gateways = nodes.node_gateways(
            desired.sgc,
            provisioned.key,
            provisioned.frontend_ip,
            provisioned.port,
            provisioned.nodes,
        )
        stale = nodes.stale_gateways(self._applied.node_gateways, gateways)
        self._applied = replace(self._applied, node_gateways=gateways)
        if stale:
            self._set_step(f"remove {len(stale)} replaced node gateways")
            await self._remove_node_gateways(stale, f"stale/{tag}")
        self._set_step("list the configuration's pods (PodEndpoints)")
        self._peers = await self._list_peers(desired, tag, from_watch_cache=False)
        self._peers_changed = False
        self._restarted_nodes.clear()
        self._set_step(f"configure {len(gateways)} gateway nodes")
        problems = await self._apply_nodes(desired, gateways, self._peers, tag)
        return replace(provisioned, node_problems=nodes.sorted_problems(problems))

    async def _node_pass(
        self, *, authoritative: bool = False, retry: set[str] | frozenset[str] = frozenset()
    ) -> None:
        """Peers changed or an agent restarted: bring the nodes in line, Azure untouched. The
        peers come from the controller's PodEndpoint watch cache unless `authoritative` (the
        periodic sync lists them from the API server). Nodes in `retry` are tried again as if
        their agent had said it started."""
        desired, applied = self._desired, self._applied
        restarted, self._restarted_nodes = set(self._restarted_nodes) | retry, set()
        if desired is None or applied is None or not applied.node_gateways:
            return
        self._pass += 1
        tag = self._tag(desired)
        gateways = applied.node_gateways
        problem_nodes = nodes.problem_nodes(self._status.node_problems)
        absent = nodes.absent_agent_nodes(
            self._status.node_problems,
            restarted,
            silent_too=bool(nodes.silent_nodes(self._status.node_problems))
            and workflow.patched(PATCH_SILENT_NODES_ABSENT),
        )
        if absent and workflow.patched(PATCH_SKIP_ABSENT_AGENTS):
            gateways = tuple(g for g in gateways if g.node_name not in absent)
        to_apply = [g for g in gateways if g.node_name in restarted | problem_nodes]
        to_sync: list[NodeGateway] = []
        if self._peers_changed or self._peers is None:
            self._peers_changed = False
            self._set_step("list the configuration's pods (PodEndpoints)")
            self._peers = await self._list_peers(desired, tag, from_watch_cache=not authoritative)
            if self._peers is not None or not workflow.patched(PATCH_KEEP_PEERS_UNLISTED):
                to_sync = [g for g in gateways if g not in to_apply]
                self._peer_sync_due = None  # every node with an agent gets the whole set now
        self._set_step(f"update {len(to_apply) + len(to_sync)} gateway nodes")
        applied_problems, synced = await asyncio.gather(
            self._apply_nodes(desired, to_apply, self._peers, tag),
            self._steps.sync_nodes(to_sync, self._peers or PeerTable(), tag),
        )
        problems = nodes.merge_problems(
            self._status.node_problems,
            [g.node_name for g in (*to_apply, *to_sync)],
            (*applied_problems, *fanout.problems(synced)),
            [g.node_name for g in applied.node_gateways],
        )
        if problems == self._status.node_problems:
            self._set_step(self._idle_step())
            return
        if self._provisioned is None:
            # Right after continue-as-new there is no status to amend: a full pass writes it.
            self._resync = True
            return
        self._provisioned = replace(self._provisioned, node_problems=problems)
        await self._report_provisioned(desired, self._provisioned)
        if not problems:
            await self._event(
                desired,
                kube_names.EVENT_TYPE_NORMAL,
                kube_names.EVENT_RECONCILED,
                "every gateway node is configured",
            )

    async def _list_peers(
        self, desired: SpecDelivery, tag: str, *, from_watch_cache: bool
    ) -> PeerTable | None:
        """The pods' peers; None (nodes keep the peers they have) when they cannot be listed."""
        try:
            listed = await self._steps.list_peers(
                desired.sgc,
                tag,
                from_watch_cache=from_watch_cache,
                local=workflow.patched(PATCH_LOCAL_PEER_LIST),
            )
        except FailureError as err:
            # A local activity's failure comes unwrapped (its ApplicationError, a timeout).
            if is_cancelled_exception(err):
                raise
            workflow.logger.warning("peers not listed: %s", failure_causes(err)[-1])
            return None
        return listed.as_table()

    async def _apply_nodes(
        self,
        desired: SpecDelivery,
        gateways: list[NodeGateway] | tuple[NodeGateway, ...],
        peers: PeerTable | None,
        tag: str,
    ) -> tuple[NodeProblem, ...]:
        """Apply each gateway on its node; a Warning names the pods whose peers an agent
        refused (the others are applied)."""
        outcomes = await self._steps.apply_nodes(
            gateways,
            peers,
            tag,
            fanout.Restarts(
                count=lambda node: self._agent_starts.get(node, 0),
                call_again=lambda: workflow.patched(PATCH_REAPPLY_RESTARTED_AT_ONCE),
            ),
        )
        rejected = sorted(
            {
                f"{r.pod_endpoint} ({r.reason})"
                for result in fanout.results(outcomes)
                for r in result.peers.rejected
            }
        )
        if rejected:
            await self._event(
                desired,
                kube_names.EVENT_TYPE_WARNING,
                render.EVENT_PEERS_REJECTED,
                f"{len(rejected)} pods not added as gateway peers: " + "; ".join(rejected[:10]),
            )
        return fanout.problems(outcomes)

    async def _remove_node_gateways(
        self, gateways: tuple[NodeGateway, ...] | list[NodeGateway], tag: str
    ) -> None:
        """Best effort: a node whose agent is gone removes the leftovers itself when it comes
        back (its cleanup finds no workflow that wants them)."""
        outcomes = await self._steps.remove_node_gateways(gateways, tag)
        for failed in fanout.failures(outcomes):
            workflow.logger.warning(
                "gateway not removed from node %s (its agent cleans up when it returns): %s",
                failed.gateway.node_name,
                failed.reason,
            )

    # --- Status, events, visibility --------------------------------------------------------------

    async def _report_provisioned(self, desired: SpecDelivery, provisioned: Provisioned) -> None:
        """Phase, status and, when nodes do not serve, the Warning naming them: after a good
        Azure pass and after a node pass alike."""
        phase = decide.provisioned_phase(provisioned)
        message = (
            render.ready_message(provisioned)
            if phase == Phase.READY
            else render.nodes_message(provisioned)
        )
        self._set_phase(phase, desired, self._idle_step_for(phase), message, provisioned)
        self._count_failure(phase == Phase.DEGRADED)
        await self._write_status(render.ready_status(desired, provisioned))
        if provisioned.node_problems:
            await self._event(
                desired,
                kube_names.EVENT_TYPE_WARNING,
                kube_names.REASON_GATEWAY_NODES_NOT_READY,
                render.nodes_message(provisioned),
            )

    def _idle_step(self) -> str:
        return self._idle_step_for(Phase(self._status.phase))

    @staticmethod
    def _idle_step_for(phase: Phase) -> str:
        return (
            "ready; watching for drift"
            if phase == Phase.READY
            else "retrying on the drift timer (unanswering nodes on the node retry timer)"
        )

    async def _write_status(self, update: StatusUpdate) -> None:
        """Status writes never fail a pass: Azure state must not be undone because the object
        could not be written (it may be gone); the next pass writes again."""
        if update == self._last_written:
            return
        phase = self._status.phase
        try:
            await self._steps.write_status(
                update,
                f"status/{update.sgc.uid}/g{update.observed_generation}/p{self._pass}"
                f"/{phase.lower()}",
                f"status: {phase}",
            )
        except ActivityError as err:
            workflow.logger.warning("status not written: %s", failure_causes(err)[-1])
            return
        self._last_written = update

    async def _event(
        self, desired: SpecDelivery, event_type: str, reason: str, message: str
    ) -> None:
        """Events never fail a pass either: they are for people, the status is the record."""
        try:
            await self._steps.record_event(
                EventInput(sgc=desired.sgc, type=event_type, reason=reason, message=message),
                f"event/{desired.sgc.uid}/p{self._pass}/{reason}",
            )
        except ActivityError as err:
            workflow.logger.warning("event %s not recorded: %s", reason, failure_causes(err)[-1])

    def _set_phase(
        self,
        phase: Phase,
        desired: SpecDelivery,
        step: str,
        message: str = "",
        provisioned: Provisioned | None = None,
    ) -> None:
        if phase != self._status.phase:
            workflow.upsert_search_attributes([search_attributes.PHASE.value_set(str(phase))])
        self._status = replace(
            render.configuration_status(phase, desired, message, provisioned),
            failed_passes=self._status.failed_passes,
        )
        self._set_step(step)

    def _count_failure(self, failed: bool) -> None:
        """Consecutive passes ending Degraded, for the retry backoff; a good pass resets it."""
        count = self._status.failed_passes + 1 if failed else 0
        self._status = replace(self._status, failed_passes=count)

    def _set_step(self, step: str) -> None:
        self._step = step
        self._publish()

    def _publish(self) -> None:
        workflow.set_current_details(
            render.current_details(Phase(self._status.phase), self._desired, self._step)
        )
