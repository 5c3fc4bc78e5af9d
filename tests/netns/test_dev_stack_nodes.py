"""`egressgw dev up` as root: the node network and one agent per gateway node come up, a
configuration applied through Kubernetes lands on the nodes, the load balancer's probes reach the
agents; the regular nodes get their namespaces and CNI configuration, a CNI manager each that
chains the plugin and removes the cni-not-ready taint, and reach the internet with the outbound
IP; `dev down` leaves no namespace, link, wireguard-go daemon (the pods' included, even when
their node's runtime crashed), agent or CNI manager behind, and the next `dev up` builds it all
again.

The stack's namespaces and links carry this test's net_tag (--net-prefix).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from pyroute2 import IPRoute, netns

from agent import wireguard_uapi
from agent.cni import attachment_state
from contracts import kube_names
from egressgw.dev.pod_leftovers import processes_in
from sim.fabric import namespaces
from tests.fixtures.dev_stack import dev_port_base

pytestmark = [pytest.mark.slow, pytest.mark.needs_root]

EGRESSGW = [sys.executable, "-m", "egressgw"]
WIREGUARD_SOCKETS = Path("/var/run/wireguard")


def egressgw(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EGRESSGW, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@dataclass
class Stack:
    state_dir: Path
    port_base: int
    prefix: str

    def up(self) -> dict[str, Any]:
        started = time.monotonic()
        done = egressgw(
            "dev",
            "up",
            "--detach",
            "--headless",
            "--state-dir",
            str(self.state_dir),
            "--port-base",
            str(self.port_base),
            "--net-prefix",
            self.prefix,
        )
        print(f"dev up --detach with the node network: {time.monotonic() - started:.1f}s")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "node network    router" in done.stdout
        network: dict[str, Any] = json.loads((self.state_dir / "network.json").read_text())
        return network

    def down(self) -> None:
        done = egressgw("dev", "down", "--state-dir", str(self.state_dir))
        assert done.returncode == 0, done.stdout + done.stderr


def ours(prefix: str) -> tuple[list[str], list[str], list[str]]:
    """This stack's namespaces, root-namespace links and wireguard-go sockets."""
    tag = "".join(c for c in prefix if c.isalnum())
    spaces = [n for n in netns.listnetns() if n.startswith(f"{prefix}-")]
    with IPRoute() as ipr:
        links = [
            str(link.get("IFLA_IFNAME"))
            for link in ipr.get_links()
            if str(link.get("IFLA_IFNAME")).startswith(prefix)
        ]
    sockets = (
        [p.name for p in WIREGUARD_SOCKETS.glob(f"wg{tag}*.sock")]
        if WIREGUARD_SOCKETS.is_dir()
        else []
    )
    return spaces, links, sockets


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.partition(") ")[2][:1] != "Z"


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def wait_for_probe(network: dict[str, Any], node: dict[str, Any], uid: str, status: str) -> None:
    wait_until(
        lambda: probe_from_router(network, node["primary_ip"], uid) == status,
        90,
        f"probe /gw/{uid} of {node['name']} answering {status}",
    )


def probe_from_router(network: dict[str, Any], node_ip: str, uid: str) -> str:
    """The HTTP status the load balancer's probe of `node_ip` gets ("" when unreachable)."""
    script = (
        "import http.client, sys\n"
        "c = http.client.HTTPConnection(sys.argv[1], 8082, timeout=2)\n"
        "try:\n"
        "    c.request('GET', '/gw/' + sys.argv[2]); print(c.getresponse().status)\n"
        "except OSError:\n"
        "    print('')\n"
    )
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            network["router_netns"],
            sys.executable,
            "-c",
            script,
            node_ip,
            uid,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout.strip()


def send_to_echo(network: dict[str, Any], netns: str) -> str:
    """The source address the echo service saw for a UDP datagram from `netns`."""
    script = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)\n"
        "s.sendto(b'hi', (sys.argv[1], int(sys.argv[2])))\n"
        "print(s.recvfrom(200)[0].decode().strip())\n"
    )
    echo = network["echo"]
    done = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", script, echo["ip"], str(echo["port"])],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


def imds_from(netns: str, path: str) -> str:
    """What the VM's IMDS at 169.254.169.254 answers inside `netns` (text format)."""
    script = (
        "import sys, urllib.request\n"
        "url = 'http://169.254.169.254/metadata/instance/' + sys.argv[1]\n"
        "request = urllib.request.Request(url + '?api-version=2021-10-01&format=text',\n"
        "                                 headers={'Metadata': 'true'})\n"
        "print(urllib.request.urlopen(request, timeout=5).read().decode())\n"
    )
    done = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", script, path],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


def sgc(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{kube_names.API_GROUP}/{kube_names.API_VERSION}",
        "kind": kube_names.SGC_KIND,
        "metadata": {"name": name, "namespace": "egressgw-demo"},
        "spec": {
            "gatewayVmssProfile": {
                "vmssResourceGroup": "egressgw-dev",
                "vmssName": "aks-gwpool-12345678-vmss",
                "publicIpPrefixSize": 31,
            }
        },
    }


def annotated_pod(node: str, gateway: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "pinned",
            "annotations": {kube_names.POD_GATEWAY_ANNOTATION: gateway},
        },
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}],
        },
    }


@pytest.fixture
def stack(tmp_path: Path, net_tag: str) -> Iterator[Stack]:
    stack = Stack(tmp_path / "state", dev_port_base(26000), net_tag)
    try:
        yield stack
    finally:
        egressgw("dev", "down", "--state-dir", str(stack.state_dir))
        # Whatever a failed run left with this test's tag goes too.
        for name in ours(net_tag)[0]:
            namespaces.remove(name)


def test_dev_up_brings_up_the_node_network_and_agents_and_dev_down_removes_them(
    stack: Stack,
) -> None:
    network = stack.up()
    assert network["built"] is True
    every = network["nodes"]
    nodes = [n for n in every if n["role"] == "gateway"]
    regular = [n for n in every if n["role"] == "regular"]
    assert (len(nodes), len(regular)) == (4, 2)
    spaces, _, _ = ours(stack.prefix)
    for name in (network["router_netns"], network["internet_netns"], *(n["netns"] for n in every)):
        assert name in spaces
    agents = network["agents"]
    assert sorted(agents) == sorted(n["name"] for n in nodes)
    assert all(alive(info["pid"]) for info in agents.values())
    assert {info["host_netns"] for info in agents.values()} == {n["netns"] for n in nodes}

    # Every node has its CNI configuration over its own pod CIDR; regular nodes reach the
    # internet with the cluster's outbound IP.
    for node in every:
        conflist = json.loads(Path(node["cni"]["conflist"]).read_text())
        assert conflist["plugins"][0]["ipam"]["ranges"] == [[{"subnet": node["pod_cidr"]}]]
        assert (Path(node["cni"]["bin_dir"]) / "bridge").exists()
    assert len({n["pod_cidr"] for n in every}) == len(every)
    assert send_to_echo(network, regular[0]["netns"]) == network["outbound_ip"]

    # Each node's VM describes itself at 169.254.169.254 inside its namespace, as on Azure.
    for node in (nodes[0], regular[0]):
        assert imds_from(node["netns"], "compute/osProfile/computerName") == node["name"]
    assert imds_from(regular[0]["netns"], "compute/vmScaleSetName") in regular[0]["name"]

    # Each regular node's CNI manager has chained the plugin after the node's network and
    # removed the node's taint (dev up waits for that).
    managers = network["cni_managers"]
    assert sorted(managers) == sorted(n["name"] for n in regular)
    assert all(alive(info["pid"]) for info in managers.values())
    for node in regular:
        chained = json.loads((Path(node["cni"]["conf_dir"]) / kube_names.CNI_CONF_FILE).read_text())
        assert [p["type"] for p in chained["plugins"]] == ["bridge", "kube-egress-cni", "loopback"]
        assert chained["plugins"][1]["socketPath"] == managers[node["name"]]["socket"]
        assert (Path(node["cni"]["bin_dir"]) / "kube-egress-cni").exists()

    # Each agent's probe server answers the load balancer inside its node's namespace.
    for node in nodes:
        wait_for_probe(network, node, "unknown-uid", "503")

    # A configuration on the VMSS pool is applied by the agents of its two nodes.
    api = kube_config.new_client_from_config(str(stack.state_dir / "kubeconfig"))  # type: ignore[no-untyped-call]
    core = kube_client.CoreV1Api(api)
    for node in regular:
        spec = core.read_node(node["name"]).spec
        taints = (spec.taints if spec is not None else None) or []
        assert kube_names.CNI_NOT_READY_TAINT_KEY not in [t.key for t in taints]
    created = kube_client.CustomObjectsApi(api).create_namespaced_custom_object(
        kube_names.API_GROUP,
        kube_names.API_VERSION,
        "egressgw-demo",
        kube_names.SGC_PLURAL,
        sgc("nodes"),
    )
    assert isinstance(created, dict)
    uid = created["metadata"]["uid"]
    vmss_nodes = [n for n in nodes if "vmss" in n["name"]]
    assert len(vmss_nodes) == 2
    for node in vmss_nodes:
        wait_for_probe(network, node, uid, "200")
    _, _, sockets = ours(stack.prefix)
    assert len(sockets) == len(vmss_nodes)  # one wireguard-go daemon per gateway

    # A pod that uses the configuration gets its own wireguard-go daemon (started by the plugin).
    body: Any = annotated_pod(regular[0]["name"], "nodes")  # the client takes plain dicts too
    core.create_namespaced_pod("egressgw-demo", body)

    def running() -> bool:
        status = core.read_namespaced_pod("pinned", "egressgw-demo").status
        return status is not None and status.phase == "Running"

    wait_until(running, 90, "the annotated pod Running")
    (pod_daemon,) = [
        record.daemon
        for info in managers.values()
        for _path, record in attachment_state.records(info["plugin_state_dir"])
        if record is not None
    ]
    assert wireguard_uapi.socket_path(pod_daemon).exists()
    pod = core.read_namespaced_pod("pinned", "egressgw-demo")
    assert pod.metadata is not None and pod.metadata.uid is not None
    (pod_netns,) = [
        n for n in netns.listnetns() if n.endswith("-" + pod.metadata.uid.replace("-", "")[:8])
    ]
    pod_processes = processes_in(Path("/var/run/netns") / pod_netns)
    assert pod_processes  # the container and the daemon
    # Its node's runtime crashes: nothing runs the pod's CNI DEL any more, yet `dev down`
    # removes the daemon, the namespace and the container's process too.
    endpoints = json.loads((stack.state_dir / "endpoints.json").read_text())
    os.kill(endpoints["node_runtime_pids"][regular[0]["name"]], signal.SIGKILL)

    stack.down()
    spaces, links, sockets = ours(stack.prefix)
    assert (spaces, links, sockets) == ([], [], [])
    assert not any(alive(info["pid"]) for info in agents.values())
    assert not any(alive(info["pid"]) for info in managers.values())
    assert not wireguard_uapi.socket_path(pod_daemon).exists()
    assert pod_netns not in netns.listnetns()
    assert not any(alive(pid) for pid in pod_processes)
    echo_pid = network["echo"]["pid"]
    assert not alive(echo_pid)

    # A restart builds it again, with the agents re-applying the configuration.
    again = stack.up()
    assert sorted(n["netns"] for n in again["nodes"]) == sorted(n["netns"] for n in every)
    for node in vmss_nodes:
        wait_for_probe(again, node, uid, "200")
    stack.down()
    assert ours(stack.prefix) == ([], [], [])
    assert not any(alive(info["pid"]) for info in again["agents"].values())
    assert (stack.state_dir / "temporal.db").exists()
