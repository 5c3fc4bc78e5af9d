"""Gateway nodes configured by GatewayConfigWorkflow through node agents, on the real dev server
and API server with the ARM emulator (tests/fixtures/workflow_stack.py). The agents here are the
real node activities (agent/node_activities.py) with the dry-run dataplane, each a Temporal worker
on its node's task queue with its own probe server and GatewayStatus report, talking to
Kubernetes as the agent's ServiceAccount (deploy/rbac/agent.yaml): everything but the kernel
(tests/netns covers that part).

Set EGRESSGW_RECORD_HISTORIES=1 to (re)write these runs' histories under tests/replay/next/.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio.client import ApiClient
from temporalio.worker import Worker

from agent.dry_run_dataplane import DryRunDataplane
from agent.gateway_secret_reader import GatewaySecretReader
from agent.gateway_status_report import GatewayStatusReport
from agent.node_activities import NodeActivities
from agent.probe_server import ProbeServer
from agent.wireguard_keys import generate_private_key, public_key_of, to_base64
from contracts import kube_names, node_io, resource_names
from contracts.workflow_io import PEERS_CHANGED, SpecDelivery
from tests.fixtures.kube_accounts import ComponentAccount, grant_namespace
from tests.fixtures.sgc_status import condition
from tests.fixtures.waiting import wait_for
from tests.fixtures.workflow_stack import G, Stack, StackOptions, V


@pytest.fixture
def stack_options() -> StackOptions:
    return StackOptions(
        batch_quiet=timedelta(0), configure_nodes=True, node_start_timeout_seconds=3
    )


@pytest.fixture
async def agent_kube(
    stack: Stack, kube_api: ApiClient, agent_account: ComponentAccount, agent_api: ApiClient
) -> ApiClient:
    """The agents' client: the agent's ServiceAccount, its Role bound in the namespace of the
    key Secrets and GatewayStatuses (where a cluster runs the agents)."""
    await grant_namespace(kube_api, agent_account, stack.secret_namespace)
    return agent_api


@dataclass
class DryRunAgent:
    """One node's agent: its activities on egressgw-node-<name>, probe server and records."""

    node_name: str
    dataplane: DryRunDataplane
    probe: ProbeServer
    worker: Worker
    running: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.probe.start()
        self.running = asyncio.create_task(self.worker.run())

    async def stop(self) -> None:
        if self.running is not None:
            await self.worker.shutdown()
            with contextlib.suppress(asyncio.CancelledError):
                await self.running
            self.running = None
        await self.probe.stop()

    async def probe_status(self, uid: str) -> int:
        url = f"http://127.0.0.1:{self.probe.port}{kube_names.PROBE_PATH_PREFIX}{uid}"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status


def node_names(stack: Stack) -> list[str]:
    pool = stack.vmss_pool
    return [pool.computer_name(i) for i in range(pool.instance_count)]


def make_agent(stack: Stack, api: ApiClient, node: str, records: Path) -> DryRunAgent:
    dataplane = DryRunDataplane(records / f"{node}.jsonl")
    probe = ProbeServer("127.0.0.1", 0, drain_seconds=0)
    activities = NodeActivities(
        node,
        dataplane,
        GatewaySecretReader(api),
        probe,
        GatewayStatusReport(api, node_name=node, namespace=stack.secret_namespace),
    )
    worker = Worker(
        stack.client,
        task_queue=resource_names.node_task_queue(node),
        activities=activities.activities(),
    )
    return DryRunAgent(node, dataplane, probe, worker)


@contextlib.asynccontextmanager
async def agents(
    stack: Stack, api: ApiClient, records: Path, nodes: Sequence[str]
) -> AsyncIterator[dict[str, DryRunAgent]]:
    started = {node: make_agent(stack, api, node, records) for node in nodes}
    for agent in started.values():
        await agent.start()
    try:
        yield started
    finally:
        for agent in started.values():
            await agent.stop()


async def gateway_status(stack: Stack, node: str) -> dict[str, Any]:
    obj: dict[str, Any] = await stack.custom.get_namespaced_custom_object(
        G, V, stack.secret_namespace, kube_names.GATEWAY_STATUS_PLURAL, node
    )
    return obj


async def create_pod_endpoint(stack: Stack, name: str, sgc: str, ip: str, key: str) -> None:
    body = {
        "apiVersion": f"{G}/{V}",
        "kind": kube_names.POD_ENDPOINT_KIND,
        "metadata": {"name": name},
        "spec": {"staticGatewayConfiguration": sgc, "podIpAddress": ip, "podPublicKey": key},
    }
    await stack.custom.create_namespaced_custom_object(
        G, V, stack.namespace, kube_names.POD_ENDPOINT_PLURAL, body
    )


async def test_every_gateway_node_is_configured_and_reported(
    stack: Stack, agent_kube: ApiClient, tmp_path: Path
) -> None:
    nodes = node_names(stack)
    async with agents(stack, agent_kube, tmp_path, nodes) as running:
        spec = stack.vmss_spec()
        sgc = await stack.create_sgc("everywhere", spec)
        status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

        assert status.phase == "Ready", status.message
        assert status.node_problems == ()
        interface = f"wg-{status.port}"
        for node in nodes:
            agent = running[node]
            assert agent.dataplane.interfaces() == {interface: sgc.uid}
            assert await agent.probe_status(sgc.uid) == 200
            reported = await gateway_status(stack, node)
            assert reported["spec"]["readyGatewayConfigurations"] == [
                {
                    "staticGatewayConfiguration": f"{stack.namespace}/everywhere",
                    "interfaceName": interface,
                }
            ]
        # Each node SNATs to its own secondary IP: the one the pool workflow reported for it.
        secondary = {n.node_name: n.secondary_ip for n in status.nodes}
        for node in nodes:
            records = (tmp_path / f"{node}.jsonl").read_text()
            assert secondary[node] in records
        gateway = await stack.handle(sgc).query(
            node_io.NODE_GATEWAY_QUERY, nodes[0], result_type=node_io.NodeGateway
        )
        assert gateway is not None and gateway.secondary_ip == secondary[nodes[0]]
        assert "PrivateKey" not in (tmp_path / f"{nodes[0]}.jsonl").read_text()
        await stack.record("nodes_configured", sgc, single_writers=True)


async def test_a_node_without_agent_is_named_and_comes_back_when_its_agent_starts(
    stack: Stack, agent_kube: ApiClient, tmp_path: Path
) -> None:
    healthy, dead = node_names(stack)
    async with agents(stack, agent_kube, tmp_path, [healthy]) as running:
        spec = stack.vmss_spec()
        sgc = await stack.create_sgc("half", spec)
        status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

        assert status.phase == "Degraded"
        assert [p.node_name for p in status.node_problems] == [dead]
        obj = await stack.get_sgc("half")
        assert obj is not None
        assert condition(obj, "Ready")["status"] == "True"  # the healthy node serves
        degraded = condition(obj, "Degraded")
        assert degraded["status"] == "True" and dead in degraded["message"]
        assert "no agent picked up the work" in degraded["message"]
        assert await running[healthy].probe_status(sgc.uid) == 200
        assert obj["status"]["gatewayServerProfile"]["port"] == status.port

        # The agent starts and tells the workflow, as egressgw agent does on start.
        async with agents(stack, agent_kube, tmp_path, [dead]) as late:
            await stack.handle(sgc).signal(
                node_io.NODE_AGENT_STARTED, node_io.NodeAgentStarted(dead, "test-instance")
            )

            async def recovered() -> bool:
                current = await stack.get_sgc("half")
                return current is not None and condition(current, "Degraded")["status"] == "False"

            await wait_for(recovered, what="the late node to be configured")
            assert await late[dead].probe_status(sgc.uid) == 200
            events = await stack.events(sgc)
            assert any(
                reason == kube_names.REASON_GATEWAY_NODES_NOT_READY for _, reason, _ in events
            )
            await stack.record("nodes_agent_late", sgc)


async def test_pod_endpoints_become_peers_and_deletion_clears_the_nodes(
    stack: Stack, agent_kube: ApiClient, tmp_path: Path
) -> None:
    nodes = node_names(stack)
    async with agents(stack, agent_kube, tmp_path, nodes) as running:
        spec = stack.vmss_spec()
        sgc = await stack.create_sgc("with-pods", spec)
        status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))
        assert status.phase == "Ready", status.message

        pod_key = to_base64(public_key_of(generate_private_key()))
        await create_pod_endpoint(stack, "pod-a", "with-pods", "10.244.1.7/32", pod_key)
        # A malformed key must not keep the good pod from its gateway.
        await create_pod_endpoint(stack, "pod-bad", "with-pods", "10.244.1.8/32", "bm90LWEta2V5")
        await stack.handle(sgc).signal(PEERS_CHANGED)  # what the PodEndpoint watcher sends

        async def peers_everywhere() -> bool:
            return all(
                [str(p.allowed_ip) for p in running[n].dataplane.peers(status.port)]
                == ["10.244.1.7"]
                for n in nodes
            )

        await wait_for(peers_everywhere, what="the pod to become a peer on every node")
        listed = [
            {
                "podEndpoint": f"{stack.namespace}/pod-a",
                "interfaceName": f"wg-{status.port}",
                "publicKey": pod_key,
            }
        ]

        async def reported() -> bool:
            # A peer sync's GatewayStatus write follows it in the background.
            spec = (await gateway_status(stack, nodes[0]))["spec"]
            return bool(spec.get("readyPeerConfigurations") == listed)

        await wait_for(reported, what="GatewayStatus to list the pod")

        handle = await stack.deliver(SpecDelivery(sgc=sgc, generation=1, spec=spec, deleting=True))
        await handle.result()
        for node in nodes:
            assert running[node].dataplane.interfaces() == {}
            assert await running[node].probe_status(sgc.uid) == 503
        await stack.record("nodes_peers_and_delete", sgc)
