"""`egressgw agent` as an operator meets it: flag and host errors with exit code 2; the node sync
against a real Temporal server (which configurations hold a gateway here, what may be removed,
who is told that the agent started); and a dry-run agent process, running as its own
ServiceAccount (deploy/rbac/agent.yaml) against the real API server, that serves its node's task
queue, reports GatewayStatus, removes orphans only when every configuration answered, and stops
cleanly on SIGTERM.

The configurations are stand-in workflows registered under GatewayConfigWorkflow's type name in
a Temporal namespace of their own, so that other tests' workflows on the session server are not
listed.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio import workflow
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from agent.node_settings import NodeSettings, WireguardBackend
from agent.wireguard_keys import generate_private_key, public_key_of, to_base64
from contracts import kube_names, resource_names
from contracts.node_io import (
    APPLY_NODE_GATEWAY,
    NODE_AGENT_STARTED,
    NODE_GATEWAY_QUERY,
    ApplyGatewayInput,
    ApplyGatewayResult,
    GatewayPeer,
    NodeAgentStarted,
    NodeGateway,
    SecretRef,
)
from contracts.workflow_io import GATEWAY_CONFIG_WORKFLOW
from egressgw.agent_flags import AgentOptions, HostFacts, startup_problem
from egressgw.agent_process import NodeSync, QueryOutcome, plan_sync, startup_finished
from egressgw.dev.temporal_server import TemporalDevServer
from sim.ports import free_port
from tests.fixtures.cluster import KubeObjects
from tests.fixtures.kube_grants import Granted
from tests.fixtures.metrics_scrape import scrape
from tests.fixtures.waiting import wait_for

NODE = "aks-gwpool-12345678-vmss000000"
OTHER_NODE = "aks-gwpool-12345678-vmss000001"
SYSTEM_NAMESPACE = "egressgw-system"
STAND_IN_QUEUE = "agent-test-configurations"


def gateway(
    port: int = 6000, uid: str = "5f0c2a6e-8a51-4d6b-9f53-2b1f0e7c9d01", **extra: Any
) -> NodeGateway:
    fields: dict[str, Any] = {
        "sgc_uid": uid,
        "sgc_namespace": "egressgw-demo",
        "sgc_name": f"sgc-{port}",
        "listen_port": port,
        "frontend_ip": "10.225.0.4",
        "primary_ip": "10.224.0.4",
        "secondary_ip": f"10.224.0.{port - 5990}",
        "private_key_secret": SecretRef(SYSTEM_NAMESPACE, f"sgc-{port}-key"),
        "public_key": "",
    }
    fields.update(extra)
    return NodeGateway(**fields)


# --- Flags and the host ---------------------------------------------------------------------------


def agent_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "egressgw", "agent", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


@pytest.mark.slow
def test_unusable_flags_are_refused_with_the_reason(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (kube_names.ENV_POD_NAMESPACE, kube_names.ENV_NODE_NAME)
    }
    ok = ("--node-name", NODE, "--namespace", SYSTEM_NAMESPACE, "--dry-run", str(tmp_path / "d"))

    no_node = agent_cli("--namespace", SYSTEM_NAMESPACE, env=env)
    bad_node = agent_cli("--node-name", "Not_A_Node", "--namespace", "n", env=env)
    no_namespace = agent_cli("--node-name", NODE, env=env)
    drain = agent_cli(*ok, "--probe-drain", "soon")
    interval = agent_cli(*ok, "--cleanup-interval", "0s")
    port = agent_cli(*ok, "--probe-port", "70000")
    tag = agent_cli(*ok, "--socket-tag", "much-too-long")
    kubeconfig = agent_cli(*ok, "--kubeconfig", str(tmp_path / "nope"))
    backend = agent_cli(*ok, "--wireguard-backend", "magic")
    host_netns = agent_cli(*ok, "--host-netns", f"egressgw-absent-{uuid.uuid4().hex[:6]}")
    temporal = agent_cli(*ok, "--temporal-address", "temporal.example.com")
    tls = agent_cli(*ok, "--temporal-tls-key-file", str(tmp_path / "key.pem"))

    assert no_node.returncode == 2 and "MY_NODE_NAME" in no_node.stderr
    assert bad_node.returncode == 2 and "'Not_A_Node'" in bad_node.stderr
    assert no_namespace.returncode == 2 and "MY_POD_NAMESPACE" in no_namespace.stderr
    assert drain.returncode == 2 and "'soon'" in drain.stderr
    assert interval.returncode == 2 and "--cleanup-interval" in interval.stderr
    assert port.returncode == 2 and "--probe-port" in port.stderr
    assert tag.returncode == 2 and "--socket-tag" in tag.stderr
    assert kubeconfig.returncode == 2 and "--kubeconfig" in kubeconfig.stderr
    assert backend.returncode == 2 and "invalid choice" in backend.stderr
    assert host_netns.returncode == 2 and "no such network namespace" in host_netns.stderr
    assert temporal.returncode == 2 and "is not HOST:PORT" in temporal.stderr
    assert tls.returncode == 2 and "mTLS needs both" in tls.stderr


def facts(
    *,
    euid: int = 0,
    kernel: bool = False,
    programs: tuple[str, ...] = ("wireguard-go", "iptables-restore"),
) -> HostFacts:
    return HostFacts(
        euid=euid,
        kernel_wireguard=lambda: kernel,
        has_program=lambda name: name in programs,
        netns_exists=lambda name: name == "node-a",
    )


def options(**changes: Any) -> AgentOptions:
    return AgentOptions(node_name=NODE, namespace=SYSTEM_NAMESPACE, **changes)


def test_the_host_must_be_able_to_do_what_the_agent_is_asked(tmp_path: Path) -> None:
    userspace = NodeSettings(wireguard_backend=WireguardBackend.USERSPACE)
    kernel = NodeSettings(wireguard_backend=WireguardBackend.KERNEL)
    no_wg_go = ("iptables-restore",)

    not_root = startup_problem(options(), facts(euid=1000))
    no_iptables = startup_problem(options(), facts(programs=("wireguard-go",)))
    nothing = startup_problem(options(), facts(programs=no_wg_go))
    no_module = startup_problem(options(settings=kernel), facts())
    no_daemon = startup_problem(options(settings=userspace), facts(kernel=True, programs=no_wg_go))

    assert not_root is not None and "root" in not_root and "--dry-run" in not_root
    assert no_iptables is not None and "iptables-restore" in no_iptables
    assert nothing is not None and "no WireGuard module" in nothing and "wireguard-go" in nothing
    assert no_module is not None and "no WireGuard module" in no_module
    assert no_daemon is not None and "wireguard-go is not installed" in no_daemon
    # What can run, runs: the kernel module without wireguard-go, wireguard-go without it, and a
    # dry run without root, tools or module.
    assert startup_problem(options(), facts(kernel=True, programs=no_wg_go)) is None
    assert startup_problem(options(), facts()) is None
    assert startup_problem(options(dry_run=tmp_path / "d"), facts(euid=1000, programs=())) is None
    assert startup_problem(options(host_netns="node-a"), facts()) is None
    missing_ns = startup_problem(options(host_netns="node-b"), facts())
    assert missing_ns is not None and "node-b" in missing_ns


# --- Node sync decisions --------------------------------------------------------------------------


def test_orphans_are_removed_only_when_every_configuration_answered() -> None:
    mine = gateway(6000)
    answered = [QueryOutcome("wf/a", mine), QueryOutcome("wf/b", None)]

    complete = plan_sync(answered, signalled=set(), startup_done=False)
    partial = plan_sync(
        [*answered, QueryOutcome("wf/c", failure="timeout")], signalled=set(), startup_done=False
    )
    nothing_runs = plan_sync([], signalled=set(), startup_done=False)

    assert complete.desired == (mine,)
    assert partial.desired is None  # wf/c might want something on the node
    assert nothing_runs.desired == ()  # no configuration at all: the node holds nothing


def test_configurations_with_a_gateway_here_are_told_once_until_startup_is_done() -> None:
    outcomes = [
        QueryOutcome("wf/a", gateway(6000)),
        QueryOutcome("wf/b", None),
        QueryOutcome("wf/c", failure="no worker"),
    ]

    first = plan_sync(outcomes, signalled=set(), startup_done=False)
    assert first.to_signal == ("wf/a",)  # not wf/b: nothing of it is here
    assert not startup_finished(first, undelivered=set())  # wf/c has not answered yet

    # wf/c answers next round with a gateway; wf/a is not told twice.
    second = plan_sync(
        [QueryOutcome("wf/a", gateway(6000)), QueryOutcome("wf/c", gateway(6001, uid="c"))],
        signalled={"wf/a"},
        startup_done=False,
    )
    assert second.to_signal == ("wf/c",)
    assert not startup_finished(second, undelivered={"wf/c"})  # the signal did not go out
    assert startup_finished(second, undelivered=set())

    # Once start-up is done, later rounds only clean up.
    later = plan_sync(
        [QueryOutcome("wf/d", gateway(6002, uid="d"))], signalled=set(), startup_done=True
    )
    assert later.to_signal == ()
    assert later.desired == (gateway(6002, uid="d"),)


# --- Against Temporal -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StandInInput:
    node_name: str
    gateway: NodeGateway | None
    answer: bool = True  # False: the node_gateway query fails


@workflow.defn(name=GATEWAY_CONFIG_WORKFLOW)
class StandInConfiguration:
    """Answers NODE_GATEWAY_QUERY like GatewayConfigWorkflow and records NODE_AGENT_STARTED."""

    @workflow.init
    def __init__(self, request: StandInInput) -> None:
        self._node = request.node_name
        self._gateway = request.gateway
        self._answer = request.answer
        self._started: list[NodeAgentStarted] = []

    @workflow.run
    async def run(self, request: StandInInput) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal(name=NODE_AGENT_STARTED)
    def agent_started(self, started: NodeAgentStarted) -> None:
        self._started.append(started)

    @workflow.signal
    def forget(self) -> None:
        self._gateway = None

    @workflow.query(name=NODE_GATEWAY_QUERY)
    def node_gateway(self, node_name: str) -> NodeGateway | None:
        if not self._answer:
            raise ApplicationError("this configuration does not answer")
        return self._gateway if node_name == self._node else None

    @workflow.query
    def agents_started(self) -> list[NodeAgentStarted]:
        return list(self._started)


@workflow.defn(name="AgentTestApplyOnNode")
class ApplyOnNode:
    """Runs the node activity on the node's task queue, as GatewayConfigWorkflow does."""

    @workflow.run
    async def run(self, request: ApplyGatewayInput) -> ApplyGatewayResult:
        result: ApplyGatewayResult = await workflow.execute_activity(
            APPLY_NODE_GATEWAY,
            request,
            task_queue=resource_names.node_task_queue(request.node_name),
            start_to_close_timeout=timedelta(seconds=30),
            result_type=ApplyGatewayResult,
        )
        return result


@pytest.fixture
async def temporal(temporal_server: TemporalDevServer) -> Client:
    """A client on a Temporal namespace of this test's own."""
    namespace = f"agent-{uuid.uuid4().hex[:8]}"
    admin = await Client.connect(temporal_server.address)
    await admin.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    return await Client.connect(temporal_server.address, namespace=namespace)


@pytest.fixture
async def configurations(temporal: Client) -> AsyncIterator[Client]:
    """The stand-in configurations' worker."""
    async with Worker(
        temporal,
        task_queue=STAND_IN_QUEUE,
        workflows=[StandInConfiguration, ApplyOnNode],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        yield temporal


async def start_configuration(
    client: Client, name: str, request: StandInInput
) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        GATEWAY_CONFIG_WORKFLOW,
        request,
        id=f"egressgw/sgc/egressgw-demo/{name}",
        task_queue=STAND_IN_QUEUE,
    )


async def agents_started(handle: WorkflowHandle[Any, Any]) -> list[NodeAgentStarted]:
    result: list[NodeAgentStarted] = await handle.query(
        "agents_started", result_type=list[NodeAgentStarted]
    )
    return result


async def listed(client: Client, count: int) -> None:
    """Visibility lists what was just started (it may trail by a moment)."""

    async def check() -> bool:
        query = f"WorkflowType = '{GATEWAY_CONFIG_WORKFLOW}' AND ExecutionStatus = 'Running'"
        return len([w async for w in client.list_workflows(query)]) == count

    await wait_for(check, 10, f"{count} running configurations in visibility")


async def test_node_sync_removes_orphans_only_after_every_configuration_answered(
    configurations: Client,
) -> None:
    client = configurations
    mine = gateway(6000)
    holds = await start_configuration(client, "holds", StandInInput(NODE, mine))
    elsewhere = await start_configuration(
        client, "elsewhere", StandInInput(OTHER_NODE, gateway(6001, uid="o"))
    )
    silent = await start_configuration(client, "silent", StandInInput(NODE, None, answer=False))
    await listed(client, 3)
    removals: list[list[NodeGateway]] = []

    async def remove_orphans(desired: Any) -> list[str]:
        removals.append(list(desired))
        return ["deleted wg-6100"]

    sync = NodeSync(client, NODE, remove_orphans, agent_instance="agent-1")

    first = await sync.run_round()
    assert first.listed == 3
    assert first.failed == (silent.id,)
    assert first.removed is None and removals == []
    assert first.signalled == (holds.id,)
    assert await agents_started(holds) == [NodeAgentStarted(NODE, "agent-1")]
    assert await agents_started(elsewhere) == []
    assert not sync.startup_done

    await silent.terminate("gone")
    await listed(client, 2)
    second = await sync.run_round()
    assert second.failed == ()
    assert second.removed == ("deleted wg-6100",)
    assert removals == [[mine]]  # the other node's gateway is not this node's business
    assert second.signalled == ()  # told once per agent process
    assert sync.startup_done
    assert len(await agents_started(holds)) == 1


# --- A dry-run agent process ----------------------------------------------------------------------


@dataclass
class AgentRun:
    process: subprocess.Popen[bytes]
    log_path: Path
    records: Path
    metrics_port: int

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def recorded(self) -> list[dict[str, Any]]:
        if not self.records.exists():
            return []
        return [json.loads(line) for line in self.records.read_text().splitlines() if line]

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


@pytest.fixture
def agent_run(
    tmp_path: Path,
    temporal: Client,
    temporal_server: TemporalDevServer,
    agent_here: Granted,
) -> Iterator[AgentRun]:
    """The agent as its own ServiceAccount, its namespace (key Secrets, GatewayStatus) the
    test's."""
    log_path = tmp_path / "agent.log"
    records = tmp_path / "agents" / f"{NODE}.jsonl"
    metrics_port = free_port()
    command = [
        sys.executable,
        "-m",
        "egressgw",
        "agent",
        "--node-name",
        NODE,
        "--temporal-address",
        temporal_server.address,
        "--temporal-namespace",
        temporal.namespace,
        "--kubeconfig",
        str(agent_here.kubeconfig),
        "--namespace",
        agent_here.namespace,
        "--dry-run",
        str(records),
        "--probe-host",
        "127.0.0.1",
        "--probe-port",
        "0",
        "--probe-drain",
        "500ms",
        "--cleanup-interval",
        "1s",
        "--orphan-grace",
        "0s",
        "--metrics-address",
        f"127.0.0.1:{metrics_port}",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    run = AgentRun(process, log_path, records, metrics_port)
    try:
        yield run
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def key_secret(secret: SecretRef, private_key: bytes) -> dict[str, Any]:
    encoded = base64.b64encode(to_base64(private_key).encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret.name, "namespace": secret.namespace},
        "data": {kube_names.SECRET_PRIVATE_KEY: encoded},
    }


def probe_port(log: str) -> int:
    for line in log.splitlines():
        if "health probe on port" in line:
            return int(line.split("health probe on port", 1)[1].split()[0])
    raise AssertionError(f"no probe port in the log:\n{log}")


@pytest.mark.slow
async def test_dry_run_agent_serves_its_node_and_stops_cleanly_on_sigterm(
    configurations: Client, agent_run: AgentRun, kube: KubeObjects, kube_namespace: str
) -> None:
    client = configurations
    private_key = generate_private_key()
    mine = gateway(
        6000,
        public_key=to_base64(public_key_of(private_key)),
        private_key_secret=SecretRef(kube_namespace, "sgc-6000-key"),
    )
    await kube.create(key_secret(mine.private_key_secret, private_key))
    holds = await start_configuration(client, "holds", StandInInput(NODE, mine))
    await listed(client, 1)

    # Start-up: the configuration that holds a gateway here is told the agent started.
    async def told() -> bool:
        return len(await agents_started(holds)) == 1

    await wait_for(told, 30, f"NODE_AGENT_STARTED from the agent; log:\n{agent_run.log()}")
    started = (await agents_started(holds))[0]
    assert started.node_name == NODE and started.agent_instance

    # The worker serves the node's task queue: the workflow's apply lands in the dry-run record.
    result = await client.execute_workflow(
        ApplyOnNode.run,
        ApplyGatewayInput(NODE, mine),
        id=f"apply-{uuid.uuid4().hex[:6]}",
        task_queue=STAND_IN_QUEUE,
        execution_timeout=timedelta(seconds=60),
    )
    assert result.interface_name == "wg-6000"
    assert [r["op"] for r in agent_run.recorded()] == ["apply"]
    assert private_key.hex() not in agent_run.records.read_text()

    # The probe says this node serves the configuration; GatewayStatus says so too.
    port = probe_port(agent_run.log())
    assert await http_status(port, f"/gw/{mine.sgc_uid}") == 200
    status = await kube.get(
        kube_names.GROUP_VERSION, kube_names.GATEWAY_STATUS_KIND, NODE, kube_namespace
    )
    assert status is not None
    assert status["spec"]["readyGatewayConfigurations"] == [
        {"staticGatewayConfiguration": "egressgw-demo/sgc-6000", "interfaceName": "wg-6000"}
    ]

    # A configuration that does not answer holds back cleanup, even of what nobody wants now.
    silent = await start_configuration(client, "silent", StandInInput(NODE, None, answer=False))
    await listed(client, 2)
    await holds.signal(StandInConfiguration.forget)
    rounds_before = agent_run.log().count("not removing orphans this round")

    async def skipped_twice() -> bool:
        return agent_run.log().count("not removing orphans this round") >= rounds_before + 2

    await wait_for(skipped_twice, 30, "two cleanup rounds held back")
    assert "remove_orphans" not in [r["op"] for r in agent_run.recorded()]

    # Once it is gone, the next round removes the gateway nobody wants.
    await silent.terminate("gone")

    async def removed() -> bool:
        return any(r["op"] == "remove_orphans" for r in agent_run.recorded())

    await wait_for(removed, 30, f"orphan removal; log:\n{agent_run.log()}")
    removal = next(r for r in agent_run.recorded() if r["op"] == "remove_orphans")
    assert any("wg-6000" in line for line in removal["would"])
    assert await http_status(port, f"/gw/{mine.sgc_uid}") == 503

    assert agent_run.stop() == 0
    log = agent_run.log()
    assert "agent stopped" in log
    assert to_base64(private_key) not in log
    assert "HTTP 403" not in log  # its ServiceAccount may do all it tried
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.slow
async def test_agent_metrics_show_peers_per_gateway_and_its_worker(
    configurations: Client, agent_run: AgentRun, kube: KubeObjects, kube_namespace: str
) -> None:
    client = configurations
    private_key = generate_private_key()
    mine = gateway(
        6000,
        public_key=to_base64(public_key_of(private_key)),
        private_key_secret=SecretRef(kube_namespace, "sgc-6000-key"),
    )
    await kube.create(key_secret(mine.private_key_secret, private_key))
    # A configuration that wants the gateway here: the agent's cleanup keeps it.
    await start_configuration(client, "holds", StandInInput(NODE, mine))
    await listed(client, 1)
    peers = tuple(
        GatewayPeer(to_base64(public_key_of(generate_private_key())), f"10.244.1.{i}", f"ns/p{i}")
        for i in range(2, 5)
    )

    async def apply(with_peers: tuple[GatewayPeer, ...]) -> None:
        await client.execute_workflow(
            ApplyOnNode.run,
            ApplyGatewayInput(NODE, mine, peers=with_peers),
            id=f"apply-{uuid.uuid4().hex[:6]}",
            task_queue=STAND_IN_QUEUE,
            execution_timeout=timedelta(seconds=60),
        )

    await wait_for(
        lambda: _serves_metrics(agent_run.metrics_port), 30, f"/metrics; log:\n{agent_run.log()}"
    )
    assert (await scrape(agent_run.metrics_port)).value("egressgw_node_gateways") == 0

    await apply(peers)
    three = await scrape(agent_run.metrics_port)
    assert three.value("egressgw_gateway_peers", namespace="egressgw-demo", name="sgc-6000") == 3
    assert three.value("egressgw_node_gateways") == 1
    # The node worker's own Temporal metrics, on the node's task queue.
    queue = resource_names.node_task_queue(NODE)
    assert (
        three.value(
            "temporal_activity_execution_latency_count",
            activity_type=APPLY_NODE_GATEWAY,
            task_queue=queue,
        )
        == 1
    )

    await apply(peers[:1])
    one = await scrape(agent_run.metrics_port)
    assert one.value("egressgw_gateway_peers", namespace="egressgw-demo", name="sgc-6000") == 1
    assert to_base64(private_key) not in one.text
    assert agent_run.stop() == 0


async def _serves_metrics(port: int) -> bool:
    try:
        await scrape(port)
    except OSError:
        return False
    return True


async def http_status(port: int, path: str) -> int:
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status
