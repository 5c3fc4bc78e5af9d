"""Activities through which GatewayConfigWorkflow reaches the single-writer workflows.

A workflow cannot signal-with-start another workflow, so each request activity here does it: it
signals its request (carrying its own task token) to the LoadBalancerWorkflow or
GatewayPoolWorkflow that owns the resource, starting that workflow when it is not running, and
completes asynchronously. The single writer answers a whole batch at once through
complete_requests, which completes each waiting activity with its result or, when the single
writer reports a failure (final for this request: it retries its own Azure calls), with a
non-retryable error carrying that message.

No request holds an update open on the single writer, so the server's limit on in-flight updates
per workflow does not cap how many configurations can wait on one load balancer or pool.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any, NoReturn

from temporalio import activity
from temporalio.client import AsyncActivityCancelledError, Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from contracts import resource_names, search_attributes
from contracts.activity_io import (
    COMPLETE_SINGLE_WRITER_REQUESTS,
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
    DEFAULT_BATCH_QUIET_SECONDS,
    DEFAULT_BATCH_WINDOW_SECONDS,
    GATEWAY_POOL_WORKFLOW,
    LOAD_BALANCER_WORKFLOW,
    SUBMIT_IP_CONFIG,
    SUBMIT_RULE,
    CompleteRequestsInput,
    GatewayPoolInput,
    IpConfigResult,
    IpConfigSubmission,
    LoadBalancerInput,
    RequestReply,
    RuleResult,
    RuleSubmission,
)

log = logging.getLogger(__name__)


def load_balancer_workflow_id(scope: AzureScope) -> str:
    return resource_names.load_balancer_workflow_id(
        scope.subscription_id, scope.load_balancer_resource_group, scope.load_balancer_name
    )


def gateway_pool_workflow_id(pool: GatewayPool) -> str:
    return resource_names.gateway_pool_workflow_id(
        pool.subscription_id, pool.resource_group, pool.name
    )


def _reply_token() -> str:
    """This attempt's task token: a retried attempt submits again with its own (the change is
    idempotent), and the answer for a timed-out attempt finds nobody waiting."""
    return base64.b64encode(activity.info().task_token).decode("ascii")


class SingleWriterActivities:
    def __init__(
        self,
        client: Client,
        task_queue: str = resource_names.CONTROLLER_TASK_QUEUE,
        *,
        batch_window_seconds: float = DEFAULT_BATCH_WINDOW_SECONDS,
        batch_quiet_seconds: float = DEFAULT_BATCH_QUIET_SECONDS,
    ) -> None:
        """The batch settings go into single writers started here (contracts.workflow_io)."""
        self._client = client
        self._task_queue = task_queue
        self._batch_window_seconds = batch_window_seconds
        self._batch_quiet_seconds = batch_quiet_seconds

    @activity.defn(name=ENSURE_LOAD_BALANCER_RULE)
    async def ensure_load_balancer_rule(self, call: EnsureRuleCall) -> RuleResult:
        """Completes with the load balancer workflow's RuleResult."""
        await self._submit_rule(
            call.scope,
            RuleSubmission(call.rule.owner_uid, call.rule, _reply_token(), verify=call.verify),
        )

    @activity.defn(name=REMOVE_LOAD_BALANCER_RULE)
    async def remove_load_balancer_rule(self, call: RemoveRuleCall) -> None:
        await self._submit_rule(call.scope, RuleSubmission(call.owner_uid, None, _reply_token()))

    @activity.defn(name=ENSURE_POOL_IP_CONFIG)
    async def ensure_pool_ip_config(self, call: EnsureIpConfigCall) -> IpConfigResult:
        """Completes with the pool workflow's IpConfigResult."""
        await self._submit_ip_config(
            call.scope,
            call.pool,
            IpConfigSubmission(
                call.ip_config.owner_uid, call.ip_config, _reply_token(), verify=call.verify
            ),
        )

    @activity.defn(name=REMOVE_POOL_IP_CONFIG)
    async def remove_pool_ip_config(self, call: RemoveIpConfigCall) -> None:
        await self._submit_ip_config(
            call.scope, call.pool, IpConfigSubmission(call.owner_uid, None, _reply_token())
        )

    @activity.defn(name=COMPLETE_SINGLE_WRITER_REQUESTS)
    async def complete_requests(self, replies: CompleteRequestsInput) -> int:
        """Complete each waiting request activity; returns how many were still waiting."""
        delivered = await asyncio.gather(*(self._complete(reply) for reply in replies.replies))
        return sum(delivered)

    async def _complete(self, reply: RequestReply) -> bool:
        handle = self._client.get_async_activity_handle(
            task_token=base64.b64decode(reply.reply_token)
        )
        try:
            # The caller's workflow may have been cancelled while it waited. Its request was
            # applied regardless; reporting the cancel (not the result) makes the caller undo
            # it, as a cancelled step does.
            try:
                await handle.heartbeat()
            except AsyncActivityCancelledError:
                await handle.report_cancellation()
                return True
            if reply.failure is not None:
                await handle.fail(
                    ApplicationError(
                        reply.failure.message, type=reply.failure.error_type, non_retryable=True
                    )
                )
            else:
                await handle.complete(reply.rule or reply.ip_config)
        except RPCError as err:
            # The caller timed out or was completed already: it submits again if it still
            # needs the answer.
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            log.info("request no longer waiting: %s", err.message)
            return False
        return True

    async def _submit_rule(self, scope: AzureScope, submission: RuleSubmission) -> NoReturn:
        await self._client.start_workflow(
            LOAD_BALANCER_WORKFLOW,
            LoadBalancerInput(
                scope=scope,
                batch_window_seconds=self._batch_window_seconds,
                batch_quiet_seconds=self._batch_quiet_seconds,
            ),
            id=load_balancer_workflow_id(scope),
            task_queue=self._task_queue,
            start_signal=SUBMIT_RULE,
            start_signal_args=[submission],
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(
                        search_attributes.LOAD_BALANCER, scope.load_balancer_name.lower()
                    )
                ]
            ),
            static_summary=f"load balancer {scope.load_balancer_name}",
        )
        activity.raise_complete_async()

    async def _submit_ip_config(
        self, scope: AzureScope, pool: GatewayPool, submission: IpConfigSubmission
    ) -> NoReturn:
        await self._client.start_workflow(
            GATEWAY_POOL_WORKFLOW,
            GatewayPoolInput(
                scope=scope,
                pool=pool,
                batch_window_seconds=self._batch_window_seconds,
                batch_quiet_seconds=self._batch_quiet_seconds,
            ),
            id=gateway_pool_workflow_id(pool),
            task_queue=self._task_queue,
            start_signal=SUBMIT_IP_CONFIG,
            start_signal_args=[submission],
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(search_attributes.POOL, pool.name)]
            ),
            static_summary=f"gateway pool {pool.name} ({pool.kind})",
        )
        activity.raise_complete_async()

    def activities(self) -> list[Any]:
        """The bound activity methods, for a Worker's `activities=`."""
        return [
            self.ensure_load_balancer_rule,
            self.remove_load_balancer_rule,
            self.ensure_pool_ip_config,
            self.remove_pool_ip_config,
            self.complete_requests,
        ]
