"""apply_load_balancer: one GET, the pure plan, then at most one write (PUT with If-Match, or
DELETE when nothing is left). Called only by LoadBalancerWorkflow, the single writer."""

from __future__ import annotations

from typing import Any, cast

from azure.core.exceptions import ResourceNotFoundError
from azure.core.polling import AsyncLROPoller
from azure.mgmt.network.aio import NetworkManagementClient
from temporalio import activity

from activities.azure import errors, long_operations
from activities.azure.arm_json import LoadBalancerJson
from activities.azure.arm_payloads import as_object, json_body, raw_json
from activities.azure.load_balancer_plan import (
    LoadBalancerAction,
    LoadBalancerTarget,
    PlanError,
    frontend_ips,
    plan_load_balancer,
)
from contracts import activity_io, resource_names
from contracts.activity_io import AppliedRule, ApplyLoadBalancerInput, ApplyLoadBalancerResult
from contracts.azure_state import AzureScope


def target_of(scope: AzureScope) -> LoadBalancerTarget:
    return LoadBalancerTarget(
        subscription_id=scope.subscription_id,
        resource_group=scope.load_balancer_resource_group,
        name=scope.load_balancer_name,
        location=scope.location,
        subnet_id=resource_names.subnet_id(
            scope.subscription_id, scope.vnet_resource_group, scope.vnet_name, scope.subnet_name
        ),
    )


class LoadBalancerActivities:
    def __init__(self, network: NetworkManagementClient) -> None:
        self._network = network

    def _put(
        self, rg: str, name: str, body: object, headers: dict[str, str]
    ) -> long_operations.Begin[Any]:
        async def begin(token: str | None) -> AsyncLROPoller[Any]:
            return await self._network.load_balancers.begin_create_or_update(
                rg, name, json_body(body), headers=headers, cls=raw_json, continuation_token=token
            )

        return begin

    def _delete(self, rg: str, name: str, headers: dict[str, str]) -> long_operations.Begin[None]:
        async def begin(token: str | None) -> AsyncLROPoller[None]:
            return await self._network.load_balancers.begin_delete(
                rg, name, headers=headers, continuation_token=token
            )

        return begin

    @activity.defn(name=activity_io.APPLY_LOAD_BALANCER)
    async def apply_load_balancer(self, data: ApplyLoadBalancerInput) -> ApplyLoadBalancerResult:
        """Make the load balancer carry exactly `data.rules` (all owners) and nothing of ours
        besides. A 412 (someone wrote in between) is retryable: the retry re-reads and re-plans."""
        target = target_of(data.scope)
        lb_id = resource_names.load_balancer_id(
            target.subscription_id, target.resource_group, target.name
        )
        rg, name = target.resource_group, target.name
        put_key, delete_key = f"PUT {lb_id}", f"DELETE {lb_id}"
        await long_operations.resume_interrupted(put_key, self._put(rg, name, {}, {}))
        await long_operations.resume_interrupted(delete_key, self._delete(rg, name, {}))
        with errors.azure_errors(f"reading load balancer {name}"):
            try:
                current: LoadBalancerJson | None = cast(
                    LoadBalancerJson,
                    as_object(await self._network.load_balancers.get(rg, name, cls=raw_json)),
                )
            except ResourceNotFoundError:
                current = None
        long_operations.require_settled(f"load balancer {name}", current)
        try:
            plan = plan_load_balancer(current, target, data.rules)
        except PlanError as err:
            raise errors.refused(
                errors.LOAD_BALANCER_FULL, f"load balancer {name}: {err}"
            ) from None
        etag = (current or {}).get("etag")
        result: LoadBalancerJson | None = current
        if plan.action is LoadBalancerAction.DELETE:
            headers = {"If-Match": etag} if etag else {}
            with errors.azure_errors(f"deleting load balancer {name}"):
                await long_operations.run(delete_key, self._delete(rg, name, headers))
            return ApplyLoadBalancerResult(rules=(), changes=plan.changes, deleted=True)
        if plan.action is LoadBalancerAction.PUT:
            # A new load balancer is created only if still absent: two writers cannot both
            # create one (the loser gets 412 and re-plans).
            headers = {"If-Match": etag} if etag else {"If-None-Match": "*"}
            with errors.azure_errors(f"updating load balancer {name}"):
                written = await long_operations.run(
                    put_key, self._put(rg, name, plan.body, headers)
                )
            result = cast(LoadBalancerJson, as_object(written))
        if result is None:
            # No rules wanted and no load balancer: nothing to do, nothing left.
            return ApplyLoadBalancerResult(rules=(), changes=plan.changes, deleted=True)
        addresses = frontend_ips(result, data.rules)
        missing = [r.owner_uid for r in data.rules if r.owner_uid not in addresses]
        if missing:
            raise errors.unexpected(
                f"load balancer {name} has no private IP on the frontend of rule(s) "
                f"{', '.join(missing)} yet"
            )
        return ApplyLoadBalancerResult(
            rules=tuple(
                AppliedRule(r.owner_uid, addresses[r.owner_uid], plan.ports[r.owner_uid])
                for r in data.rules
            ),
            changes=plan.changes,
        )
