"""Two `egressgw controller` processes at once (no leader election): each configuration still
gets exactly one workflow and Azure ends up as with one controller."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client

from contracts import resource_names
from tests.fixtures.controller_stack import ControllerStack

NAMES = ("alpha", "beta", "gamma")

pytestmark = pytest.mark.slow


async def test_two_controllers_give_one_workflow_per_configuration(
    controller_stack: ControllerStack,
) -> None:
    stack = controller_stack
    await asyncio.gather(stack.start_controller("one"), stack.start_controller("two"))

    uids = {name: await stack.create_sgc(name) for name in NAMES}
    ready = {name: await stack.wait_ready(name) for name in NAMES}

    client = await Client.connect(stack.temporal.address)
    for name in NAMES:
        workflow_id = resource_names.gateway_config_workflow_id(stack.namespace, name)
        runs = [w async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
        assert len(runs) == 1, f"{name}: {len(runs)} runs"
    # Azure holds what one controller would have made: one prefix and one rule each, on
    # distinct ports, one ipConfig per configuration in the VMSS model.
    lb = stack.load_balancer()
    assert lb is not None
    rules = {r["name"]: r["properties"] for r in lb["properties"]["loadBalancingRules"]}
    assert set(rules) == set(uids.values())
    ports = sorted(r["frontendPort"] for r in rules.values())
    assert ports == [6000, 6001, 6002]
    for name, uid in uids.items():
        prefix = stack.prefix(uid)
        assert prefix is not None
        status = ready[name]["status"]
        assert status["egressIpPrefix"] == prefix["properties"]["ipPrefix"]
        assert status["gatewayServerProfile"]["port"] == rules[uid]["frontendPort"]
    assert stack.arm.request_log.count("PUT", "publicIPPrefixes") == len(NAMES)
    ip_configs = stack.vmss_ip_config_names()
    for uid in uids.values():
        assert ip_configs.count(resource_names.managed_resource_name(uid)) == 1
    # Neither process tripped over the other's writes.
    for controller in stack.controllers:
        assert controller.process is not None and controller.process.poll() is None
