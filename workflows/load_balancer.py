"""LoadBalancerWorkflow: the only writer of one internal load balancer.

Configurations register their rule or drop it (signal `submit_rule`; older callers used the updates
`ensure_rule` / `remove_rule`); the run loop batches what arrives together (a debounce) into one
`apply_load_balancer` activity (one GET, one PUT with If-Match) for all owners, and answers every
request: signalled ones by completing the caller's activity.
"""

from __future__ import annotations

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
        ApplyLoadBalancerInput,
        ApplyLoadBalancerResult,
        LoadBalancerRule,
    )
    from contracts.workflow_io import (
        ENSURE_RULE,
        LOAD_BALANCER_WORKFLOW,
        REMOVE_RULE,
        SUBMIT_RULE,
        LoadBalancerInput,
        RuleRequest,
        RuleResult,
        RuleSubmission,
    )
    from workflows import activity_options
    from workflows import single_writer_batch as batching
    from workflows.failures import failure_causes
    from workflows.request_replies import batching_pause, send_replies
    from workflows.update_queue import UpdateQueue

LOAD_BALANCER_KEY = SearchAttributeKey.for_keyword(resource_names.SEARCH_ATTRIBUTE_LOAD_BALANCER)


@workflow.defn(name=LOAD_BALANCER_WORKFLOW)
class LoadBalancerWorkflow:
    @workflow.init
    def __init__(self, input: LoadBalancerInput) -> None:
        self._input = input
        self._rules: dict[str, LoadBalancerRule] = {r.owner_uid: r for r in input.carried_rules}
        self._queue: UpdateQueue[LoadBalancerRule, RuleResult | None] = UpdateQueue(
            "LoadBalancerApplyFailed"
        )
        self._results: dict[str, RuleResult] = {}  # from the last apply; not carried over
        self._applies = 0

    @workflow.signal(name=SUBMIT_RULE)
    def submit_rule(self, submission: RuleSubmission) -> None:
        self._queue.submit(
            submission.owner_uid,
            submission.rule,
            verify=submission.verify,
            reply=submission.reply_token,
        )

    @workflow.update(name=ENSURE_RULE)
    async def ensure_rule(self, request: RuleRequest) -> RuleResult:
        result = await self._queue.request(
            request.rule.owner_uid, request.rule, verify=request.verify
        )
        assert result is not None
        return result

    @workflow.update(name=REMOVE_RULE)
    async def remove_rule(self, owner_uid: str) -> None:
        await self._queue.request(owner_uid, None, verify=False)

    @workflow.run
    async def run(self, input: LoadBalancerInput) -> None:
        workflow.upsert_search_attributes(
            [LOAD_BALANCER_KEY.value_set(input.scope.load_balancer_name.lower())]
        )
        self._details("idle")
        while True:
            try:
                await workflow.wait_condition(
                    lambda: bool(self._queue), timeout=batching.IDLE_CONTINUE_AS_NEW
                )
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
                    lambda: workflow.all_handlers_finished() or bool(self._queue)
                )
                if not self._queue:
                    workflow.continue_as_new(
                        replace(self._input, carried_rules=batching.rules_input(self._rules))
                    )

    async def _apply_batch(self) -> None:
        await self._answer_batch()
        await send_replies(self._queue)  # also after a failed apply: it answered every request

    async def _answer_batch(self) -> None:
        batch = self._queue.take()
        plan = batching.plan_batch(self._rules, batch, self._results.keys())
        if plan.apply:
            self._applies += 1
            rules = batching.rules_input(plan.registrations)
            self._details(f"applying {len(rules)} rules for a batch of {len(batch)} requests")
            try:
                applied = await workflow.execute_activity(
                    acts.APPLY_LOAD_BALANCER,
                    ApplyLoadBalancerInput(scope=self._input.scope, rules=rules),
                    result_type=ApplyLoadBalancerResult,
                    activity_id=f"lb/apply/{self._applies}",
                    summary=f"apply {len(rules)} rules ({len(batch)} requests)",
                    start_to_close_timeout=activity_options.AZURE.start_to_close,
                    heartbeat_timeout=activity_options.AZURE.heartbeat,
                    retry_policy=activity_options.AZURE.retry,
                )
            except ActivityError as err:
                # Registrations stay as they were: the PUT is all-or-nothing.
                message = failure_causes(err)[-1]
                for change in batch:
                    self._queue.answer(change, f"load balancer update failed: {message}")
                self._details(f"last apply failed: {message}")
                return
            self._rules = dict(plan.registrations)
            self._results = batching.rule_results(applied)
        for change in batch:
            if change.wanted is None:
                self._queue.answer(change, None)
            else:
                self._queue.answer(
                    change,
                    batching.rule_answer(change.owner_uid, self._results, fresh=plan.apply),
                )
        self._details(f"idle; {len(self._rules)} rules registered")

    def _details(self, step: str) -> None:
        scope = self._input.scope
        workflow.set_current_details(
            f"**load balancer** `{scope.load_balancer_resource_group}/{scope.load_balancer_name}`"
            f"\n\n- {step}\n- applies this run: {self._applies}"
        )
