"""A gateway node whose agent does not answer never blocks its configuration (issue 13), on the
real dev server and API server with the ARM emulator: an agent killed in the middle of its apply
(sim/silent_agent.py, a real process, SIGKILLed), an agent that answers again without saying it
started (the node retry timer finds it), and an agent that is down while its configuration is
deleted. The agents that serve are the real node activities with the dry-run
dataplane (tests/fixtures/dry_run_agents.py).

Set EGRESSGW_RECORD_HISTORIES=1 to (re)write these runs' histories under tests/replay/next/.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from kubernetes_asyncio.client import ApiClient
from temporalio.api.enums.v1 import EventType

from contracts import node_io, resource_names
from contracts.activity_io import ENSURE_POOL_IP_CONFIG, REMOVE_SGC_FINALIZER, SgcRef
from contracts.workflow_io import GET_STATUS, ConfigurationStatus, SpecDelivery
from egressgw.agent_process import RUNNING_GATEWAY_CONFIGS, NodeSync
from egressgw.dev.temporal_server import TemporalDevServer
from sim.silent_agent import silent_agent
from tests.fixtures.dry_run_agents import agents, node_names
from tests.fixtures.sgc_status import condition
from tests.fixtures.waiting import wait_for
from tests.fixtures.workflow_stack import Stack, StackOptions, config_id
from workflows.node_decisions import NOT_ANSWERING

ANSWER_TIMEOUT = 4  # seconds; the node calls' heartbeat timeout is then 5 s (its floor)


@pytest.fixture
def stack_options() -> StackOptions:
    return StackOptions(
        batch_quiet=timedelta(0),
        configure_nodes=True,
        node_answer_timeout_seconds=ANSWER_TIMEOUT,
    )


async def conditions(stack: Stack, name: str) -> dict[str, dict[str, str]]:
    """The object's conditions by type; none before its first status."""
    obj = await stack.get_sgc(name)
    if obj is None or not obj.get("status"):
        return {}
    return {c: condition(obj, c) for c in ("Ready", "Degraded")}


async def test_an_agent_killed_during_its_apply_is_named_and_re_applied_when_it_returns(
    stack: Stack, agent_kube: ApiClient, tmp_path: Path, temporal_server: TemporalDevServer
) -> None:
    healthy, silent = node_names(stack)
    async with agents(stack, agent_kube, tmp_path, [healthy]) as running:
        spec = stack.vmss_spec()
        sgc = await stack.create_sgc("killed", spec)
        async with silent_agent(temporal_server.address, silent) as dying:
            await stack.deliver(SpecDelivery(sgc=sgc, generation=1, spec=spec))
            await dying.started(node_io.APPLY_NODE_GATEWAY)
            await dying.kill()

        async def ready_naming_the_silent_node() -> bool:
            found = await conditions(stack, "killed")
            return (
                bool(found)
                and found["Ready"]["status"] == "True"
                and found["Degraded"]["status"] == "True"
            )

        # The pass went on without the node: the other node serves, the silent one is named.
        await wait_for(ready_naming_the_silent_node, what="Ready with the silent node named")
        degraded = (await conditions(stack, "killed"))["Degraded"]
        assert degraded["reason"] == "GatewayNodesNotReady"
        assert f"{silent}: {NOT_ANSWERING}" in degraded["message"]
        assert healthy not in degraded["message"]
        assert await running[healthy].probe_status(sgc.uid) == 200
        status = await stack.handle(sgc).query(GET_STATUS, result_type=ConfigurationStatus)
        assert [p.node_name for p in status.node_problems] == [silent]

        # The node's agent comes back and says so, as egressgw agent does when it starts.
        async with agents(stack, agent_kube, tmp_path, [silent]) as back:
            await stack.handle(sgc).signal(
                node_io.NODE_AGENT_STARTED, node_io.NodeAgentStarted(silent, "restarted")
            )

            async def cleared() -> bool:
                return (await conditions(stack, "killed"))["Degraded"]["status"] == "False"

            await wait_for(cleared, what="Degraded cleared once the agent is back")
            assert back[silent].dataplane.interfaces() == {f"wg-{status.port}": sgc.uid}
            assert await back[silent].probe_status(sgc.uid) == 200
            assert (await conditions(stack, "killed"))["Ready"]["status"] == "True"
        await stack.record("nodes_agent_killed_mid_apply", sgc)


async def test_an_agent_back_while_its_apply_still_waits_is_applied_again_at_once(
    stack: Stack, agent_kube: ApiClient, tmp_path: Path, temporal_server: TemporalDevServer
) -> None:
    healthy, restarted = node_names(stack)
    async with agents(stack, agent_kube, tmp_path, [healthy]):
        spec = stack.vmss_spec()
        sgc = await stack.create_sgc("back", spec)
        async with silent_agent(temporal_server.address, restarted) as dying:
            applying = asyncio.create_task(
                stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))
            )
            await dying.started(node_io.APPLY_NODE_GATEWAY)
            await dying.kill()
        # The agent is back, and says so, before the killed one's call has timed out.
        async with agents(stack, agent_kube, tmp_path, [restarted]) as back:
            await stack.handle(sgc).signal(
                node_io.NODE_AGENT_STARTED, node_io.NodeAgentStarted(restarted, "restarted")
            )
            status = await applying

            # The pass did not wait for the dead call: both nodes serve, nothing was degraded.
            assert status.phase == "Ready", status.message
            assert status.node_problems == ()
            assert back[restarted].dataplane.interfaces() == {f"wg-{status.port}": sgc.uid}
            events = await stack.events(sgc)
            assert not any(reason == "GatewayNodesNotReady" for _, reason, _ in events)
            await stack.record("nodes_agent_back_during_apply", sgc)


async def test_an_agent_that_answers_again_without_a_start_signal_is_retried_in_background(
    stack: Stack, agent_kube: ApiClient, tmp_path: Path, temporal_server: TemporalDevServer
) -> None:
    healthy, stalled = node_names(stack)
    async with agents(stack, agent_kube, tmp_path, [healthy]):
        spec = stack.vmss_spec()
        sgc = await stack.create_sgc("stalled", spec)
        async with silent_agent(temporal_server.address, stalled) as dying:
            await stack.deliver(SpecDelivery(sgc=sgc, generation=1, spec=spec))
            await dying.started(node_io.APPLY_NODE_GATEWAY)
            await dying.kill()

        async def named() -> bool:
            found = await conditions(stack, "stalled")
            return bool(found) and stalled in found["Degraded"]["message"]

        await wait_for(named, what="Degraded naming the node that stopped answering")
        # The node answers again, as an agent does after a stall or a network blip: its worker
        # polls, and nothing tells the configuration (no node_agent_started). The drift pass is
        # 5 minutes away; the node retry timer's first try is 15 s after the node was named.
        async with agents(stack, agent_kube, tmp_path, [stalled]) as back:

            async def cleared() -> bool:
                return (await conditions(stack, "stalled"))["Degraded"]["status"] == "False"

            await wait_for(cleared, timeout=90, what="Degraded cleared by the node retry timer")
            status = await stack.handle(sgc).query(GET_STATUS, result_type=ConfigurationStatus)
            assert status.phase == "Ready", status.message
            assert status.node_problems == ()
            assert back[stalled].dataplane.interfaces() == {f"wg-{status.port}": sgc.uid}
            assert await back[stalled].probe_status(sgc.uid) == 200
        # Azure was left alone: one pool ipConfig request (the first pass), no drift pass.
        assert await scheduled(stack, sgc, ENSURE_POOL_IP_CONFIG) == 1

        # Every node serves: the configuration waits for its drift timer alone, no retry timer.
        async def drift_timer_only() -> bool:
            return await last_timer(stack, sgc) == timedelta(seconds=300)

        await wait_for(drift_timer_only, what="the drift timer, once every node serves")
        await stack.record("nodes_retried_without_start_signal", sgc)


async def last_timer(stack: Stack, sgc: SgcRef) -> timedelta | None:
    """The duration of the configuration's last timer."""
    events = (await stack.handle(sgc).fetch_history()).events
    timers = [
        event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        for event in events
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]
    return timers[-1] if timers else None


async def scheduled(stack: Stack, sgc: SgcRef, activity_type: str) -> int:
    """How many activities of `activity_type` the configuration's history scheduled."""
    events = (await stack.handle(sgc).fetch_history()).events
    return sum(
        1
        for event in events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == activity_type
    )


async def test_a_deletion_does_not_wait_for_a_node_whose_agent_is_down(
    stack: Stack, agent_kube: ApiClient, tmp_path: Path
) -> None:
    up, down = node_names(stack)
    async with agents(stack, agent_kube, tmp_path, [up, down]) as running:
        spec = stack.vmss_spec()
        sgc = await stack.create_sgc("orphaned", spec)
        status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))
        assert status.phase == "Ready", status.message
        node_state = running[down].dataplane  # what the node holds, whatever its agent does
        await running[down].stop()

        # The user deletes; the watcher delivers the deletion.
        await stack.delete_sgc("orphaned")
        await stack.deliver(SpecDelivery(sgc=sgc, generation=1, spec=spec, deleting=True))

        async def gone() -> bool:
            return await stack.get_sgc("orphaned") is None

        await wait_for(gone, what="the object gone with one agent down")
        assert stack.prefix(sgc.uid) is None  # Azure was cleaned up
        assert await stack.secret_names() == []
        assert running[up].dataplane.interfaces() == {}
        interface = f"wg-{status.port}"
        assert node_state.interfaces() == {interface: sgc.uid}  # left behind on the down node
        await stack.handle(sgc).result()
        # The finalizer went before the down node's call had even timed out.
        order = await event_order(stack, sgc)
        down_queue = resource_names.node_task_queue(down)
        assert order["finalizer scheduled"] < order[f"remove on {down_queue} timed out"]

    # The agent returns: its node sync finds no configuration that wants the gateway.
    async with agents(stack, agent_kube, tmp_path, [down], {down: node_state}) as back:
        sync = NodeSync(
            stack.client,
            down,
            back[down].node.remove_orphans,
            visibility_query=only_this_configuration(sgc),
        )
        done = await sync.run_round()
        assert done.failed == ()
        assert interface in " ".join(done.removed or ())
        assert node_state.interfaces() == {}
    await stack.record("nodes_delete_with_agent_down", sgc)


async def event_order(stack: Stack, sgc: SgcRef) -> dict[str, int]:
    """Event IDs in the configuration's history: when the finalizer removal was scheduled, and
    when the gateway removal on each node's task queue timed out."""
    events = (await stack.handle(sgc).fetch_history()).events
    removals: dict[int, str] = {}
    order: dict[str, int] = {}
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled = event.activity_task_scheduled_event_attributes
            if scheduled.activity_type.name == REMOVE_SGC_FINALIZER:
                order["finalizer scheduled"] = event.event_id
            if scheduled.activity_type.name == node_io.REMOVE_NODE_GATEWAY:
                removals[event.event_id] = scheduled.task_queue.name
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            timed_out = event.activity_task_timed_out_event_attributes
            if timed_out.scheduled_event_id in removals:
                order[f"remove on {removals[timed_out.scheduled_event_id]} timed out"] = (
                    event.event_id
                )
    return order


def only_this_configuration(sgc: SgcRef) -> str:
    """The agent's own visibility query, narrowed to this test's configuration (the session's
    server also runs other tests' configurations, whose workers are gone)."""
    return f"{RUNNING_GATEWAY_CONFIGS} AND WorkflowId = '{config_id(sgc)}'"
