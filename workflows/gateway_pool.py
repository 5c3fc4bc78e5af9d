"""GatewayPoolWorkflow: the only writer of one gateway pool's NIC ipConfigurations.

Configurations register their ipConfig or drop it (signal `submit_ip_config`, answered by
completing the caller's activity; older callers used the updates `ensure_ip_config` /
`remove_ip_config`); a node joining or leaving signals `members_changed`. Each batch becomes one
VMSS model apply (VMSS pools; the activity writes only when the model differs), one member list
and a concurrent reconcile of every member, which updates only members that need it.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    # Every module whose dataclasses cross Temporal is imported here, not only through another
    # module: the converter resolves their type hints in the sandbox's module table.
    import contracts.activity_io
    import contracts.azure_state
    import contracts.conditions
    import contracts.gateway_config
    import contracts.workflow_io  # noqa: F401
    from contracts import activity_io as acts
    from contracts import resource_names
    from contracts.activity_io import (
        ApplyPoolInput,
        ApplyVmssModelResult,
        MemberAddresses,
        PoolIpConfig,
        PoolMember,
        PoolMembers,
        ReconcileMemberInput,
    )
    from contracts.azure_state import PoolKind
    from contracts.workflow_io import (
        ENSURE_IP_CONFIG,
        GATEWAY_POOL_WORKFLOW,
        POOL_MEMBERS_CHANGED,
        REMOVE_IP_CONFIG,
        SUBMIT_IP_CONFIG,
        GatewayPoolInput,
        IpConfigRequest,
        IpConfigResult,
        IpConfigSubmission,
    )
    from workflows import activity_options
    from workflows import single_writer_batch as batching
    from workflows.failures import failure_causes
    from workflows.request_replies import batching_pause, send_replies
    from workflows.update_queue import UpdateQueue

POOL_KEY = SearchAttributeKey.for_keyword(resource_names.SEARCH_ATTRIBUTE_POOL)


@workflow.defn(name=GATEWAY_POOL_WORKFLOW)
class GatewayPoolWorkflow:
    @workflow.init
    def __init__(self, input: GatewayPoolInput) -> None:
        self._input = input
        self._ip_configs: dict[str, PoolIpConfig] = {
            c.owner_uid: c for c in input.carried_ip_configs
        }
        self._queue: UpdateQueue[PoolIpConfig, IpConfigResult | None] = UpdateQueue(
            "GatewayPoolApplyFailed"
        )
        self._members: tuple[MemberAddresses, ...] = ()  # from the last pass; not carried over
        self._answered: set[str] = set()
        self._members_changed = False
        self._passes = 0

    @workflow.signal(name=SUBMIT_IP_CONFIG)
    def submit_ip_config(self, submission: IpConfigSubmission) -> None:
        self._queue.submit(
            submission.owner_uid,
            submission.ip_config,
            verify=submission.verify,
            reply=submission.reply_token,
        )

    @workflow.update(name=ENSURE_IP_CONFIG)
    async def ensure_ip_config(self, request: IpConfigRequest) -> IpConfigResult:
        result = await self._queue.request(
            request.ip_config.owner_uid, request.ip_config, verify=request.verify
        )
        assert result is not None
        return result

    @workflow.update(name=REMOVE_IP_CONFIG)
    async def remove_ip_config(self, owner_uid: str) -> None:
        await self._queue.request(owner_uid, None, verify=False)

    @workflow.signal(name=POOL_MEMBERS_CHANGED)
    def members_changed(self) -> None:
        self._members_changed = True

    def _has_work(self) -> bool:
        return bool(self._queue) or self._members_changed

    @workflow.run
    async def run(self, input: GatewayPoolInput) -> None:
        workflow.upsert_search_attributes([POOL_KEY.value_set(input.pool.name)])
        self._details("idle")
        while True:
            try:
                await workflow.wait_condition(self._has_work, timeout=batching.IDLE_CONTINUE_AS_NEW)
            except TimeoutError:
                idle = True
            else:
                idle = False
                await batching_pause(
                    self._queue, input.batch_quiet_seconds, input.batch_window_seconds
                )
                await self._apply_batch()
            if idle or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(
                    lambda: workflow.all_handlers_finished() or self._has_work()
                )
                if not self._has_work():
                    workflow.continue_as_new(
                        replace(
                            self._input,
                            carried_ip_configs=batching.ip_configs_input(self._ip_configs),
                        )
                    )

    async def _apply_batch(self) -> None:
        await self._answer_batch()
        await send_replies(self._queue)  # also after a failed apply: it answered every request

    async def _answer_batch(self) -> None:
        batch = self._queue.take()
        resync, self._members_changed = self._members_changed, False
        plan = batching.plan_batch(self._ip_configs, batch, self._answered, resync=resync)
        changes: tuple[str, ...] = ()
        if plan.apply:
            self._passes += 1
            configs = batching.ip_configs_input(plan.registrations)
            try:
                members, changes = await self._pass(configs, len(batch))
            except ActivityError as err:
                message = failure_causes(err)[-1]
                for change in batch:
                    self._queue.answer(change, f"gateway pool update failed: {message}")
                self._details(f"last pass failed: {message}")
                return
            self._ip_configs = dict(plan.registrations)
            self._members = members
            self._answered = set(plan.registrations)
        for change in batch:
            if change.wanted is None:
                self._queue.answer(change, None)
            else:
                self._queue.answer(
                    change, batching.pool_answer(change.owner_uid, self._members, changes)
                )
        self._details(f"idle; {len(self._ip_configs)} ipConfigs registered")

    async def _pass(
        self, configs: tuple[PoolIpConfig, ...], requests: int
    ) -> tuple[tuple[MemberAddresses, ...], tuple[str, ...]]:
        scope, pool = self._input.scope, self._input.pool
        pool_input = ApplyPoolInput(scope=scope, pool=pool, ip_configs=configs)
        n = self._passes
        model_changes: tuple[str, ...] = ()
        if pool.kind == PoolKind.VMSS:
            self._details(f"VMSS model: {len(configs)} ipConfigs ({requests} requests)")
            model = await workflow.execute_activity(
                acts.APPLY_VMSS_MODEL,
                pool_input,
                result_type=ApplyVmssModelResult,
                activity_id=f"pool/model/{n}",
                summary=f"VMSS model with {len(configs)} ipConfigs",
                start_to_close_timeout=activity_options.AZURE.start_to_close,
                heartbeat_timeout=activity_options.AZURE.heartbeat,
                retry_policy=activity_options.AZURE.retry,
            )
            model_changes = model.changes
        self._details("listing pool members")
        listed = await workflow.execute_activity(
            acts.LIST_POOL_MEMBERS,
            pool,
            result_type=PoolMembers,
            activity_id=f"pool/members/{n}",
            summary="list pool members",
            start_to_close_timeout=activity_options.AZURE.start_to_close,
            heartbeat_timeout=activity_options.AZURE.heartbeat,
            retry_policy=activity_options.AZURE.retry,
        )
        self._details(f"reconciling {len(listed.members)} members")
        results = await asyncio.gather(
            *(self._reconcile_member(pool_input, member, n) for member in listed.members),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        members = tuple(r for r in results if isinstance(r, MemberAddresses))
        return members, batching.pass_changes(model_changes, members)

    async def _reconcile_member(
        self, pool_input: ApplyPoolInput, member: PoolMember, n: int
    ) -> MemberAddresses:
        result: MemberAddresses = await workflow.execute_activity(
            acts.RECONCILE_POOL_MEMBER,
            ReconcileMemberInput(
                scope=pool_input.scope,
                pool=pool_input.pool,
                member=member,
                ip_configs=pool_input.ip_configs,
            ),
            result_type=MemberAddresses,
            activity_id=f"pool/member/{member.id}/{n}",
            summary=f"member {member.node_name}",
            start_to_close_timeout=activity_options.AZURE.start_to_close,
            heartbeat_timeout=activity_options.AZURE.heartbeat,
            retry_policy=activity_options.AZURE.retry,
        )
        return result

    def _details(self, step: str) -> None:
        pool = self._input.pool
        workflow.set_current_details(
            f"**gateway pool** `{pool.resource_group}/{pool.name}` ({pool.kind})"
            f"\n\n- {step}\n- passes this run: {self._passes}"
        )
