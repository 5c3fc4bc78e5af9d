"""`egressgw dev up/down`: what a newcomer sees, through the same clients they would use."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import urllib3
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient
from azure.mgmt.network.models import PublicIPPrefix, PublicIPPrefixSku
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from contracts import kube_names, search_attributes
from egressgw.azure_credential import azure_clients_from_config
from egressgw.cloud_config import load_cloud_config
from tests.fixtures.dev_stack import DEV_UP_TIMEOUT, dev_port_base, stack_pids
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow

EGRESSGW = [sys.executable, "-m", "egressgw"]
# The node network (root only) has its own tests in tests/netns, with namespaces named per test;
# here the agents run as dry runs whoever runs the tests.
NO_NETWORK = ("--network", "off")
SGC_PLURAL = "staticgatewayconfigurations"


def egressgw(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EGRESSGW, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@dataclass
class Stack:
    state_dir: Path
    port_base: int
    output: str = ""  # what the last `dev up` printed

    def up(self) -> dict[str, Any]:
        done = egressgw(
            "dev",
            "up",
            "--detach",
            "--state-dir",
            str(self.state_dir),
            "--port-base",
            str(self.port_base),
            *NO_NETWORK,
            timeout=DEV_UP_TIMEOUT,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "ready" in done.stdout
        self.output = done.stdout
        endpoints: dict[str, Any] = json.loads((self.state_dir / "endpoints.json").read_text())
        return endpoints

    def down(self) -> str:
        done = egressgw("dev", "down", "--state-dir", str(self.state_dir), timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def endpoints(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.state_dir / "endpoints.json").read_text())
        return document

    def kube(self) -> kube_client.ApiClient:
        return kube_config.new_client_from_config(str(self.state_dir / "kubeconfig"))


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(tmp_path / "state", dev_port_base(22000))
    yield stack
    egressgw("dev", "down", "--state-dir", str(stack.state_dir))


def sgc(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{kube_names.API_GROUP}/{kube_names.API_VERSION}",
        "kind": "StaticGatewayConfiguration",
        "metadata": {"name": name, "namespace": "egressgw-demo"},
        "spec": {
            "gatewayVmssProfile": {
                "vmssResourceGroup": "egressgw-dev",
                "vmssName": "aks-gwpool-12345678-vmss",
                "publicIpPrefixSize": 31,
            }
        },
    }


async def azure_inventory(state_dir: Path) -> tuple[list[str], list[str]]:
    """Names of the VMSS and the public IP prefixes, read with the product's own credential path."""
    config = load_cloud_config(state_dir / "azure.json").config
    async with azure_clients_from_config(config, connection_verify=str(state_dir / "ca.pem")) as (
        network,
        compute,
    ):
        assert isinstance(network, NetworkManagementClient)
        assert isinstance(compute, ComputeManagementClient)
        vmss = [
            v.name async for v in compute.virtual_machine_scale_sets.list(config.resource_group)
        ]
        prefixes = [p.name async for p in network.public_ip_prefixes.list(config.resource_group)]
    return vmss, prefixes


async def test_detached_stack_serves_everything_and_keeps_state_across_restart(
    stack: Stack,
) -> None:
    endpoints = stack.up()
    base = stack.port_base
    assert endpoints["temporal_address"] == f"127.0.0.1:{base}"
    assert endpoints["temporal_ui_url"] == f"http://127.0.0.1:{base + 3}"
    assert endpoints["kube_api_url"] == f"https://127.0.0.1:{base + 4}"
    assert endpoints["arm_url"] == f"https://127.0.0.1:{base + 5}"
    for name in ("kubeconfig", "azure.json", "ca.pem"):
        assert (stack.state_dir / name).is_file()

    # One gateway agent per seeded node, recording what it would do without the node network.
    network = json.loads((stack.state_dir / "network.json").read_text())
    assert network["built"] is False
    assert sorted(endpoints["agent_pids"]) == sorted(network["agents"])
    assert len(network["agents"]) == 4
    assert all(agent["dry_run"] for agent in network["agents"].values())

    # The Web UI answers.
    async with (
        aiohttp.ClientSession() as session,
        session.get(endpoints["temporal_ui_url"]) as response,
    ):
        assert response.status == 200
        assert "<html" in (await response.text()).lower()

    # Kubernetes: gateway nodes labelled and tainted as the install guide says, CRDs served.
    api = stack.kube()
    nodes = kube_client.CoreV1Api(api).list_node(
        label_selector=f"{kube_names.GATEWAY_NODE_LABEL}={kube_names.GATEWAY_NODE_LABEL_VALUE}"
    )
    assert len(nodes.items) == 4
    for node in nodes.items:
        assert any(
            t.key == kube_names.GATEWAY_NODE_TAINT_KEY and t.effect == "NoSchedule"
            for t in node.spec.taints
        )
        assert any(a.type == "InternalIP" for a in node.status.addresses)
    # ... and the regular pool's nodes, labelled as AKS labels a user pool's and registered with
    # the cni-not-ready taint, which stays: without the node network no CNI manager runs.
    regular = kube_client.CoreV1Api(api).list_node(
        label_selector=f"{kube_names.AKS_MODE_LABEL}=user"
    )
    assert sorted(n.metadata.name for n in regular.items) == [
        "aks-nodepool1-31415926-vmss000000",
        "aks-nodepool1-31415926-vmss000001",
    ]
    assert all(
        [(t.key, t.effect) for t in n.spec.taints]
        == [(kube_names.CNI_NOT_READY_TAINT_KEY, "NoSchedule")]
        for n in regular.items
    )
    assert all(n.spec.provider_id.startswith("azure:///subscriptions/") for n in regular.items)
    custom = kube_client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(
        kube_names.API_GROUP, kube_names.API_VERSION, "egressgw-demo", SGC_PLURAL, sgc("kept")
    )

    # Azure: the seeded pool is there and a resource created now must survive a restart.
    vmss, _ = await azure_inventory(stack.state_dir)
    assert sorted(vmss) == ["aks-gwpool-12345678-vmss", "aks-nodepool1-31415926-vmss"]
    config = load_cloud_config(stack.state_dir / "azure.json").config
    async with azure_clients_from_config(
        config, connection_verify=str(stack.state_dir / "ca.pem")
    ) as (network, _compute):
        poller = await network.public_ip_prefixes.begin_create_or_update(
            config.resource_group,
            "kept-prefix",
            PublicIPPrefix(
                location=config.location, sku=PublicIPPrefixSku(name="Standard"), prefix_length=31
            ),
        )
        await poller.result()

    # Temporal: search attributes registered, and a workflow started now must survive too.
    temporal = await Client.connect(endpoints["temporal_address"])
    registered = await temporal.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    for name, _kind in search_attributes.registrations():
        assert name in registered.custom_attributes
    await temporal.start_workflow(
        "KeptWorkflow", id="egressgw-test/kept", task_queue="nobody-polls-this"
    )

    stack.down()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", base + 4), timeout=1).close()

    stack.up()
    custom = kube_client.CustomObjectsApi(stack.kube())
    kept = custom.get_namespaced_custom_object(
        kube_names.API_GROUP, kube_names.API_VERSION, "egressgw-demo", SGC_PLURAL, "kept"
    )
    assert kept["spec"]["provisionPublicIps"] is True  # defaulted by the CRD schema
    _, prefixes = await azure_inventory(stack.state_dir)
    assert "kept-prefix" in prefixes
    temporal = await Client.connect(endpoints["temporal_address"])
    described = await temporal.get_workflow_handle("egressgw-test/kept").describe()
    assert described.status == WorkflowExecutionStatus.RUNNING


def test_second_start_on_same_state_dir_is_refused(stack: Stack) -> None:
    stack.up()
    again = egressgw(
        "dev",
        "up",
        "--detach",
        "--state-dir",
        str(stack.state_dir),
        "--port-base",
        str(stack.port_base),
        *NO_NETWORK,
    )
    assert again.returncode == 1
    assert "already running" in again.stderr


def test_busy_port_is_named(tmp_path: Path) -> None:
    base = dev_port_base(23000)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", base + 4))
        blocker.listen()
        done = egressgw(
            "dev",
            "up",
            "--detach",
            "--state-dir",
            str(tmp_path / "s"),
            "--port-base",
            str(base),
            *NO_NETWORK,
        )
    assert done.returncode == 1
    assert f"kube_api {base + 4}" in done.stderr


def test_foreground_stack_reports_progress_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    base = dev_port_base(24000)
    process = subprocess.Popen(
        [
            *EGRESSGW,
            "dev",
            "up",
            "--state-dir",
            str(tmp_path / "s"),
            "--port-base",
            str(base),
            "--headless",
            *NO_NETWORK,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("press Ctrl-C"):
                break
        output = "".join(lines)
        assert "starting Temporal dev server" in output
        assert "seeding Kubernetes" in output
        assert "is ready" in output
        assert "Web UI" not in output  # --headless
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output + rest
    assert "stopped" in rest
    # Nothing is left listening and the temporal child is gone with it.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", base), timeout=1).close()
    assert not (tmp_path / "s" / "dev.pid").exists()
    assert (tmp_path / "s" / "temporal.db").exists()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def start_like(pid: int) -> subprocess.Popen[bytes]:
    """A process started by hand with the command line of process `pid`."""
    command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    return subprocess.Popen(
        [arg.decode() for arg in command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def part_pids(endpoints: dict[str, Any]) -> dict[str, int]:
    """The stack's processes by name, as endpoints.json names them."""
    return {
        "controller": endpoints["controller_pid"],
        "temporal": endpoints["temporal_pid"],
        **endpoints["kube_pids"],
        **{f"agent/{node}": pid for node, pid in endpoints["agent_pids"].items()},
    }


async def test_killed_parts_come_back_and_dev_down_stops_everything(stack: Stack) -> None:
    stack.state_dir = stack.state_dir.resolve()
    before = part_pids(stack.up())
    agent = next(name for name in before if name.startswith("agent/"))
    killed = ["controller", "temporal", "kube-apiserver", "etcd", agent]

    for name in killed:
        os.kill(before[name], signal.SIGKILL)

    async def all_back() -> bool:
        now = part_pids(stack.endpoints())
        return all(now[name] != before[name] and alive(now[name]) for name in killed)

    await wait_for(all_back, timeout=120, what="the killed processes to run again")
    endpoints = stack.endpoints()
    assert {name: endpoints["restarts"].get(name) for name in killed} == dict.fromkeys(killed, 1)
    log = (stack.state_dir / "logs" / "dev.log").read_text()
    for name in killed:
        assert f"{name} (pid {before[name]}) exited with signal SIGKILL" in log

    # The stack works again: a configuration applied now reaches the restarted controller, which
    # starts its workflow on the restarted Temporal.
    custom = kube_client.CustomObjectsApi(stack.kube())

    async def applied() -> bool:
        try:
            custom.create_namespaced_custom_object(
                kube_names.API_GROUP,
                kube_names.API_VERSION,
                "egressgw-demo",
                SGC_PLURAL,
                sgc("after-crash"),
            )
        except (kube_client.ApiException, urllib3.exceptions.HTTPError):  # still starting
            return False
        return True

    await wait_for(applied, timeout=60, what="the API server to take a configuration")
    temporal = await Client.connect(endpoints["temporal_address"])

    async def workflow_started() -> bool:
        try:
            await temporal.get_workflow_handle("egressgw/sgc/egressgw-demo/after-crash").describe()
        except RPCError:  # not found yet
            return False
        return True

    await wait_for(workflow_started, timeout=120, what="the configuration's workflow")

    # Someone starts one more agent by hand, as the stack runs them: `dev down` stops it too.
    by_hand = start_like(endpoints["agent_pids"][agent.split("/")[1]])
    try:
        stack.down()
        assert by_hand.wait(timeout=30) is not None
    finally:
        if by_hand.poll() is None:
            by_hand.kill()
            by_hand.wait()
    assert stack_pids(stack.state_dir) == []


async def test_dev_up_after_a_killed_dev_up_starts_and_leaves_no_orphan(stack: Stack) -> None:
    stack.state_dir = stack.state_dir.resolve()
    first = stack.up()
    os.kill(first["pid"], signal.SIGKILL)

    async def supervisor_gone() -> bool:
        return not alive(first["pid"])

    await wait_for(supervisor_gone, what="the supervisor to die")

    second = stack.up()

    assert "a previous dev up was killed; stopped what it left running" in stack.output
    assert not any(alive(pid) for pid in part_pids(first).values())
    assert all(alive(pid) for pid in part_pids(second).values())
    stack.down()
    assert stack_pids(stack.state_dir) == []
