"""GatewayPoolWorkflow: the only writer of one gateway pool's NIC ipConfigurations.

Configurations register their ipConfig or drop it (signal `submit_ip_config`, answered by
completing the caller's activity); a node joining or leaving signals `members_changed`. Each batch
(workflows/single_writer.py) becomes one VMSS model apply (VMSS pools; the activity writes only
when the model differs), one member list and a concurrent reconcile of every member, which
updates only members that need it.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from temporalio import workflow
from temporalio.exceptions import ActivityError

from contracts import failure_types, search_attributes
from contracts.activity_io import (
    ApplyPoolInput,
    MemberAddresses,
    PoolIpConfig,
    PoolMember,
    ReconcileMemberInput,
    ResourceChange,
)
from contracts.azure_state import PoolKind
from contracts.workflow_io import (
    GATEWAY_POOL_WORKFLOW,
    POOL_MEMBERS_CHANGED,
    SUBMIT_IP_CONFIG,
    GatewayPoolInput,
    IpConfigResult,
    IpConfigSubmission,
)
from workflows import activity_calls, activity_stubs
from workflows import single_writer_batch as batching
from workflows.failures import failure_causes
from workflows.single_writer import RequestQueue, run_single_writer
from workflows.single_writer_batch import Change

APPLY_FAILED = failure_types.GATEWAY_POOL_APPLY_FAILED


@workflow.defn(name=GATEWAY_POOL_WORKFLOW)
class GatewayPoolWorkflow:
    @workflow.init
    def __init__(self, input: GatewayPoolInput) -> None:
        self._input = input
        self._ip_configs: dict[str, PoolIpConfig] = {
            c.owner_uid: c for c in input.carried_ip_configs
        }
        self._queue: RequestQueue[PoolIpConfig, IpConfigResult | None] = RequestQueue(APPLY_FAILED)
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

    @workflow.signal(name=POOL_MEMBERS_CHANGED)
    def members_changed(self) -> None:
        self._members_changed = True

    @workflow.run
    async def run(self, input: GatewayPoolInput) -> None:
        workflow.upsert_search_attributes([search_attributes.POOL.value_set(input.pool.name)])
        self._details("idle")
        await run_single_writer(
            self._queue,
            quiet_seconds=input.batch_quiet_seconds,
            window_seconds=input.batch_window_seconds,
            apply_batch=self._apply_batch,
            carried_input=lambda: replace(
                self._input, carried_ip_configs=batching.ip_configs_input(self._ip_configs)
            ),
            other_work=lambda: self._members_changed,
        )

    async def _apply_batch(self, batch: list[Change[PoolIpConfig]]) -> None:
        resync, self._members_changed = self._members_changed, False
        plan = batching.plan_batch(self._ip_configs, batch, self._answered, resync=resync)
        changes: tuple[ResourceChange, ...] = ()
        if plan.apply:
            self._passes += 1
            configs = batching.ip_configs_input(plan.registrations)
            try:
                members, changes = await self._pass(configs, len(batch))
            except ActivityError as err:
                message = failure_causes(err)[-1]
                self._queue.fail(batch, f"gateway pool update failed: {message}")
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
    ) -> tuple[tuple[MemberAddresses, ...], tuple[ResourceChange, ...]]:
        scope, pool = self._input.scope, self._input.pool
        pool_input = ApplyPoolInput(scope=scope, pool=pool, ip_configs=configs)
        n = self._passes
        model_changes: tuple[ResourceChange, ...] = ()
        if pool.kind == PoolKind.VMSS:
            self._details(f"VMSS model: {len(configs)} ipConfigs ({requests} requests)")
            model = await activity_calls.execute(
                activity_stubs.apply_vmss_model,
                pool_input,
                activity_calls.AZURE,
                activity_id=f"pool/model/{n}",
                summary=f"VMSS model with {len(configs)} ipConfigs",
            )
            model_changes = model.changes
        self._details("listing pool members")
        listed = await activity_calls.execute(
            activity_stubs.list_gateway_pool_members,
            pool,
            activity_calls.AZURE,
            activity_id=f"pool/members/{n}",
            summary="list pool members",
        )
        self._details(f"reconciling {len(listed.members)} members")
        results = await asyncio.gather(
            *(self._reconcile_member(pool_input, member, n) for member in listed.members),
            return_exceptions=True,
        )
        members: list[MemberAddresses] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            members.append(result)
        return tuple(members), batching.pass_changes(model_changes, members)

    async def _reconcile_member(
        self, pool_input: ApplyPoolInput, member: PoolMember, n: int
    ) -> MemberAddresses:
        return await activity_calls.execute(
            activity_stubs.reconcile_gateway_pool_member,
            ReconcileMemberInput(
                scope=pool_input.scope,
                pool=pool_input.pool,
                member=member,
                ip_configs=pool_input.ip_configs,
            ),
            activity_calls.AZURE,
            activity_id=f"pool/member/{member.id}/{n}",
            summary=f"member {member.node_name}",
        )

    def _details(self, step: str) -> None:
        pool = self._input.pool
        workflow.set_current_details(
            f"**gateway pool** `{pool.resource_group}/{pool.name}` ({pool.kind})"
            f"\n\n- {step}\n- passes this run: {self._passes}"
        )
