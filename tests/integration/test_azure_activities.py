"""The Azure activities for the load balancer and public IP prefixes, run as real activities
(ActivityEnvironment) with the real aio clients against the ARM emulator; writes are counted
with the emulator's request log."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from azure.mgmt.network.aio import NetworkManagementClient
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.testing import ActivityEnvironment

from activities.azure import errors
from activities.azure.arm_payloads import json_body
from activities.azure.load_balancer import LoadBalancerActivities
from activities.azure.public_ip_prefix import PublicIpPrefixActivities
from contracts import resource_names
from contracts.activity_io import (
    ApplyLoadBalancerInput,
    ByoPrefixInput,
    DeletePrefixInput,
    EnsurePrefixInput,
    LoadBalancerRule,
)
from contracts.azure_state import AzureScope
from sim.arm.server import ArmEmulator
from sim.topology import Topology

AsyncNet = Callable[..., Awaitable[NetworkManagementClient]]
LB_NAME = resource_names.DEFAULT_LOAD_BALANCER_NAME
POOL_A = "3f1e0c9a-1111-4a4a-9b9b-aaaaaaaaaaaa"
POOL_B = "3f1e0c9a-2222-4a4a-9b9b-bbbbbbbbbbbb"


def _uid(n: int) -> str:
    return str(uuid.UUID(int=n))


def _rule(n: int, pool: str = POOL_A) -> LoadBalancerRule:
    uid = _uid(n)
    return LoadBalancerRule(owner_uid=uid, lb_pool_name=pool, probe_path=f"/gw/{uid}")


def _scope(t: Topology, **changes: str) -> AzureScope:
    scope = AzureScope(
        subscription_id=t.subscription_id,
        location=t.location,
        resource_group=t.resource_group,
        load_balancer_resource_group=t.resource_group,
        load_balancer_name=LB_NAME,
        vnet_resource_group=t.resource_group,
        vnet_name=t.vnet_name,
        subnet_name=t.gateway_subnet_name,
    )
    return dataclasses.replace(scope, **changes)


@pytest.fixture
async def network(async_network_client: AsyncNet) -> NetworkManagementClient:
    # retry_total=0: what the product's wiring uses; errors reach the activity's classification.
    return await async_network_client(retry_total=0)


@pytest.fixture
def lb_acts(network: NetworkManagementClient) -> LoadBalancerActivities:
    return LoadBalancerActivities(network)


@pytest.fixture
def prefix_acts(network: NetworkManagementClient) -> PublicIpPrefixActivities:
    return PublicIpPrefixActivities(network)


def _lb_id(t: Topology) -> str:
    return resource_names.load_balancer_id(t.subscription_id, t.resource_group, LB_NAME)


async def _apply(
    acts: LoadBalancerActivities, t: Topology, *rules: LoadBalancerRule, **scope: str
) -> Any:
    return await ActivityEnvironment().run(
        acts.apply_load_balancer, ApplyLoadBalancerInput(_scope(t, **scope), rules)
    )


# --- load balancer -------------------------------------------------------------------------------


async def test_first_rule_creates_the_whole_load_balancer_and_a_rerun_writes_nothing(
    lb_acts: LoadBalancerActivities, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    t = arm_topology
    result = await _apply(lb_acts, t, _rule(1))
    lb = arm_emulator.resource(_lb_id(t))
    assert lb is not None
    assert lb["sku"]["name"] == "Standard"
    props = lb["properties"]
    [front] = props["frontendIPConfigurations"]
    assert front["name"] == POOL_A
    assert front["properties"]["privateIPAllocationMethod"] == "Dynamic"
    assert front["properties"]["subnet"]["id"].endswith(f"/subnets/{t.gateway_subnet_name}")
    assert [p["name"] for p in props["backendAddressPools"]] == [POOL_A]
    [probe] = props["probes"]
    assert probe["name"] == _uid(1)
    assert probe["properties"]["protocol"] == "Http"
    assert probe["properties"]["port"] == 8082
    assert probe["properties"]["requestPath"] == f"/gw/{_uid(1)}"
    assert probe["properties"]["intervalInSeconds"] == 5
    assert probe["properties"]["probeThreshold"] == 1
    [rule] = props["loadBalancingRules"]
    assert rule["properties"]["protocol"] == "Udp"
    assert rule["properties"]["enableFloatingIP"] is True
    assert rule["properties"]["frontendPort"] == rule["properties"]["backendPort"] == 6000
    [applied] = result.rules
    assert applied.owner_uid == _uid(1)
    assert applied.port == 6000
    assert applied.frontend_ip == front["properties"]["privateIPAddress"]
    assert applied.frontend_ip.startswith("10.225.0.")
    assert any("added rule" in c.description for c in result.changes)

    arm_emulator.request_log.clear()
    again = await _apply(lb_acts, t, _rule(1))
    assert arm_emulator.request_log.writes() == 0
    assert again.rules == result.rules
    assert again.changes == ()


async def test_ports_are_kept_and_the_lowest_free_port_is_reused(
    lb_acts: LoadBalancerActivities, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    t = arm_topology
    both = await _apply(lb_acts, t, _rule(1), _rule(2))
    assert {r.owner_uid: r.port for r in both.rules} == {_uid(1): 6000, _uid(2): 6001}
    only_second = await _apply(lb_acts, t, _rule(2))
    assert [(r.owner_uid, r.port) for r in only_second.rules] == [(_uid(2), 6001)]
    third = await _apply(lb_acts, t, _rule(2), _rule(3))
    assert {r.owner_uid: r.port for r in third.rules} == {_uid(2): 6001, _uid(3): 6000}
    # A second pool gets its own frontend IP and its own port space.
    other = await _apply(lb_acts, t, _rule(2), _rule(3), _rule(4, POOL_B))
    ports = {r.owner_uid: (r.frontend_ip, r.port) for r in other.rules}
    assert ports[_uid(4)][1] == 6000
    assert ports[_uid(4)][0] != ports[_uid(2)][0]
    lb = arm_emulator.resource(_lb_id(t))
    assert lb is not None
    assert len(lb["properties"]["loadBalancingRules"]) == 3


async def test_removing_the_last_rules_deletes_the_load_balancer(
    lb_acts: LoadBalancerActivities, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    t = arm_topology
    await _apply(lb_acts, t, _rule(1), _rule(2, POOL_B))
    one_left = await _apply(lb_acts, t, _rule(2, POOL_B))
    lb = arm_emulator.resource(_lb_id(t))
    assert lb is not None
    # Pool A's frontend and backend pool went with its last rule.
    assert [f["name"] for f in lb["properties"]["frontendIPConfigurations"]] == [POOL_B]
    assert [p["name"] for p in lb["properties"]["backendAddressPools"]] == [POOL_B]
    assert [p["name"] for p in lb["properties"]["probes"]] == [_uid(2)]
    assert any(f"removed frontend {POOL_A}" in c.description for c in one_left.changes)

    gone = await _apply(lb_acts, t)
    assert gone.deleted is True
    assert gone.rules == ()
    assert arm_emulator.resource(_lb_id(t)) is None
    arm_emulator.request_log.clear()
    still_gone = await _apply(lb_acts, t)
    assert still_gone.deleted is True
    assert arm_emulator.request_log.writes() == 0


async def test_a_rule_changed_out_of_band_is_repaired(
    lb_acts: LoadBalancerActivities,
    network: NetworkManagementClient,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
) -> None:
    t = arm_topology
    await _apply(lb_acts, t, _rule(1))
    lb = await network.load_balancers.get(t.resource_group, LB_NAME)
    doc = lb.as_dict()
    doc["properties"]["probes"][0]["properties"]["requestPath"] = "/somewhere-else"
    doc["properties"]["loadBalancingRules"][0]["properties"]["enableFloatingIP"] = False
    await (
        await network.load_balancers.begin_create_or_update(
            t.resource_group, LB_NAME, json_body(doc)
        )
    ).result()
    repaired = await _apply(lb_acts, t, _rule(1))
    assert any("replaced probe" in c.description for c in repaired.changes)
    assert any("replaced rule" in c.description for c in repaired.changes)
    fixed = arm_emulator.resource(_lb_id(t))
    assert fixed is not None
    assert fixed["properties"]["probes"][0]["properties"]["requestPath"] == f"/gw/{_uid(1)}"
    assert fixed["properties"]["loadBalancingRules"][0]["properties"]["enableFloatingIP"]
    assert repaired.rules[0].port == 6000


async def test_an_interrupted_put_is_resumed_from_the_heartbeated_token(
    lb_acts: LoadBalancerActivities, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    t = arm_topology
    arm_emulator.set_latency({"PUT loadBalancers": 1.5})
    beats: list[Any] = []
    token_seen = asyncio.Event()

    def on_heartbeat(*details: Any) -> None:
        beats.append(details[0])
        if details[0].get("token"):
            token_seen.set()

    first = ActivityEnvironment()
    first.on_heartbeat = on_heartbeat
    task = asyncio.ensure_future(
        first.run(lb_acts.apply_load_balancer, ApplyLoadBalancerInput(_scope(t), (_rule(1),)))
    )
    await asyncio.wait_for(token_seen.wait(), timeout=10)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert arm_emulator.request_log.count("PUT", "loadBalancers") == 1

    polls_before = arm_emulator.request_log.polls()
    retry = ActivityEnvironment()
    token_beat = next(b for b in beats if b.get("token"))
    retry.info = dataclasses.replace(retry.info, heartbeat_details=[token_beat])
    result = await retry.run(
        lb_acts.apply_load_balancer, ApplyLoadBalancerInput(_scope(t), (_rule(1),))
    )
    # Resumed: it polled the first PUT to its end instead of issuing another one.
    assert arm_emulator.request_log.count("PUT", "loadBalancers") == 1
    assert arm_emulator.request_log.polls() > polls_before
    assert result.rules[0].port == 6000
    lb = arm_emulator.resource(_lb_id(t))
    assert lb is not None
    assert lb["properties"]["provisioningState"] == "Succeeded"


# --- error classification, through the activity ---------------------------------------------


async def _apply_error(acts: LoadBalancerActivities, t: Topology, **scope: str) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await _apply(acts, t, _rule(1), **scope)
    return caught.value


async def test_throttling_is_retryable_after_the_delay_azure_asked_for(
    lb_acts: LoadBalancerActivities, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    arm_emulator.faults.add(effect="throttle", method="GET", count=1, retry_after=7)
    err = await _apply_error(lb_acts, arm_topology)
    assert not err.non_retryable
    assert err.type == errors.THROTTLED
    assert err.next_retry_delay == timedelta(seconds=7)
    assert "TooManyRequests" in err.message


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (503, 4)])
async def test_server_errors_are_retryable(
    lb_acts: LoadBalancerActivities,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
    status: int,
    retry_after: int | None,
) -> None:
    arm_emulator.faults.add(
        effect="error", method="PUT", status=status, retry_after=retry_after, count=1
    )
    err = await _apply_error(lb_acts, arm_topology)
    assert not err.non_retryable
    assert err.type == errors.SERVER_ERROR
    expected = timedelta(seconds=retry_after) if retry_after is not None else None
    assert err.next_retry_delay == expected
    # The retry converges.
    result = await _apply(lb_acts, arm_topology, _rule(1))
    assert result.rules[0].port == 6000


async def test_another_operation_in_progress_is_retryable(
    lb_acts: LoadBalancerActivities, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    arm_emulator.faults.add(
        effect="conflict", method="PUT", code="AnotherOperationInProgress", count=1
    )
    err = await _apply_error(lb_acts, arm_topology)
    assert not err.non_retryable
    assert err.type == errors.CONFLICT
    assert "AnotherOperationInProgress" in err.message


async def test_a_failed_long_running_operation_is_retryable_and_the_retry_repairs(
    lb_acts: LoadBalancerActivities, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    t = arm_topology
    arm_emulator.faults.add(
        effect="fail-operation",
        method="PUT",
        resource_type="loadBalancers",
        code="InternalOperationError",
        message="The operation failed half way.",
        count=1,
    )
    err = await _apply_error(lb_acts, t)
    assert not err.non_retryable
    assert err.type == errors.OPERATION_FAILED
    assert "InternalOperationError" in err.message
    failed = arm_emulator.resource(_lb_id(t))
    assert failed is not None
    assert failed["properties"]["provisioningState"] == "Failed"
    result = await _apply(lb_acts, t, _rule(1))
    assert any("was Failed" in c.description for c in result.changes)
    repaired = arm_emulator.resource(_lb_id(t))
    assert repaired is not None
    assert repaired["properties"]["provisioningState"] == "Succeeded"


async def test_a_validation_error_is_not_retried_and_carries_azures_message(
    lb_acts: LoadBalancerActivities, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    err = await _apply_error(lb_acts, arm_topology, subnet_name="no-such-subnet")
    assert err.non_retryable
    assert err.type == "AzureInvalidResourceReference"
    assert "no-such-subnet" in err.message
    assert f"load balancer {LB_NAME}" in err.message
    assert "Bearer" not in err.message
    assert arm_emulator.resource(_lb_id(arm_topology)) is None


async def test_a_dropped_connection_is_retryable(
    lb_acts: LoadBalancerActivities, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    # More than one: aiohttp itself re-sends an idempotent request once on a reused connection.
    arm_emulator.faults.add(effect="drop", method="GET", count=3)
    err = await _apply_error(lb_acts, arm_topology)
    assert not err.non_retryable
    assert err.type == errors.CONNECTION_ERROR


async def test_a_stale_etag_is_retryable(
    network: NetworkManagementClient, lb_acts: LoadBalancerActivities, arm_topology: Topology
) -> None:
    t = arm_topology
    await _apply(lb_acts, t, _rule(1))
    doc = (await network.load_balancers.get(t.resource_group, LB_NAME)).as_dict()
    with (
        pytest.raises(ApplicationError) as caught,
        errors.azure_errors(f"updating load balancer {LB_NAME}"),
    ):
        await network.load_balancers.begin_create_or_update(
            t.resource_group, LB_NAME, json_body(doc), headers={"If-Match": 'W/"stale"'}
        )
    assert not caught.value.non_retryable
    assert caught.value.type == errors.PRECONDITION_FAILED
    assert caught.value.category is ApplicationErrorCategory.BENIGN
    # The SDK exception (with its request) is not chained into what Temporal records.
    assert caught.value.__cause__ is None


# --- public IP prefixes --------------------------------------------------------------------------


async def test_managed_prefix_is_created_once(
    prefix_acts: PublicIpPrefixActivities, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    t = arm_topology
    data = EnsurePrefixInput(_scope(t), resource_names.managed_resource_name(_uid(9)), 31)
    prefix = await ActivityEnvironment().run(prefix_acts.ensure_managed_public_ip_prefix, data)
    assert prefix.managed
    assert prefix.prefix_length == 31
    assert prefix.cidr.endswith("/31")
    assert prefix.id == resource_names.public_ip_prefix_id(
        t.subscription_id, t.resource_group, data.name
    )
    arm_emulator.request_log.clear()
    again = await ActivityEnvironment().run(prefix_acts.ensure_managed_public_ip_prefix, data)
    assert again == prefix
    assert arm_emulator.request_log.writes() == 0


async def _byo(acts: PublicIpPrefixActivities, t: Topology, prefix_id: str, length: int) -> Any:
    return await ActivityEnvironment().run(
        acts.get_byo_public_ip_prefix, ByoPrefixInput(_scope(t), prefix_id, length)
    )


async def test_byo_prefix_is_checked(
    prefix_acts: PublicIpPrefixActivities, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    t = arm_topology
    mine = await ActivityEnvironment().run(
        prefix_acts.ensure_managed_public_ip_prefix,
        EnsurePrefixInput(_scope(t), "users-own-prefix", 30),
    )
    arm_emulator.request_log.clear()
    found = await _byo(prefix_acts, t, mine.id, 30)
    assert found.managed is False
    assert found.cidr == mine.cidr
    assert arm_emulator.request_log.writes() == 0

    with pytest.raises(ApplicationError) as wrong_length:
        await _byo(prefix_acts, t, mine.id, 31)
    assert wrong_length.value.non_retryable
    assert "/30" in wrong_length.value.message and "/31" in wrong_length.value.message

    elsewhere = mine.id.replace(t.subscription_id, "00000000-0000-0000-0000-000000000001")
    with pytest.raises(ApplicationError) as other_sub:
        await _byo(prefix_acts, t, elsewhere, 30)
    assert other_sub.value.non_retryable
    assert "spec.publicIpPrefixId" in other_sub.value.message
    assert "same subscription" in other_sub.value.message

    with pytest.raises(ApplicationError) as missing:
        await _byo(prefix_acts, t, mine.id + "-gone", 30)
    assert missing.value.non_retryable
    assert "does not exist" in missing.value.message

    with pytest.raises(ApplicationError) as garbage:
        await _byo(prefix_acts, t, "not-an-id", 30)
    assert garbage.value.non_retryable
    assert "spec.publicIpPrefixId" in garbage.value.message
    assert arm_emulator.request_log.writes() == 0


async def test_deleting_a_managed_prefix_deletes_its_public_ips_first(
    prefix_acts: PublicIpPrefixActivities,
    network: NetworkManagementClient,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
) -> None:
    t = arm_topology
    name = resource_names.managed_resource_name(_uid(5))
    prefix = await ActivityEnvironment().run(
        prefix_acts.ensure_managed_public_ip_prefix, EnsurePrefixInput(_scope(t), name, 30)
    )
    ip_name = resource_names.vm_pool_public_ip_name(name, "aks-gwvmpool-0-nic")
    await (
        await network.public_ip_addresses.begin_create_or_update(
            t.resource_group,
            ip_name,
            json_body(
                {
                    "location": t.location,
                    "sku": {"name": "Standard"},
                    "properties": {"publicIPPrefix": {"id": prefix.id}},
                }
            ),
        )
    ).result()
    data = DeletePrefixInput(_scope(t), name)
    result = await ActivityEnvironment().run(prefix_acts.delete_managed_public_ip_prefix, data)
    assert result.deleted
    assert result.deleted_public_ips == (ip_name,)
    assert arm_emulator.resource(prefix.id) is None
    ip_id = resource_names.public_ip_address_id(t.subscription_id, t.resource_group, ip_name)
    assert arm_emulator.resource(ip_id) is None
    arm_emulator.request_log.clear()
    again = await ActivityEnvironment().run(prefix_acts.delete_managed_public_ip_prefix, data)
    assert again.deleted is False
    assert arm_emulator.request_log.writes() == 0
