"""Traffic through a pod the plugin set up: a gateway stand-in namespace holds the configuration's
WireGuard server (wireguard-go with the gateway key, its peer the public key read from the
PodEndpoint) at the frontend IP, behind the node; a client namespace sits behind the node too.

    pod (eth0 10.244.1.x, wg0) -- bridge cni0 [node] -- 192.0.2.1 | 192.0.2.10 [gateway]
                                                    \\-- 203.0.113.1 | 203.0.113.50 [client]

The node has no route to 198.51.100.7 (the gateway's "internet" address), so an answer from it
proves the tunnel; the gateway has no route to the excluded 198.51.100.200 (on the node) nor to
the client, so answers from those prove eth0.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest_asyncio

from agent import wireguard_uapi
from agent.cni import pod_wireguard
from contracts import kube_names
from tests.fixtures.cluster import KubeObjects
from tests.netns.cni.cni_env import (
    PE_API,
    PE_KIND,
    CniNode,
    Pod,
    in_netns,
    netns_add,
    netns_delete,
    present,
    route_get,
    sh,
)
from tests.netns.cni.conftest import GatewayKeys, PodFactory, SgcFactory

FRONTEND = "192.0.2.10"
PORT = 6001
INTERNET = "198.51.100.7"
EXCLUDED = "198.51.100.200"
CLIENT = "203.0.113.50"
ECHO_PORT = 7777
POD_PORT = 8080
WG = kube_names.POD_WIREGUARD_INTERFACE

_UDP = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(float(sys.argv[3]))
s.sendto(b"hello", (sys.argv[1], int(sys.argv[2])))
print(s.recvfrom(200)[0].decode().strip())
"""
_TCP = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
s.sendall(b"hello")
print(s.recv(200).decode().strip())
"""


def exchange(netns: str, proto: str, host: str, port: int, timeout: float = 5.0) -> str:
    """One round trip from `netns`; the source address the far end saw, or "" on no answer."""
    script = _UDP if proto == "udp" else _TCP
    done = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", script, host, str(port), str(timeout)],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def transfer(netns: str, device: str) -> tuple[int, int]:
    """(received, sent) bytes of the device's one peer, from `wg show ... transfer`."""
    line = in_netns(netns, "wg", "show", device, "transfer").split()
    return int(line[1]), int(line[2])


@dataclass
class Topology:
    node: CniNode
    gateway: str
    client: str
    wg_name: str = field(default_factory=lambda: f"wgt{uuid.uuid4().hex[:8]}")
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    records: Path | None = None

    def build(self) -> None:
        tag = self.node.tag
        netns_add(self.gateway)
        netns_add(self.client)
        for ns in (self.gateway, self.client):
            in_netns(ns, "sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=0")
        node = self.node.netns
        sh(
            "ip",
            "-n",
            node,
            "link",
            "add",
            f"{tag}gn",
            "type",
            "veth",
            "peer",
            "name",
            f"{tag}gg",
            "netns",
            self.gateway,
        )
        sh(
            "ip",
            "-n",
            node,
            "link",
            "add",
            f"{tag}cn",
            "type",
            "veth",
            "peer",
            "name",
            f"{tag}cc",
            "netns",
            self.client,
        )
        batch = {
            node: [
                f"addr add 192.0.2.1/24 dev {tag}gn",
                f"link set {tag}gn up",
                f"addr add 203.0.113.1/24 dev {tag}cn",
                f"link set {tag}cn up",
                f"addr add {EXCLUDED}/32 dev lo",
            ],
            self.gateway: [
                f"addr add {FRONTEND}/24 dev {tag}gg",
                f"link set {tag}gg up",
                f"addr add {INTERNET}/32 dev lo",
                "route add 10.244.0.0/16 via 192.0.2.1",
            ],
            self.client: [
                f"addr add {CLIENT}/24 dev {tag}cc",
                f"link set {tag}cc up",
                "route add default via 203.0.113.1",
            ],
        }
        for ns, lines in batch.items():
            sh("ip", "-n", ns, "-batch", "-", stdin="\n".join(lines) + "\n")

    def start_gateway(self, keys: GatewayKeys, pod_key: str, pod_ip: str) -> None:
        """The configuration's WireGuard server, as a gateway node would run it."""
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.gateway, "wireguard-go", "-f", self.wg_name],
            env={**os.environ, "WG_PROCESS_FOREGROUND": "1", "LOG_LEVEL": "error"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        socket = wireguard_uapi.socket_path(self.wg_name)
        for _ in range(500):
            if socket.exists():
                break
            subprocess.run(["sleep", "0.01"], check=False)
        request = (
            f"set=1\nprivate_key={keys.private_key.hex()}\nlisten_port={PORT}\n"
            f"replace_peers=true\npublic_key={base64.b64decode(pod_key).hex()}\n"
            f"replace_allowed_ips=true\nallowed_ip={pod_ip}/32\n\n"
        )
        wireguard_uapi.check_set_reply(wireguard_uapi.call(socket, request))
        sh("ip", "-n", self.gateway, "link", "set", self.wg_name, "up")
        sh("ip", "-n", self.gateway, "route", "add", f"{pod_ip}/32", "dev", self.wg_name)

    def start_echo(self, netns: str, host: str, port: int) -> Path:
        records = self.node.dir / f"echo-{netns}-{port}.jsonl"
        process = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                netns,
                sys.executable,
                "-m",
                "sim.fabric.echo",
                "--host",
                host,
                "--port",
                str(port),
                "--records",
                str(records),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parents[3],
        )
        self.processes.append(process)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"ready"
        process.stdout.close()
        return records

    def tear_down(self) -> None:
        for process in self.processes:  # by PID, through the Popen that started it
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        netns_delete(self.gateway)
        netns_delete(self.client)
        with contextlib.suppress(FileNotFoundError):
            wireguard_uapi.socket_path(self.wg_name).unlink()


@pytest_asyncio.fixture
async def topology(cni_node: CniNode) -> AsyncIterator[Topology]:
    suffix = uuid.uuid4().hex[:3]
    built = Topology(
        cni_node, gateway=f"{cni_node.tag}g{suffix}", client=f"{cni_node.tag}k{suffix}"
    )
    try:
        built.build()
        yield built
    finally:
        built.tear_down()
        # The node namespace is the module's: take our links and address off it again.
        for link in (f"{cni_node.tag}gn", f"{cni_node.tag}cn"):
            sh("ip", "-n", cni_node.netns, "link", "del", link, check=False)
        sh("ip", "-n", cni_node.netns, "addr", "del", f"{EXCLUDED}/32", "dev", "lo", check=False)


async def test_pod_traffic_leaves_through_the_gateway_and_ingress_answers_by_eth0(
    cni_node: CniNode,
    kube: KubeObjects,
    pod_namespace: str,
    make_pod: PodFactory,
    make_sgc: SgcFactory,
    gateway_keys: GatewayKeys,
    topology: Topology,
) -> None:
    await make_sgc(
        pod_namespace, "egress", ip=FRONTEND, port=PORT, excludeCidrs=["198.51.100.128/25"]
    )
    pod: Pod = await make_pod(pod_namespace, "web", "egress")
    runs = await cni_node.run_chain("ADD", pod)
    assert runs[-1].code == 0, runs[-1].stdout + runs[-1].stderr
    endpoint = present(await kube.get(PE_API, PE_KIND, "web", pod_namespace))
    assert endpoint is not None
    topology.start_gateway(gateway_keys, endpoint["spec"]["podPublicKey"], pod.ip)
    gateway_records = topology.start_echo(topology.gateway, INTERNET, ECHO_PORT)
    node_records = topology.start_echo(cni_node.netns, EXCLUDED, ECHO_PORT)
    topology.start_echo(pod.netns, "0.0.0.0", POD_PORT)
    daemon = pod_wireguard.daemon_name(pod.container_id, pod.ifname)

    # Egress through wg0: the gateway's "internet" sees the pod's own address.
    assert await asyncio.to_thread(exchange, pod.netns, "udp", INTERNET, ECHO_PORT) == pod.ip
    assert await asyncio.to_thread(exchange, pod.netns, "tcp", INTERNET, ECHO_PORT) == pod.ip
    handshake = in_netns(topology.gateway, "wg", "show", topology.wg_name, "latest-handshakes")
    assert int(handshake.split()[1]) > 0
    seen = [json.loads(line) for line in gateway_records.read_text().splitlines()]
    assert {(r["proto"], r["src_ip"]) for r in seen} == {("udp", pod.ip), ("tcp", pod.ip)}

    # An excluded destination goes by eth0, and not a byte through the tunnel.
    before = transfer(pod.netns, daemon)
    assert await asyncio.to_thread(exchange, pod.netns, "udp", EXCLUDED, ECHO_PORT) == pod.ip
    assert await asyncio.to_thread(exchange, pod.netns, "tcp", EXCLUDED, ECHO_PORT) == pod.ip
    assert transfer(pod.netns, daemon) == before
    assert len(node_records.read_text().splitlines()) == 2

    # Ingress: without the mark a reply to the client would take the default route (wg0) to a
    # gateway that cannot reach the client; the connection works, so replies leave by eth0.
    assert route_get(pod.netns, CLIENT)["dev"] == WG
    before = transfer(pod.netns, daemon)
    assert await asyncio.to_thread(exchange, topology.client, "tcp", pod.ip, POD_PORT) == CLIENT
    assert await asyncio.to_thread(exchange, topology.client, "udp", pod.ip, POD_PORT) == CLIENT
    assert transfer(pod.netns, daemon) == before
