"""Pods' traffic through the whole system, as root: `egressgw dev up` builds every gateway node
as a network namespace with its own agent, an emulated internal load balancer and an "internet"
echo. Two public-mode configurations on the VMSS pool; pods set up the way the CNI plugin would; UDP
and TCP to the echo leave with the public IP (an address of the configuration's `egressIpPrefix`)
that Azure's edge gives the configuration's secondary IP on the gateway that served them, never
the private secondary IP; stopping that gateway's agent moves the pod to the other gateway.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from temporalio.client import Client

from contracts import kube_names, resource_names
from contracts.workflow_io import GET_STATUS, ConfigurationStatus
from egressgw.azure_credential import azure_clients_from_config
from egressgw.cloud_config import load_cloud_config
from egressgw.dev.node_network import fabric_plan
from sim.fabric.echo import read_records
from sim.fabric.network import Fabric
from tests.fixtures.dev_stack import dev_port_base
from tests.fixtures.pod_peer import PodPeer
from tests.fixtures.sgc_status import is_ready

pytestmark = [pytest.mark.slow, pytest.mark.needs_root]

NAMESPACE = "egressgw-demo"
VMSS_RESOURCE_GROUP = "egressgw-dev"
VMSS_NAME = "aks-gwpool-12345678-vmss"
T = TypeVar("T")


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done


@dataclass
class GatewayStack:
    state: Path
    tag: str
    endpoints: dict[str, Any]
    network: dict[str, Any]
    api: kube_client.ApiClient
    fabric: Fabric

    @property
    def echo(self) -> tuple[str, int]:
        return str(self.network["echo"]["ip"]), int(self.network["echo"]["port"])

    def log_tail(self) -> str:
        logs = [Path(self.endpoints["controller_log"])]
        logs += [Path(a["log"]) for a in self.network["agents"].values() if a.get("log")]
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2500:]}" for p in logs if p.exists())

    def wait(self, check: Callable[[], T | None], timeout: float, what: str) -> T:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}\n{self.log_tail()}")

    def create_sgc(self, name: str) -> None:
        body = {
            "apiVersion": f"{kube_names.API_GROUP}/{kube_names.API_VERSION}",
            "kind": kube_names.SGC_KIND,
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "gatewayVmssProfile": {
                    "vmssResourceGroup": VMSS_RESOURCE_GROUP,
                    "vmssName": VMSS_NAME,
                    "publicIpPrefixSize": 31,
                },
                "provisionPublicIps": True,
            },
        }
        kube_client.CustomObjectsApi(self.api).create_namespaced_custom_object(
            kube_names.API_GROUP, kube_names.API_VERSION, NAMESPACE, kube_names.SGC_PLURAL, body
        )

    def ready_sgc(self, name: str) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            found: dict[str, Any] = kube_client.CustomObjectsApi(
                self.api
            ).get_namespaced_custom_object(
                kube_names.API_GROUP, kube_names.API_VERSION, NAMESPACE, kube_names.SGC_PLURAL, name
            )
            conditions = {c["type"]: c for c in found.get("status", {}).get("conditions", [])}
            degraded = conditions.get("Degraded", {}).get("status") == "True"
            return found if is_ready(found) and not degraded else None

        return self.wait(ready, 90, f"{name} to be Ready on every node")

    def secondary_ips(self, name: str) -> dict[str, str]:
        """Node name → this configuration's secondary IP there, from its workflow."""

        async def query() -> ConfigurationStatus:
            client = await Client.connect(self.endpoints["temporal_address"])
            workflow_id = resource_names.gateway_config_workflow_id(NAMESPACE, name)
            status: ConfigurationStatus = await client.get_workflow_handle(workflow_id).query(
                GET_STATUS, result_type=ConfigurationStatus
            )
            return status

        return {node.node_name: node.secondary_ip for node in asyncio.run(query()).nodes}

    def public_ips(self, sgc: dict[str, Any]) -> dict[str, str]:
        """Node name → the public IP ARM gave this configuration's ipConfiguration on that
        node's instance (from the prefix), read with the Azure SDK as a user would."""
        ip_config = resource_names.managed_resource_name(sgc["metadata"]["uid"]).lower()

        async def read() -> dict[str, str]:
            config = load_cloud_config(self.endpoints["azure_config"]).config
            clients = azure_clients_from_config(config, connection_verify=self.endpoints["ca"])
            async with clients as (network, compute):
                names = {
                    str(vm.instance_id): str(vm.os_profile.computer_name)
                    async for vm in compute.virtual_machine_scale_set_vms.list(
                        VMSS_RESOURCE_GROUP, VMSS_NAME
                    )
                }
                addresses = network.public_ip_addresses
                found: dict[str, str] = {}
                async for pip in addresses.list_virtual_machine_scale_set_public_ip_addresses(
                    VMSS_RESOURCE_GROUP, VMSS_NAME
                ):
                    # .../virtualMachines/<instance>/networkInterfaces/<nic>/ipConfigurations/<name>
                    parts = str(pip.ip_configuration.id).split("/")
                    instance = parts[[p.lower() for p in parts].index("virtualmachines") + 1]
                    if parts[-1].lower() == ip_config:
                        found[names[instance]] = str(pip.ip_address)
                return found

        return asyncio.run(read())

    def pod(self, name: str, ip: str, sgc: dict[str, Any]) -> PodPeer:
        profile = sgc["status"]["gatewayServerProfile"]
        peer = PodPeer(f"{self.tag}{name}", ip, self.fabric, self.echo)
        peer.start(profile["publicKey"], profile["ip"], int(profile["port"]))
        peer.register(self.api, sgc["metadata"]["name"], NAMESPACE)
        return peer

    def agent_pid(self, node: str) -> int:
        return int(self.network["agents"][node]["pid"])


@pytest.fixture
def gateway_stack(tmp_path: Path) -> Iterator[GatewayStack]:
    state = tmp_path / "state"
    tag = "e" + uuid.uuid4().hex[:4]
    base = dev_port_base(27000)
    up = [sys.executable, "-m", "egressgw", "dev", "up", "--detach", "--headless"]
    run(*up, "--state-dir", str(state), "--port-base", str(base), "--net-prefix", tag)
    fabric: Fabric | None = None
    try:
        endpoints = json.loads((state / "endpoints.json").read_text())
        network = json.loads(Path(endpoints["network"]).read_text())
        assert network["built"], network
        fabric = Fabric(fabric_plan(network), tmp_path / "clients")
        api = kube_config.new_client_from_config(endpoints["kubeconfig"])  # type: ignore[no-untyped-call]
        stack = GatewayStack(state, tag, endpoints, network, api, fabric)
        yield stack
    finally:
        if fabric is not None:
            for name in list(fabric._clients):
                fabric.remove_client(name)
        subprocess.run(
            [sys.executable, "-m", "egressgw", "dev", "down", "--state-dir", str(state)],
            capture_output=True,
            timeout=90,
            check=False,
        )


def test_pods_leave_with_their_configurations_public_ip_and_fail_over(
    gateway_stack: GatewayStack,
) -> None:
    stack = gateway_stack
    stack.create_sgc("blue")
    stack.create_sgc("green")
    blue, green = stack.ready_sgc("blue"), stack.ready_sgc("green")
    blue_private, green_private = stack.secondary_ips("blue"), stack.secondary_ips("green")
    blue_ips, green_ips = stack.public_ips(blue), stack.public_ips(green)
    assert blue_ips.keys() == blue_private.keys() and green_ips.keys() == green_private.keys()
    assert len(blue_ips) == 2 and len(green_ips) == 2
    for sgc, ips in ((blue, blue_ips), (green, green_ips)):
        prefix = ipaddress.ip_network(sgc["status"]["egressIpPrefix"])
        assert all(ipaddress.ip_address(ip) in prefix for ip in ips.values()), (prefix, ips)
        assert len(set(ips.values())) == 2, ips
    assert not set(blue_ips.values()) & set(green_ips.values())

    pod_blue = stack.pod("b", "10.244.7.10", blue)
    pod_green = stack.pod("g", "10.244.7.20", green)
    try:
        # The PodEndpoints reach the gateways through the watcher, the workflow and the agents.
        first_blue = stack.wait(lambda: pod_blue.send("udp"), 60, "the blue pod's first UDP answer")
        first_green = stack.wait(
            lambda: pod_green.send("udp"), 60, "the green pod's first UDP answer"
        )
        # The echo sees the public IP of the serving gateway, not its private secondary IP.
        assert first_blue in blue_ips.values(), (first_blue, blue_ips, blue_private)
        assert first_green in green_ips.values(), (first_green, green_ips, green_private)
        assert pod_blue.send("tcp", timeout=5) == first_blue
        assert pod_green.send("tcp", timeout=5) == first_green
        records = {
            (r.proto, r.src_ip) for r in read_records(Path(stack.network["echo"]["records"]))
        }
        assert {("udp", first_blue), ("tcp", first_blue), ("tcp", first_green)} <= records
        private = set(blue_private.values()) | set(green_private.values())
        assert not {ip for _, ip in records} & private, records

        # Stop the agent of the gateway that serves the blue pod: its probe drains (503), the
        # load balancer stops sending there at its next poll (5 s), and the other gateway, seeing
        # the pod's flow arrive without a session of its own, starts the handshake itself (its
        # agent looks every second), so the traffic moves within the probe interval + 5 s.
        serving = next(node for node, ip in blue_ips.items() if ip == first_blue)
        other_ip = next(ip for node, ip in blue_ips.items() if node != serving)
        os.kill(stack.agent_pid(serving), signal.SIGTERM)
        stopped = time.monotonic()
        moved = stack.wait(
            lambda: (ip := pod_blue.send("udp", timeout=0.5)) == other_ip and ip,
            60,
            "the blue pod's traffic to move to the other gateway",
        )
        elapsed = time.monotonic() - stopped
        print(f"blue pod moved to {moved} {elapsed:.1f} s after its gateway's agent stopped")
        assert elapsed < 5 + 5, elapsed
        assert pod_blue.send("tcp", timeout=5) == other_ip
    finally:
        pod_blue.close()
        pod_green.close()
