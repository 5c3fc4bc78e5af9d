"""A pod as the CNI plugin (planned) would set it up (docs/upstream-compatibility.md §5), in a
client namespace of the dev stack's fabric: its own WireGuard key, a wireguard-go interface whose
one peer is the gateway's public key at the load balancer frontend, the "internet" routed into
that interface, and the PodEndpoint the CNI manager would write. Traffic goes only to the
fabric's echo service.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client as kube_client
from pyroute2 import NetNS

from agent import wireguard_uapi
from agent.wireguard_keys import generate_private_key, parse_public_key, public_key_of, to_base64
from contracts import kube_names
from sim.fabric.network import Fabric

# One round trip through the tunnel; prints the source address the echo saw.
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


@dataclass
class PodPeer:
    name: str  # also the wireguard-go interface name: unique on the machine, <= 15 chars
    ip: str
    fabric: Fabric
    echo: tuple[str, int]
    private_key: bytes = field(default_factory=generate_private_key, repr=False)
    netns: str = ""
    _daemon: subprocess.Popen[bytes] | None = None

    @property
    def public_key(self) -> str:
        return to_base64(public_key_of(self.private_key))

    def start(self, gateway_public_key: str, frontend_ip: str, port: int) -> None:
        """Namespace with eth0 (the pod IP), then wg interface peered with the gateway."""
        self.netns = self.fabric.add_client(self.name, self.ip).netns
        self._daemon = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "wireguard-go", "-f", self.name],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        socket_path = wireguard_uapi.socket_path(self.name)
        deadline = time.monotonic() + 10
        while not socket_path.exists():
            if time.monotonic() > deadline or self._daemon.poll() is not None:
                raise RuntimeError(f"wireguard-go for {self.name} did not start")
            time.sleep(0.01)
        peer = parse_public_key(gateway_public_key).hex()
        request = (
            "set=1\n"
            f"private_key={self.private_key.hex()}\n"
            "replace_peers=true\n"
            f"public_key={peer}\n"
            f"endpoint={frontend_ip}:{port}\n"
            "replace_allowed_ips=true\n"
            "allowed_ip=0.0.0.0/0\n\n"
        )
        wireguard_uapi.check_set_reply(wireguard_uapi.call(socket_path, request))
        with contextlib.closing(NetNS(self.netns)) as ns:
            index = ns.link_lookup(ifname=self.name)[0]
            ns.link("set", index=index, state="up")
            # Only the echo goes through the tunnel; its source is the pod IP on eth0.
            ns.route("replace", dst=f"{self.echo[0]}/32", oif=index)

    def pod_endpoint(self, sgc_name: str, namespace: str) -> dict[str, Any]:
        return {
            "apiVersion": f"{kube_names.API_GROUP}/{kube_names.API_VERSION}",
            "kind": kube_names.POD_ENDPOINT_KIND,
            "metadata": {"name": self.name, "namespace": namespace},
            "spec": {
                "staticGatewayConfiguration": sgc_name,
                "podIpAddress": f"{self.ip}/32",
                "podPublicKey": self.public_key,
            },
        }

    def register(self, api: kube_client.ApiClient, sgc_name: str, namespace: str) -> None:
        kube_client.CustomObjectsApi(api).create_namespaced_custom_object(
            kube_names.API_GROUP,
            kube_names.API_VERSION,
            namespace,
            kube_names.POD_ENDPOINT_PLURAL,
            self.pod_endpoint(sgc_name, namespace),
        )

    def send(self, proto: str, timeout: float = 1.0) -> str | None:
        """The source IP the echo saw for one UDP datagram or TCP connection; None if no
        answer came back in time."""
        program = _UDP if proto == "udp" else _TCP
        done = subprocess.run(
            [
                *("ip", "netns", "exec", self.netns, sys.executable, "-c", program),
                *(self.echo[0], str(self.echo[1]), str(timeout)),
            ],
            capture_output=True,
            text=True,
            timeout=timeout + 10,
            check=False,
        )
        return done.stdout.strip() or None if done.returncode == 0 else None

    def close(self) -> None:
        if self._daemon is not None:
            self._daemon.terminate()
            try:
                self._daemon.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._daemon.kill()
                self._daemon.wait()
            self._daemon = None
        with contextlib.suppress(FileNotFoundError):
            Path(wireguard_uapi.socket_path(self.name)).unlink()
        if self.netns:
            self.fabric.remove_client(self.name)
