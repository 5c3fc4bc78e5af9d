"""LoadBalancerWorkflow: the only writer of one internal load balancer.

Configurations register their rule or drop it (signal `submit_rule`, answered by completing the
caller's activity); the shared loop (workflows/single_writer.py) batches what arrives together
into one `apply_load_balancer` activity (one GET, one PUT with If-Match) for all owners.
"""

from __future__ import annotations

from dataclasses import replace

from temporalio import workflow
from temporalio.exceptions import ActivityError

from contracts import failure_types, search_attributes
from contracts.activity_io import ApplyLoadBalancerInput, LoadBalancerRule
from contracts.workflow_io import (
    LOAD_BALANCER_WORKFLOW,
    SUBMIT_RULE,
    LoadBalancerInput,
    RuleResult,
    RuleSubmission,
)
from workflows import activity_calls, activity_stubs
from workflows import single_writer_batch as batching
from workflows.failures import failure_causes
from workflows.single_writer import RequestQueue, run_single_writer
from workflows.single_writer_batch import Change

APPLY_FAILED = failure_types.LOAD_BALANCER_APPLY_FAILED


@workflow.defn(name=LOAD_BALANCER_WORKFLOW)
class LoadBalancerWorkflow:
    @workflow.init
    def __init__(self, input: LoadBalancerInput) -> None:
        self._input = input
        self._rules: dict[str, LoadBalancerRule] = {r.owner_uid: r for r in input.carried_rules}
        self._queue: RequestQueue[LoadBalancerRule, RuleResult | None] = RequestQueue(APPLY_FAILED)
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

    @workflow.run
    async def run(self, input: LoadBalancerInput) -> None:
        workflow.upsert_search_attributes(
            [search_attributes.LOAD_BALANCER.value_set(input.scope.load_balancer_name.lower())]
        )
        self._details("idle")
        await run_single_writer(
            self._queue,
            quiet_seconds=input.batch_quiet_seconds,
            window_seconds=input.batch_window_seconds,
            apply_batch=self._apply_batch,
            carried_input=lambda: replace(
                self._input, carried_rules=batching.rules_input(self._rules)
            ),
        )

    async def _apply_batch(self, batch: list[Change[LoadBalancerRule]]) -> None:
        plan = batching.plan_batch(self._rules, batch, self._results.keys())
        if plan.apply:
            self._applies += 1
            rules = batching.rules_input(plan.registrations)
            self._details(f"applying {len(rules)} rules for a batch of {len(batch)} requests")
            try:
                applied = await activity_calls.execute(
                    activity_stubs.apply_load_balancer,
                    ApplyLoadBalancerInput(scope=self._input.scope, rules=rules),
                    activity_calls.AZURE,
                    activity_id=f"lb/apply/{self._applies}",
                    summary=f"apply {len(rules)} rules ({len(batch)} requests)",
                )
            except ActivityError as err:
                # Registrations stay as they were: the PUT is all-or-nothing.
                message = failure_causes(err)[-1]
                self._queue.fail(batch, f"load balancer update failed: {message}")
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
                    batching.rule_answer(
                        change.owner_uid, self._results, fresh=plan.apply, failure_type=APPLY_FAILED
                    ),
                )
        self._details(f"idle; {len(self._rules)} rules registered")

    def _details(self, step: str) -> None:
        scope = self._input.scope
        workflow.set_current_details(
            f"**load balancer** `{scope.load_balancer_resource_group}/{scope.load_balancer_name}`"
            f"\n\n- {step}\n- applies this run: {self._applies}"
        )
