"""`egressgw dev up/down`: what a newcomer sees, through the same clients they would use."""

from __future__ import annotations

import json
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
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient
from azure.mgmt.network.models import PublicIPPrefix, PublicIPPrefixSku
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus

from contracts import kube_names, search_attributes
from egressgw.azure_credential import azure_clients_from_config
from egressgw.cloud_config import load_cloud_config
from tests.fixtures.dev_stack import dev_port_base

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
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "ready" in done.stdout
        endpoints: dict[str, Any] = json.loads((self.state_dir / "endpoints.json").read_text())
        return endpoints

    def down(self) -> None:
        done = egressgw("dev", "down", "--state-dir", str(self.state_dir))
        assert done.returncode == 0, done.stdout + done.stderr

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
