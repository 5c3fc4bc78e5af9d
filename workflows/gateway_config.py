"""GatewayConfigWorkflow: one long-lived entity workflow per StaticGatewayConfiguration.

Deliveries (signal `deliver` or update `apply`) set the desired state; the run loop reconciles it
step by step (docs/control-plane.md): key Secret ‖ gateway pool, load balancer rule ‖ public IP
prefix, pool ipConfig, status. Every decision comes from gateway_config_decisions; this module
only sequences activities and records, before each step, what that step may create.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar, cast

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    # Every module whose dataclasses cross Temporal is imported here, not only through another
    # module: the converter resolves their type hints in the sandbox's module table.
    import contracts.activity_io
    import contracts.azure_state
    import contracts.conditions
    import contracts.gateway_config
    import contracts.workflow_io  # noqa: F401
    from contracts import activity_io as acts
    from contracts import kube_names, resource_names
    from contracts.activity_io import (
        ByoPrefixInput,
        DeletePrefixInput,
        DeletePrefixResult,
        EnsureIpConfigCall,
        EnsurePrefixInput,
        EnsureRuleCall,
        EventInput,
        GatewayKey,
        GatewayKeyInput,
        LoadBalancerRule,
        PoolIpConfig,
        RemoveIpConfigCall,
        RemoveRuleCall,
        ResolvePoolInput,
        StatusUpdate,
    )
    from contracts.azure_state import GatewayPool, PublicPrefix
    from contracts.spec_validation import FieldError, validate_spec
    from contracts.workflow_io import (
        APPLY_SPEC,
        DELIVER_SPEC,
        GATEWAY_CONFIG_WORKFLOW,
        GET_STATUS,
        NODES_CHANGED,
        AppliedConfiguration,
        ConfigurationStatus,
        GatewayConfigInput,
        IpConfigResult,
        RuleResult,
        SpecDelivery,
    )
    from workflows import activity_options
    from workflows import gateway_config_decisions as decide
    from workflows.activity_options import ActivityOptions
    from workflows.failures import failure_causes

Phase = decide.Phase
Result = TypeVar("Result")

NAMESPACE_KEY = SearchAttributeKey.for_keyword(resource_names.SEARCH_ATTRIBUTE_NAMESPACE)
NAME_KEY = SearchAttributeKey.for_keyword(resource_names.SEARCH_ATTRIBUTE_NAME)
POOL_KEY = SearchAttributeKey.for_keyword(resource_names.SEARCH_ATTRIBUTE_POOL)
PHASE_KEY = SearchAttributeKey.for_keyword(resource_names.SEARCH_ATTRIBUTE_PHASE)


class _Refused(Exception):
    """A check in this workflow (not Azure) refused the configuration, e.g. prefix capacity."""


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


@workflow.defn(name=GATEWAY_CONFIG_WORKFLOW)
class GatewayConfigWorkflow:
    @workflow.init
    def __init__(self, input: GatewayConfigInput) -> None:
        self._input = input
        self._settings = input.settings
        self._desired: SpecDelivery | None = input.pending
        self._applied: AppliedConfiguration | None = input.carried
        self._status = input.status or ConfigurationStatus(
            phase=Phase.PENDING, observed_generation=0
        )
        # Deliveries accepted vs. reconciled: `apply` callers wait for their delivery's pass.
        self._accepted = 1 if decide.reconcile_wanted(self._status, self._desired) else 0
        self._reconciled = 0
        self._resync = False
        self._finished = False
        self._pass = 0
        self._last_written: StatusUpdate | None = None
        self._step = "waiting for a delivery"
        # Upserted only on change: each upsert is a history event, and drift passes are frequent.
        self._pool_attribute = (
            input.carried.pool.name if input.carried and input.carried.pool else ""
        )

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

    @workflow.query(name=GET_STATUS)
    def status(self) -> ConfigurationStatus:
        return self._status

    def _accept(self, delivery: SpecDelivery) -> None:
        if decide.accept_delivery(self._desired, delivery):
            self._desired = delivery
            self._accepted += 1

    # --- Run loop --------------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: GatewayConfigInput) -> ConfigurationStatus:
        workflow.upsert_search_attributes(
            [NAMESPACE_KEY.value_set(input.namespace), NAME_KEY.value_set(input.name)]
        )
        self._publish()
        while True:
            verify = await self._wait_for_work()
            target = self._accepted
            resync, self._resync = self._resync, False
            finished = await self._reconcile(verify=verify or resync)
            self._reconciled = max(self._reconciled, target)
            if finished:
                self._finished = True
                await workflow.wait_condition(workflow.all_handlers_finished)
                return self._status
            await self._continue_as_new_if_suggested()

    async def _wait_for_work(self) -> bool:
        """Wait for a delivery or a node change; True when the drift timer fired instead."""
        timeout = (
            timedelta(seconds=self._settings.drift_check_seconds)
            if decide.drift_check_due(self._status)
            else None
        )
        try:
            await workflow.wait_condition(
                lambda: self._accepted > self._reconciled or self._resync, timeout=timeout
            )
        except TimeoutError:
            return True
        return False

    async def _continue_as_new_if_suggested(self) -> None:
        if not workflow.info().is_continue_as_new_suggested():
            return
        # An update waiting for a pass would never finish if we waited for it here: serve it.
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() or self._has_work())
        if self._has_work():
            return
        workflow.continue_as_new(
            replace(self._input, carried=self._applied, pending=self._desired, status=self._status)
        )

    def _has_work(self) -> bool:
        return self._accepted > self._reconciled or self._resync

    def _superseded(self, delivery: SpecDelivery) -> bool:
        """A newer delivery arrived during the pass: stop between steps and reconcile that."""
        return self._desired is not delivery

    async def _reconcile(self, *, verify: bool) -> bool:
        """One pass towards the desired state; True when the object is gone and we are done."""
        desired = self._desired
        if desired is None:
            return False
        self._pass += 1
        applied = self._applied
        if applied is not None and applied.sgc.uid != desired.sgc.uid:
            # A new object under the same name: the old one's resources go first.
            try:
                await self._teardown(applied, f"replaced/{applied.sgc.uid}/p{self._pass}")
            except ActivityError as err:
                await self._report_failure(
                    desired,
                    decide.failure_message("tearing down the replaced object", failure_causes(err)),
                )
                return False
            self._applied = None
        if desired.deleting:
            return await self._delete(desired)
        errors = validate_spec(desired.spec)
        if errors:
            await self._report_invalid(desired, errors)
            return False
        await self._provision(desired, verify=verify)
        return False

    # --- Invalid spec ----------------------------------------------------------------------------

    async def _report_invalid(self, desired: SpecDelivery, errors: list[FieldError]) -> None:
        message = decide.invalid_spec_message(errors)
        self._set_phase(Phase.INVALID, desired, "waiting for a corrected spec", message)
        await self._write_status(decide.invalid_status(desired, errors))
        await self._event(
            desired, kube_names.EVENT_TYPE_WARNING, kube_names.EVENT_INVALID_SPEC, message
        )

    # --- Provisioning ----------------------------------------------------------------------------

    async def _provision(self, desired: SpecDelivery, *, verify: bool) -> None:
        uid = desired.sgc.uid
        tag = f"{uid}/g{desired.generation}/p{self._pass}"
        before = self._applied or AppliedConfiguration(sgc=desired.sgc)
        if not verify:
            self._set_phase(Phase.PROVISIONING, desired, "starting")
            await self._write_status(decide.provisioning_status(desired))
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
                ("gateway key Secret", self._ensure_key(desired, tag)),
                ("gateway pool lookup", self._resolve_pool(desired, tag)),
            )
            if self._superseded(desired):
                return
            if pool.name != self._pool_attribute:
                self._pool_attribute = pool.name
                workflow.upsert_search_attributes([POOL_KEY.value_set(pool.name)])
            problem = decide.prefix_capacity_error(desired, pool)
            if problem is not None:
                self._step = "public IP prefix capacity check"
                raise _Refused(problem)

            rule = LoadBalancerRule(
                owner_uid=uid,
                lb_pool_name=pool.lb_pool_name,
                probe_path=resource_names.probe_path(uid),
            )
            record = replace(
                record,
                rule_registered=True,
                managed_prefix=plan.managed_name or record.managed_prefix,
            )
            self._applied = record
            self._set_step("load balancer rule ‖ public IP prefix")
            rule_result, prefix = await _all(
                ("load balancer rule", self._ensure_rule(rule, tag, verify=verify)),
                ("public IP prefix", self._ensure_prefix(plan, pool, tag)),
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
            pool_result = await self._ensure_ip_config(pool, ip_config, tag, verify=verify)

            release = decide.plan_release(before, replace(record, managed_prefix=plan.managed_name))
            if release.old_pool is not None:
                self._set_step(f"release old gateway pool {release.old_pool.name}")
                await self._remove_ip_config(release.old_pool, uid, f"release/{tag}")
            if release.managed_prefix:
                self._set_step("delete the replaced managed prefix")
                await self._delete_prefix(release.managed_prefix, f"release/{tag}")
            self._applied = replace(
                record, managed_prefix=plan.managed_name, generation=desired.generation
            )
        except (ActivityError, _Refused, _StepFailed, asyncio.CancelledError) as err:
            await self._compensate(desired, before, err)
            if is_cancelled_exception(err):
                raise
            return

        provisioned = decide.Provisioned(
            key=key,
            pool=pool,
            frontend_ip=rule_result.frontend_ip,
            port=rule_result.port,
            prefix=prefix,
            nodes=pool_result.nodes,
        )
        previous_phase = self._status.phase
        message = decide.ready_message(provisioned)
        self._set_phase(Phase.READY, desired, "ready; watching for drift", message, provisioned)
        await self._write_status(decide.ready_status(desired, provisioned))
        if verify:
            repaired = decide.drift_event_message(
                (*rule_result.repaired, *pool_result.repaired), uid
            )
            if repaired is not None:
                workflow.logger.info("drift repaired for %s: %s", uid, repaired)
                await self._event(
                    desired, kube_names.EVENT_TYPE_NORMAL, decide.EVENT_DRIFT_REPAIRED, repaired
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
        if is_cancelled_exception(cause):
            message = decide.cancelled_message(step)
        elif isinstance(cause, _Refused):
            message = decide.failure_message(step, [str(cause)])
        else:
            message = decide.failure_message(step, failure_causes(cause))
        after = self._applied or before
        created = decide.created_by_run(before, after)
        self._set_phase(Phase.DEGRADED, desired, "compensating", message)

        async def undo() -> None:
            for step in decide.teardown_steps(created):
                await self._undo(step, created, f"compensate/{desired.sgc.uid}/p{self._pass}")
                current = self._applied or before
                self._applied = decide.without_step(current, step, restore=before)

        try:
            await asyncio.shield(asyncio.ensure_future(undo()))
        except ActivityError as undo_err:
            # What could not be undone stays in the applied record for the next pass or deletion.
            message += "; cleanup incomplete: " + decide.failure_message(
                "compensation", failure_causes(undo_err)
            )
        await self._report_failure(desired, message)

    async def _report_failure(self, desired: SpecDelivery, message: str) -> None:
        self._set_phase(
            Phase.DEGRADED, desired, "waiting for a new spec or the drift timer", message
        )
        await self._write_status(decide.failed_status(desired, message))
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
        try:
            await self._teardown(record, f"delete/{desired.sgc.uid}/p{self._pass}")
            self._set_step("remove finalizer")
            await self._kube_do(
                acts.REMOVE_SGC_FINALIZER,
                desired.sgc,
                f"finalizer/remove/{desired.sgc.uid}/p{self._pass}",
                "remove the finalizer",
            )
        except ActivityError as err:
            message = decide.failure_message(self._step, failure_causes(err))
            self._set_phase(Phase.DEGRADED, desired, "deletion will be retried", message)
            await self._write_status(decide.delete_failed_status(desired, message))
            await self._event(
                desired, kube_names.EVENT_TYPE_WARNING, kube_names.EVENT_DELETE_ERROR, message
            )
            return False
        self._applied = None
        self._set_phase(Phase.DELETED, desired, "done")
        return True

    async def _teardown(self, record: AppliedConfiguration, tag: str) -> None:
        """Undo `record` in the documented order, keeping self._applied current after each step
        so an interrupted teardown resumes where it stopped."""
        for step in decide.teardown_steps(record):
            self._step = str(step)
            await self._undo(step, record, tag)
            if self._applied is not None:
                self._applied = decide.without_step(self._applied, step)

    async def _undo(
        self, step: decide.TeardownStep, record: AppliedConfiguration, tag: str
    ) -> None:
        uid = record.sgc.uid
        match step:
            case decide.TeardownStep.REMOVE_RULE:
                await self._single_writer_do(
                    acts.REMOVE_LOAD_BALANCER_RULE,
                    RemoveRuleCall(scope=self._settings.scope, owner_uid=uid),
                    f"{tag}/rule/remove",
                    "remove load balancer rule and probe",
                )
            case decide.TeardownStep.REMOVE_IP_CONFIG:
                assert record.pool is not None
                await self._remove_ip_config(record.pool, uid, tag)
            case decide.TeardownStep.DELETE_MANAGED_PREFIX:
                await self._delete_prefix(record.managed_prefix, tag)
            case decide.TeardownStep.DELETE_KEY:
                await self._kube_do(
                    acts.DELETE_GATEWAY_KEY,
                    GatewayKeyInput(
                        sgc=record.sgc, secret_namespace=self._settings.secret_namespace
                    ),
                    f"{tag}/key/delete",
                    "delete the gateway key Secret",
                )

    # --- Steps -----------------------------------------------------------------------------------

    async def _ensure_key(self, desired: SpecDelivery, tag: str) -> GatewayKey:
        return await self._call(
            acts.ENSURE_GATEWAY_KEY,
            GatewayKeyInput(sgc=desired.sgc, secret_namespace=self._settings.secret_namespace),
            GatewayKey,
            f"key/ensure/{tag}",
            "ensure the gateway WireGuard key Secret",
            activity_options.KUBE,
        )

    async def _resolve_pool(self, desired: SpecDelivery, tag: str) -> GatewayPool:
        return await self._call(
            acts.RESOLVE_GATEWAY_POOL,
            ResolvePoolInput(scope=self._settings.scope, spec=desired.spec),
            GatewayPool,
            f"pool/resolve/{tag}",
            "resolve the gateway node pool",
            activity_options.AZURE,
        )

    async def _ensure_rule(self, rule: LoadBalancerRule, tag: str, *, verify: bool) -> RuleResult:
        return await self._call(
            acts.ENSURE_LOAD_BALANCER_RULE,
            EnsureRuleCall(scope=self._settings.scope, rule=rule, verify=verify),
            RuleResult,
            f"rule/ensure/{tag}",
            f"load balancer rule and probe on {rule.lb_pool_name}"
            + (" (verify)" if verify else ""),
            activity_options.SINGLE_WRITER,
        )

    async def _ensure_prefix(
        self, plan: decide.PrefixPlan, pool: GatewayPool, tag: str
    ) -> PublicPrefix | None:
        scope = self._settings.scope
        match plan.kind:
            case decide.PrefixKind.NONE:
                return None
            case decide.PrefixKind.MANAGED:
                return await self._call(
                    acts.ENSURE_MANAGED_PREFIX,
                    EnsurePrefixInput(
                        scope=scope, name=plan.managed_name, prefix_length=pool.prefix_length
                    ),
                    PublicPrefix,
                    f"prefix/ensure/{tag}",
                    f"ensure managed public IP prefix {plan.managed_name}",
                    activity_options.AZURE,
                )
            case decide.PrefixKind.BYO:
                return await self._call(
                    acts.GET_BYO_PREFIX,
                    ByoPrefixInput(
                        scope=scope, prefix_id=plan.byo_id, prefix_length=pool.prefix_length
                    ),
                    PublicPrefix,
                    f"prefix/check/{tag}",
                    "check the bring-your-own public IP prefix",
                    activity_options.AZURE,
                )

    async def _ensure_ip_config(
        self, pool: GatewayPool, ip_config: PoolIpConfig, tag: str, *, verify: bool
    ) -> IpConfigResult:
        return await self._call(
            acts.ENSURE_POOL_IP_CONFIG,
            EnsureIpConfigCall(
                scope=self._settings.scope, pool=pool, ip_config=ip_config, verify=verify
            ),
            IpConfigResult,
            f"ipconfig/ensure/{tag}",
            f"ipConfig {ip_config.ip_config_name} on {pool.name}" + (" (verify)" if verify else ""),
            activity_options.SINGLE_WRITER,
        )

    async def _remove_ip_config(self, pool: GatewayPool, uid: str, tag: str) -> None:
        await self._single_writer_do(
            acts.REMOVE_POOL_IP_CONFIG,
            RemoveIpConfigCall(scope=self._settings.scope, pool=pool, owner_uid=uid),
            f"{tag}/ipconfig/remove/{pool.name.lower()}",
            f"remove ipConfig from {pool.name}",
        )

    async def _delete_prefix(self, name: str, tag: str) -> None:
        await self._call(
            acts.DELETE_MANAGED_PREFIX,
            DeletePrefixInput(scope=self._settings.scope, name=name),
            DeletePrefixResult,
            f"{tag}/prefix/delete",
            f"delete managed public IP prefix {name} and its public IPs",
            activity_options.AZURE,
        )

    # --- Status, events, visibility --------------------------------------------------------------

    async def _write_status(self, update: StatusUpdate) -> None:
        """Status writes never fail a pass: Azure state must not be undone because the object
        could not be written (it may be gone); the next pass writes again."""
        if update == self._last_written:
            return
        try:
            await self._kube_do(
                acts.UPDATE_SGC_STATUS,
                update,
                f"status/{update.sgc.uid}/g{update.observed_generation}/p{self._pass}"
                f"/{self._status.phase.lower()}",
                f"status: {self._status.phase}",
            )
        except ActivityError as err:
            workflow.logger.warning("status not written: %s", failure_causes(err)[-1])
            return
        self._last_written = update

    async def _event(
        self, desired: SpecDelivery, event_type: str, reason: str, message: str
    ) -> None:
        try:
            await self._kube_do(
                acts.RECORD_SGC_EVENT,
                EventInput(sgc=desired.sgc, type=event_type, reason=reason, message=message),
                f"event/{desired.sgc.uid}/p{self._pass}/{reason}",
                f"event {reason}",
            )
        except ActivityError as err:
            workflow.logger.warning("event %s not recorded: %s", reason, failure_causes(err)[-1])

    def _set_phase(
        self,
        phase: decide.Phase,
        desired: SpecDelivery,
        step: str,
        message: str = "",
        provisioned: decide.Provisioned | None = None,
    ) -> None:
        if phase != self._status.phase:
            workflow.upsert_search_attributes([PHASE_KEY.value_set(str(phase))])
        self._status = decide.configuration_status(phase, desired, message, provisioned)
        self._set_step(step)

    def _set_step(self, step: str) -> None:
        self._step = step
        self._publish()

    def _publish(self) -> None:
        workflow.set_current_details(
            decide.current_details(Phase(self._status.phase), self._desired, self._step)
        )

    # --- Activity calls --------------------------------------------------------------------------
    # Every call waits for a cancelled activity to finish: a step and its undo must never overlap
    # (with TRY_CANCEL the undo of a half-done step would run while the step still writes).

    async def _call(
        self,
        name: str,
        arg: object,
        result_type: type[Result],
        activity_id: str,
        summary: str,
        options: ActivityOptions,
    ) -> Result:
        result = await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            activity_id=activity_id,
            summary=summary,
            start_to_close_timeout=options.start_to_close,
            heartbeat_timeout=options.heartbeat,
            retry_policy=options.retry,
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        return cast(Result, result)

    async def _kube_do(self, name: str, arg: object, activity_id: str, summary: str) -> None:
        await self._do(name, arg, activity_id, summary, activity_options.KUBE)

    async def _single_writer_do(
        self, name: str, arg: object, activity_id: str, summary: str
    ) -> None:
        await self._do(name, arg, activity_id, summary, activity_options.SINGLE_WRITER)

    async def _do(
        self, name: str, arg: object, activity_id: str, summary: str, options: ActivityOptions
    ) -> None:
        await workflow.execute_activity(
            name,
            arg,
            activity_id=activity_id,
            summary=summary,
            start_to_close_timeout=options.start_to_close,
            heartbeat_timeout=options.heartbeat,
            retry_policy=options.retry,
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
