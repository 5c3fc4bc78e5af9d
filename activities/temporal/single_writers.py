"""Activities through which GatewayConfigWorkflow reaches the single-writer workflows.

A workflow cannot send an update to another workflow, so each of these activities does
update-with-start on the LoadBalancerWorkflow or GatewayPoolWorkflow that owns the resource
(USE_EXISTING: the first caller starts it, everyone else joins the running one) and returns the
update's result. The single writer retries its own Azure calls; a failure it reports is final
for this request and comes back as a non-retryable error carrying its message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, Final, TypeVar

from temporalio import activity
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import ApplicationError, FailureError

from contracts import resource_names
from contracts.activity_io import (
    ENSURE_LOAD_BALANCER_RULE,
    ENSURE_POOL_IP_CONFIG,
    REMOVE_LOAD_BALANCER_RULE,
    REMOVE_POOL_IP_CONFIG,
    EnsureIpConfigCall,
    EnsureRuleCall,
    RemoveIpConfigCall,
    RemoveRuleCall,
)
from contracts.azure_state import AzureScope, GatewayPool
from contracts.workflow_io import (
    DEFAULT_BATCH_WINDOW_SECONDS,
    ENSURE_IP_CONFIG,
    ENSURE_RULE,
    GATEWAY_POOL_WORKFLOW,
    LOAD_BALANCER_WORKFLOW,
    REMOVE_IP_CONFIG,
    REMOVE_RULE,
    GatewayPoolInput,
    IpConfigRequest,
    IpConfigResult,
    LoadBalancerInput,
    RuleRequest,
    RuleResult,
)

# Well inside the callers' heartbeat timeout (workflows/activity_options.SINGLE_WRITER).
DEFAULT_HEARTBEAT_EVERY: Final = timedelta(seconds=5)

_LOAD_BALANCER_KEY: Final = SearchAttributeKey.for_keyword(
    resource_names.SEARCH_ATTRIBUTE_LOAD_BALANCER
)
_POOL_KEY: Final = SearchAttributeKey.for_keyword(resource_names.SEARCH_ATTRIBUTE_POOL)

Result = TypeVar("Result")


def load_balancer_workflow_id(scope: AzureScope) -> str:
    return resource_names.load_balancer_workflow_id(
        scope.subscription_id, scope.load_balancer_resource_group, scope.load_balancer_name
    )


def gateway_pool_workflow_id(pool: GatewayPool) -> str:
    return resource_names.gateway_pool_workflow_id(
        pool.subscription_id, pool.resource_group, pool.name
    )


def _update_id() -> str:
    """Stable per attempt: a retried attempt sends a new update (the change is idempotent), so
    it never receives the cached failure of the attempt before."""
    info = activity.info()
    return f"{info.workflow_id}/{info.activity_id}/{info.attempt}"


def _observe_start_outcome(start: WithStartWorkflowOperation[Any, Any]) -> None:
    """Read the start operation's outcome once the call is over. When the call was cancelled
    nobody else reads it, and asyncio would log "Future exception was never retrieved"."""
    future = getattr(start, "_workflow_handle", None)  # the SDK keeps no public accessor
    if isinstance(future, asyncio.Future) and future.done() and not future.cancelled():
        future.exception()


class SingleWriterActivities:
    def __init__(
        self,
        client: Client,
        task_queue: str = resource_names.CONTROLLER_TASK_QUEUE,
        *,
        heartbeat_every: timedelta = DEFAULT_HEARTBEAT_EVERY,
        batch_window: timedelta = timedelta(seconds=DEFAULT_BATCH_WINDOW_SECONDS),
    ) -> None:
        """`batch_window`: how long a single writer started here collects requests before it
        applies them."""
        self._client = client
        self._task_queue = task_queue
        self._heartbeat_every = heartbeat_every
        self._batch_window_seconds = batch_window.total_seconds()

    @activity.defn(name=ENSURE_LOAD_BALANCER_RULE)
    async def ensure_load_balancer_rule(self, call: EnsureRuleCall) -> RuleResult:
        result: RuleResult = await self._update(
            self._load_balancer(call.scope),
            ENSURE_RULE,
            RuleRequest(rule=call.rule, verify=call.verify),
            RuleResult,
        )
        return result

    @activity.defn(name=REMOVE_LOAD_BALANCER_RULE)
    async def remove_load_balancer_rule(self, call: RemoveRuleCall) -> None:
        await self._update(self._load_balancer(call.scope), REMOVE_RULE, call.owner_uid, None)

    @activity.defn(name=ENSURE_POOL_IP_CONFIG)
    async def ensure_pool_ip_config(self, call: EnsureIpConfigCall) -> IpConfigResult:
        result: IpConfigResult = await self._update(
            self._pool(call.scope, call.pool),
            ENSURE_IP_CONFIG,
            IpConfigRequest(ip_config=call.ip_config, verify=call.verify),
            IpConfigResult,
        )
        return result

    @activity.defn(name=REMOVE_POOL_IP_CONFIG)
    async def remove_pool_ip_config(self, call: RemoveIpConfigCall) -> None:
        await self._update(
            self._pool(call.scope, call.pool), REMOVE_IP_CONFIG, call.owner_uid, None
        )

    def _load_balancer(self, scope: AzureScope) -> WithStartWorkflowOperation[Any, Any]:
        return WithStartWorkflowOperation(
            LOAD_BALANCER_WORKFLOW,
            LoadBalancerInput(scope=scope, batch_window_seconds=self._batch_window_seconds),
            id=load_balancer_workflow_id(scope),
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(_LOAD_BALANCER_KEY, scope.load_balancer_name.lower())]
            ),
            static_summary=f"load balancer {scope.load_balancer_name}",
        )

    def _pool(self, scope: AzureScope, pool: GatewayPool) -> WithStartWorkflowOperation[Any, Any]:
        return WithStartWorkflowOperation(
            GATEWAY_POOL_WORKFLOW,
            GatewayPoolInput(
                scope=scope, pool=pool, batch_window_seconds=self._batch_window_seconds
            ),
            id=gateway_pool_workflow_id(pool),
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=TypedSearchAttributes([SearchAttributePair(_POOL_KEY, pool.name)]),
            static_summary=f"gateway pool {pool.name} ({pool.kind})",
        )

    async def _update(
        self,
        start: WithStartWorkflowOperation[Any, Any],
        update: str,
        arg: object,
        result_type: type[Result] | None,
    ) -> Any:
        call = self._client.execute_update_with_start_workflow(
            update,
            arg,
            start_workflow_operation=start,
            id=_update_id(),
            result_type=result_type,
        )
        try:
            return await self._heartbeating(call, start)
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            message = cause.message if isinstance(cause, FailureError) else str(cause)
            error_type = cause.type if isinstance(cause, ApplicationError) else None
            raise ApplicationError(message, type=error_type, non_retryable=True) from None

    async def _heartbeating(
        self, call: Awaitable[Result], start: WithStartWorkflowOperation[Any, Any]
    ) -> Result:
        """Await `call`, heartbeating meanwhile so that a lost worker or a cancel is noticed."""
        task = asyncio.ensure_future(call)
        task.add_done_callback(lambda _: _observe_start_outcome(start))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self._heartbeat_every.total_seconds())
                if done:
                    return task.result()
                activity.heartbeat()
        except asyncio.CancelledError:
            # A sent update cannot be withdrawn: let it finish before reporting the cancel, so
            # that the caller's undo (queued after this) is applied after it, never before.
            if not activity.is_worker_shutdown():
                await asyncio.wait({task})
            raise
        finally:
            if not task.done():
                task.cancel()

    def activities(self) -> list[Any]:
        """The bound activity methods, for a Worker's `activities=`."""
        return [
            self.ensure_load_balancer_rule,
            self.remove_load_balancer_rule,
            self.ensure_pool_ip_config,
            self.remove_pool_ip_config,
        ]
