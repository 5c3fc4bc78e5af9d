"""Pods through the whole pod side, as root, on one `egressgw dev up` for the module: each
regular node's CNI manager chains kube-egress-cni after the node's bridge + host-local, the node
runtimes run real Pod objects through that chain (their processes in the pods' namespaces), and
the gateway agents, the emulated internal load balancer and the "internet" echo (which answers
with the source address it saw) do the rest.

What a user notices: an annotated pod leaves with its configuration's address and an unannotated
one does not (the samples, through kubectl alone); excludeCidrs bypass the gateway; two
configurations keep their own addresses; a private configuration on the VM pool with
azureNetworking; connections into an annotated pod; a deleted pod's PodEndpoint and gateway peers
go; failover when the serving gateway's agent stops; a configuration deleted under its pods.

Every test works in a Kubernetes namespace of its own; the failover test restarts the agent it
stopped, so the tests do not depend on their order.
"""

from __future__ import annotations

import asyncio
import ipaddress
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio
import yaml
from temporalio.client import Client

from agent import wireguard_uapi
from agent.cni import attachment_state
from agent.wireguard_keys import to_base64
from contracts import kube_names, resource_names
from contracts.workflow_io import GET_STATUS, ConfigurationStatus
from egressgw.dev.kube_seed import SYSTEM_NAMESPACE
from tests.fixtures.cluster import KubeObjects
from tests.fixtures.dev_stack import DevStackRun, stack_objects
from tests.fixtures.pods import (
    echo_seen_from,
    pod_manifest,
    run,
    running_with_ip,
    wait_default_service_account,
)
from tests.fixtures.sgc_status import is_ready

pytestmark = [pytest.mark.slow, pytest.mark.needs_root, pytest.mark.kubectl]

T = TypeVar("T")
SAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "samples"
API = kube_names.GROUP_VERSION
# Private configurations on the gateway VMSS pool: the echo sees the gateways' secondary IPs,
# which the configuration's status lists.
VMSS_PRIVATE: dict[str, Any] = {"gatewayNodepoolName": "gwpool", "provisionPublicIps": False}
# Public ones: the fabric's edge translates each gateway's secondary IP to a public IP of the
# configuration's prefix, as Azure's does.
VMSS_PUBLIC: dict[str, Any] = {
    "gatewayVmssProfile": {
        "vmssResourceGroup": "egressgw-dev",
        "vmssName": "aks-gwpool-12345678-vmss",
        "publicIpPrefixSize": 31,
    },
    "provisionPublicIps": True,
}
# The failover bound of the agent's e2e test (test_gateway_traffic.py): the probe interval of the
# load balancer (5 s) plus 5 s.
FAILOVER_BOUND = 5 + 5


@dataclass
class PodEgress:
    """The module's dev stack, its API server as the admin, and what the tests started."""

    stack: DevStackRun
    kube: KubeObjects
    kubectl_path: Path

    @property
    def echo(self) -> tuple[str, int]:
        echo = self.stack.network()["echo"]
        return str(echo["ip"]), int(echo["port"])

    @property
    def outbound_ip(self) -> str:
        return str(self.stack.network()["outbound_ip"])

    @property
    def regular_nodes(self) -> list[str]:
        return sorted(n["name"] for n in self.stack.nodes("regular"))

    async def wait(self, probe: Callable[[], Awaitable[T | None]], timeout: float, what: str) -> T:
        """Poll until `probe` returns something; on timeout fail with the stack's logs."""
        deadline = time.monotonic() + timeout
        while True:
            found = await probe()
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.stack.logs()}")
            await asyncio.sleep(0.2)

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        return self.stack.kubectl(self.kubectl_path, *args, stdin=stdin, check=check)

    async def namespace(self) -> str:
        name = f"pe-{uuid.uuid4().hex[:6]}"
        await self.kube.create(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )
        await wait_default_service_account(self.kube, name)
        return name

    async def ready_sgc(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Create a configuration and wait until it is Ready and on every gateway node."""
        await self.kube.create(
            {
                "apiVersion": API,
                "kind": kube_names.SGC_KIND,
                "metadata": {"name": name, "namespace": namespace},
                "spec": spec,
            }
        )
        return await self.wait_ready(namespace, name)

    async def wait_ready(self, namespace: str, name: str) -> dict[str, Any]:
        async def ready() -> dict[str, Any] | None:
            found = await self.kube.get(API, kube_names.SGC_KIND, name, namespace)
            if found is None or not is_ready(found):
                return None
            conditions = {c["type"]: c for c in found["status"].get("conditions", [])}
            degraded = conditions.get("Degraded", {}).get("status") == "True"
            return None if degraded else found

        return await self.wait(ready, 120, f"configuration {namespace}/{name} Ready")

    async def delete_configurations(self, namespace: str) -> None:
        """Delete the namespace's configurations one after the other, each until it is gone."""
        for sgc in await self.kube.list(API, kube_names.SGC_KIND, namespace):
            name = sgc["metadata"]["name"]
            await self.kube.delete(API, kube_names.SGC_KIND, name, namespace)

            async def gone(name: str = name) -> bool:
                return await self.kube.get(API, kube_names.SGC_KIND, name, namespace) is None

            await self.wait(gone, 120, f"configuration {namespace}/{name} deleted")

    async def run_pod(
        self, namespace: str, name: str, node: str, script: str, gateway: str | None = None
    ) -> dict[str, Any]:
        """A pod on `node` (annotated with `gateway` when given), once Running with its IP."""
        annotations = {kube_names.POD_GATEWAY_ANNOTATION: gateway} if gateway else {}
        await self.kube.create(pod_manifest(name, namespace, node, script, annotations=annotations))

        async def running() -> dict[str, Any] | None:
            pod = await self.kube.get("v1", "Pod", name, namespace)
            return pod if pod is not None and running_with_ip(pod) else None

        return await self.wait(running, 120, f"pod {namespace}/{name} Running with an IP")

    def netns(self, pod: dict[str, Any]) -> str:
        found = self.stack.pod_netns(pod)
        assert found is not None, f"no network namespace for pod {pod['metadata']['name']}"
        return found

    async def first_answer(self, pod: dict[str, Any], proto: str = "udp") -> str:
        """The address the echo saw for the pod's first datagram it answered (the gateways
        learn the pod's peer through its PodEndpoint, which takes a moment)."""
        netns = self.netns(pod)

        async def answered() -> str | None:
            return await echo_seen_from(netns, self.echo, proto)

        return await self.wait(answered, 60, f"an answer to {pod['metadata']['name']}")

    async def secondary_ips(self, namespace: str, name: str) -> dict[str, str]:
        """Gateway node → the configuration's secondary IP there (from its workflow)."""
        client = await Client.connect(self.stack.endpoints()["temporal_address"])
        workflow_id = resource_names.gateway_config_workflow_id(namespace, name)
        status = await client.get_workflow_handle(workflow_id).query(
            GET_STATUS, result_type=ConfigurationStatus
        )
        return {node.node_name: node.secondary_ip for node in status.nodes}

    async def gateway_peers(self, sgc: dict[str, Any], nodes: set[str]) -> dict[str, set[str]]:
        """Per gateway node of the configuration: the pods' public keys (base64) on its
        WireGuard interface there, read from the interface's wireguard-go daemon."""
        port = int(sgc["status"]["gatewayServerProfile"]["port"])
        peers: dict[str, set[str]] = {}
        agents = self.stack.network()["agents"]
        for node in nodes:
            socket = wireguard_uapi.socket_path(f"wg{agents[node]['socket_tag']}{port}")
            if not socket.exists():
                continue
            reply = await asyncio.to_thread(
                wireguard_uapi.call, socket, wireguard_uapi.get_request()
            )
            state = wireguard_uapi.parse_get_reply(reply)
            peers[node] = {to_base64(key) for key in state.peers}
        return peers

    async def status_peers(self) -> dict[str, set[str]]:
        """Per gateway node: the PodEndpoints its GatewayStatus lists as ready peers."""
        statuses = await self.kube.list(API, kube_names.GATEWAY_STATUS_KIND, SYSTEM_NAMESPACE)
        return {
            s["metadata"]["name"]: {
                p["podEndpoint"] for p in (s.get("spec") or {}).get("readyPeerConfigurations") or []
            }
            for s in statuses
        }

    async def status_gateways(self) -> dict[str, set[str]]:
        """Per gateway node: the configurations its GatewayStatus lists as ready."""
        statuses = await self.kube.list(API, kube_names.GATEWAY_STATUS_KIND, SYSTEM_NAMESPACE)
        return {
            s["metadata"]["name"]: {
                g["staticGatewayConfiguration"]
                for g in (s.get("spec") or {}).get("readyGatewayConfigurations") or []
            }
            for s in statuses
        }


@pytest_asyncio.fixture(scope="module")
async def egress(module_dev_stack: DevStackRun, kubectl_path: Path) -> AsyncIterator[PodEgress]:
    async with stack_objects(module_dev_stack) as kube:
        yield PodEgress(module_dev_stack, kube, kubectl_path)


@pytest_asyncio.fixture
async def namespace(egress: PodEgress) -> AsyncIterator[str]:
    """A namespace of the test's own. Its configurations are deleted one at a time, each gone
    before the next test starts (two configurations of one pool torn down at once can leave
    the pool's ipConfigs pointing at a backend pool the last rule took with it); the namespace
    then takes its pods with it."""
    name = await egress.namespace()
    try:
        yield name
    finally:
        await egress.delete_configurations(name)
        await egress.kube.delete("v1", "Namespace", name)


def ips_of(sgc: dict[str, Any]) -> set[str]:
    """The addresses a private configuration reports (comma-separated in egressIpPrefix)."""
    return set(sgc["status"]["egressIpPrefix"].split(","))


async def test_sample_pods_show_the_egress_ip_and_without_annotation_the_outbound_ip(
    egress: PodEgress,
) -> None:
    """The README's path: the sample configuration, the annotated sample pod and the plain one
    (both put on the same node here), and `kubectl logs`."""
    node = egress.regular_nodes[0]
    pods = {
        path: yaml.safe_load(path.read_text())
        for path in (SAMPLES / "pod-egress.yaml", SAMPLES / "pod-plain.yaml")
    }
    annotated, plain = (manifest["metadata"]["name"] for manifest in pods.values())
    namespace = next(iter(pods.values()))["metadata"]["namespace"]
    try:
        egress.kubectl("apply", "-f", str(SAMPLES / "sgc-public.yaml"))
        sgc = await egress.wait_ready(namespace, "public-egress")
        prefix = ipaddress.ip_network(sgc["status"]["egressIpPrefix"])
        for manifest in pods.values():
            manifest["spec"]["nodeName"] = node
            egress.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))

        async def seen(pod: str) -> str | None:
            logs = egress.kubectl("logs", "-n", namespace, pod, check=False)
            answers = [
                line.removeprefix("the echo service saw ")
                for line in logs.splitlines()
                if line.startswith("the echo service saw ")
            ]
            return answers[-1] if answers else None

        plain_seen = await egress.wait(lambda: seen(plain), 120, f"kubectl logs of {plain}")
        assert plain_seen == egress.outbound_ip

        annotated_seen = await egress.wait(
            lambda: seen(annotated), 120, f"kubectl logs of {annotated}"
        )
        assert ipaddress.ip_address(annotated_seen) in prefix, (annotated_seen, prefix)

        # Only the annotated pod has a PodEndpoint.
        assert await egress.kube.get(API, kube_names.POD_ENDPOINT_KIND, annotated, namespace)
        assert not await egress.kube.get(API, kube_names.POD_ENDPOINT_KIND, plain, namespace)
    finally:
        for path in pods:
            egress.kubectl("delete", "--ignore-not-found", "--wait=false", "-f", str(path))
        egress.kubectl("delete", "--ignore-not-found", "-f", str(SAMPLES / "sgc-public.yaml"))


async def test_exclude_cidrs_holding_the_echo_bypass_the_gateway(
    egress: PodEgress, namespace: str
) -> None:
    echo_ip = egress.echo[0]
    await egress.ready_sgc(namespace, "direct", {**VMSS_PRIVATE, "excludeCidrs": [f"{echo_ip}/32"]})
    pod = await egress.run_pod(
        namespace, "excluded", egress.regular_nodes[0], "sleep 3600", gateway="direct"
    )

    assert await egress.first_answer(pod) == egress.outbound_ip
    assert await egress.first_answer(pod, "tcp") == egress.outbound_ip
    # The pod has its tunnel and PodEndpoint: the route kept the echo off the gateway.
    links = await run("ip", "-n", egress.netns(pod), "-o", "link", "show")
    assert " wg0:" in links, links
    assert await egress.kube.get(API, kube_names.POD_ENDPOINT_KIND, "excluded", namespace)


async def test_two_configurations_in_one_namespace_keep_their_own_addresses(
    egress: PodEgress, namespace: str
) -> None:
    """Two public configurations of one pool: each pod leaves from its own prefix."""
    blue = await egress.ready_sgc(namespace, "blue", VMSS_PUBLIC)
    green = await egress.ready_sgc(namespace, "green", VMSS_PUBLIC)
    blue_prefix = ipaddress.ip_network(blue["status"]["egressIpPrefix"])
    green_prefix = ipaddress.ip_network(green["status"]["egressIpPrefix"])
    assert not blue_prefix.overlaps(green_prefix)
    node = egress.regular_nodes[1]
    blue_pod = await egress.run_pod(namespace, "b", node, "sleep 3600", gateway="blue")
    green_pod = await egress.run_pod(namespace, "g", node, "sleep 3600", gateway="green")

    for proto in ("udp", "tcp"):
        blue_seen = ipaddress.ip_address(await egress.first_answer(blue_pod, proto))
        green_seen = ipaddress.ip_address(await egress.first_answer(green_pod, proto))
        assert blue_seen in blue_prefix, (proto, blue_seen, blue_prefix)
        assert green_seen in green_prefix, (proto, green_seen, green_prefix)


async def test_a_private_configuration_on_the_vm_pool_with_azure_networking(
    egress: PodEgress, namespace: str
) -> None:
    """azureNetworking keeps the pod's own routes; only the configuration's excludeCidrs go
    through the gateway (upstream's meaning of the field in that mode)."""
    sgc = await egress.ready_sgc(
        namespace,
        "vmpool",
        {
            "gatewayNodepoolName": "gwvmpool",
            "provisionPublicIps": False,
            "defaultRoute": "azureNetworking",
            "excludeCidrs": ["198.18.0.0/15"],
        },
    )
    ips = ips_of(sgc)
    assert len(ips) == 2, sgc["status"]["egressIpPrefix"]  # one per VM of the pool
    for ip in ips:
        assert ipaddress.ip_address(ip).is_private
    pod = await egress.run_pod(
        namespace, "vm", egress.regular_nodes[0], "sleep 3600", gateway="vmpool"
    )

    assert await egress.first_answer(pod) in ips
    assert await egress.first_answer(pod, "tcp") in ips
    default = await run("ip", "-n", egress.netns(pod), "route", "show", "default")
    assert "dev eth0" in default, default


# An HTTP server that logs each request with the client's address (to stderr: kubectl logs).
SERVER = "exec python3 -u -m http.server 8080 --bind 0.0.0.0"
GET = """
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as response:
    print(response.status)
"""


async def test_an_annotated_pod_still_answers_connections_from_another_pod(
    egress: PodEgress, namespace: str
) -> None:
    sgc = await egress.ready_sgc(namespace, "served", VMSS_PRIVATE)
    first, second = egress.regular_nodes
    server = await egress.run_pod(namespace, "server", first, SERVER, gateway="served")
    client = await egress.run_pod(namespace, "client", second, "sleep 3600")
    # The server's own traffic leaves through the gateway: its default route is wg0.
    assert await egress.first_answer(server) in ips_of(sgc)

    url = f"http://{server['status']['podIP']}:8080/"

    async def fetched() -> str | None:
        done = await asyncio.to_thread(
            subprocess.run,
            ["ip", "netns", "exec", egress.netns(client), "python3", "-c", GET, url],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return done.stdout.strip() if done.returncode == 0 else None

    assert await egress.wait(fetched, 30, f"GET {url} from the other pod") == "200"
    logs = egress.kubectl("logs", "-n", namespace, "server")
    assert f"{client['status']['podIP']} - - [" in logs, logs


async def test_deleting_a_pod_removes_its_pod_endpoint_and_the_gateways_peers(
    egress: PodEgress, namespace: str
) -> None:
    sgc = await egress.ready_sgc(namespace, "peered", VMSS_PRIVATE)
    pod = await egress.run_pod(
        namespace, "leaving", egress.regular_nodes[1], "sleep 3600", gateway="peered"
    )
    await egress.first_answer(pod)
    endpoint = await egress.kube.get(API, kube_names.POD_ENDPOINT_KIND, "leaving", namespace)
    assert endpoint is not None
    key = endpoint["spec"]["podPublicKey"]
    gateways = set(await egress.secondary_ips(namespace, "peered"))
    assert len(gateways) == 2

    async def peered_everywhere() -> bool:
        on_devices = await egress.gateway_peers(sgc, gateways)
        listed = await egress.status_peers()
        return all(
            key in on_devices.get(node, set()) and f"{namespace}/leaving" in listed.get(node, set())
            for node in gateways
        )

    await egress.wait(peered_everywhere, 30, "the pod's peer on both gateways of the pool")
    records = egress.stack.network()["cni_managers"]
    record_dirs = [Path(info["plugin_state_dir"]) for info in records.values()]
    daemons = [
        record.daemon
        for directory in record_dirs
        for _path, record in attachment_state.records(str(directory))
        if record is not None and record.pod_name == "leaving"
    ]
    assert len(daemons) == 1 and wireguard_uapi.socket_path(daemons[0]).exists()

    await egress.kube.delete("v1", "Pod", "leaving", namespace)

    async def gone() -> bool:
        if await egress.kube.get("v1", "Pod", "leaving", namespace) is not None:
            return False
        if await egress.kube.get(API, kube_names.POD_ENDPOINT_KIND, "leaving", namespace):
            return False
        on_devices = await egress.gateway_peers(sgc, gateways)
        listed = await egress.status_peers()
        return not any(key in keys for keys in on_devices.values()) and not any(
            f"{namespace}/leaving" in listed.get(node, set()) for node in gateways
        )

    await egress.wait(gone, 60, "the pod, its PodEndpoint and its gateway peers gone")
    assert not wireguard_uapi.socket_path(daemons[0]).exists()
    assert not any(
        record is not None and record.pod_name == "leaving"
        for directory in record_dirs
        for _path, record in attachment_state.records(str(directory))
    )


async def test_stopping_the_serving_gateways_agent_moves_the_pod_to_the_other_gateway(
    egress: PodEgress, namespace: str
) -> None:
    await egress.ready_sgc(namespace, "steady", VMSS_PRIVATE)
    by_node = await egress.secondary_ips(namespace, "steady")
    assert len(by_node) == 2
    pod = await egress.run_pod(
        namespace, "mover", egress.regular_nodes[0], "sleep 3600", gateway="steady"
    )
    first = await egress.first_answer(pod)
    serving = next(node for node, ip in by_node.items() if ip == first)
    other = next(ip for node, ip in by_node.items() if node != serving)
    netns = egress.netns(pod)

    # Stop the serving gateway's agent and keep it down (its probe drains, the load balancer
    # moves the flow, the other gateway takes the pod's session); then let the stack start it
    # again, as its DaemonSet would.
    egress.stack.hold(f"agent/{serving}")
    try:
        stopped = time.monotonic()

        async def moved() -> str | None:
            answer = await echo_seen_from(netns, egress.echo, "udp", timeout=0.5)
            return answer if answer == other else None

        await egress.wait(moved, 60, "the pod's traffic to move to the other gateway")
        elapsed = time.monotonic() - stopped
        print(f"the pod moved to {other} {elapsed:.1f} s after its gateway's agent stopped")
        assert elapsed < FAILOVER_BOUND, elapsed
        assert await echo_seen_from(netns, egress.echo, "tcp", timeout=5) == other
    finally:
        egress.stack.release(f"agent/{serving}")

    async def reapplied() -> bool:
        held = await egress.status_gateways()
        return f"{namespace}/steady" in held.get(serving, set())

    await egress.wait(reapplied, 90, f"the restarted agent of {serving} to serve again")


async def test_a_configuration_deleted_under_its_pods_is_cleaned_up_and_stops_their_egress(
    egress: PodEgress, namespace: str
) -> None:
    sgc = await egress.ready_sgc(namespace, "doomed", VMSS_PRIVATE)
    ips = ips_of(sgc)
    pod = await egress.run_pod(
        namespace, "stranded", egress.regular_nodes[1], "sleep 3600", gateway="doomed"
    )
    assert await egress.first_answer(pod) in ips

    # kubectl waits for the finalizer: the gateways, rule and IP configurations go first.
    egress.kubectl(
        "delete", "-n", namespace, "staticgatewayconfiguration", "doomed", "--timeout=120s"
    )

    assert await egress.kube.get(API, kube_names.SGC_KIND, "doomed", namespace) is None
    held = await egress.status_gateways()
    assert not any(f"{namespace}/doomed" in sgcs for sgcs in held.values()), held
    netns = egress.netns(pod)
    answers = [await echo_seen_from(netns, egress.echo, "udp") for _ in range(5)]
    answers.append(await echo_seen_from(netns, egress.echo, "tcp", timeout=3))
    assert not ips & set(answers), answers
