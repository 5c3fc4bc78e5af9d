"""The throwaway network for the dataplane throughput bench, and the TCP sink and sender that run
inside it.

Namespaces (every name starts with the caller's tag):

    <tag>-c  client: plays the pod. Two wireguard-go interfaces: <tag>cg (pod key, peer = the
             gateway, endpoint = the load balancer frontend IP on the node) and <tag>cd (the
             baseline: peer = the internet namespace directly).
    <tag>-n  node: the gateway node's host namespace. The agent's own code builds the gateway in
             it (agent.gateway_plumbing.apply_plumbing, agent.wireguard_devices.open_wireguard),
             from a worker thread that entered it. It forwards between client and internet.
    <tag>-g  gateway: the gateway namespace the agent creates (wg-<port>, host0, SNAT).
    <tag>-i  internet: a TCP sink on every address, and the baseline's wireguard-go <tag>iw.

Underlay: client 10.2.0.2 -- 10.2.0.1 node 10.1.0.4 -- 10.1.0.1 internet. Both measured paths
cross the node and two wireguard-go daemons:

    via gateway: client <tag>cg --UDP--> node (wg-6000's daemon) -> gateway ns, SNAT to the
                 secondary IP -> host0 -> node -> internet 198.18.0.1
    direct:      client <tag>cd --UDP--> node (forwarded) -> internet <tag>iw -> 198.18.0.2

Teardown (the context manager's exit, also on Ctrl-C) stops every process it started, by PID,
removes the wireguard-go sockets and the namespaces; nothing is created in the caller's own
namespace.

Run as a script it is the sink or the sender (started in a namespace with `ip netns exec`):
    python bench/netns_bench_env.py sink PORT
    python bench/netns_bench_env.py send HOST PORT SECONDS
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TextIO

from pyroute2 import netns

from agent import gateway_plumbing, wireguard_uapi
from agent.netns_handles import NetnsHandles
from agent.node_settings import GatewaySetup, NodeSettings, interface_name
from agent.wireguard_devices import PeerSpec, open_wireguard
from agent.wireguard_keys import generate_private_key, public_key_of
from agent.wireguard_userspace import UserspaceWireguard

# --- the TCP sink and sender (stdlib only: they run as their own processes) ---------------------

_CHUNK = 1 << 20  # large sendall/recv buffers keep Python's per-call cost out of the figure
_CONNECT_TIMEOUT_S = 1.0
_REACH_DEADLINE_S = 30.0  # first handshake plus wireguard-go noticing its link is up


def run_sink(port: int, out: TextIO) -> None:
    """Accept connections one at a time on every address; for each, print one JSON line with
    the source address, the bytes received and the seconds from first byte to end of stream."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", port))
        server.listen(1)
        print("ready", file=out, flush=True)
        buffer = bytearray(_CHUNK)
        while True:
            connection, (source, _port) = server.accept()
            with connection:
                total = 0
                started = 0.0
                while received := connection.recv_into(buffer):
                    if total == 0:
                        started = time.monotonic()
                    total += received
                seconds = time.monotonic() - started if total else 0.0
                # Printed before the connection closes: the sender waits for the close, so the
                # line is there when the sender exits.
                line = {"source": source, "bytes": total, "seconds": seconds}
                print(json.dumps(line), file=out, flush=True)


def run_sender(host: str, port: int, seconds: float) -> None:
    """Connect (retrying until the tunnel is up), send zeros for `seconds`, then wait until the
    sink has read everything and closed."""
    deadline = time.monotonic() + _REACH_DEADLINE_S
    while True:
        try:
            connection = socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT_S)
            break
        except OSError:
            # Waiting for the tunnel to come up, not retrying a failure of the thing measured.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with connection:
        connection.settimeout(None)
        payload = bytes(_CHUNK)
        end = time.monotonic() + seconds
        connection.sendall(payload)
        while time.monotonic() < end:
            connection.sendall(payload)
        connection.shutdown(socket.SHUT_WR)
        connection.recv(1)


# --- the environment ----------------------------------------------------------------------------

SINK_PORT = 5201
GATEWAY_PORT = 6000  # the load balancer rule's port: the gateway interface is wg-6000
CLIENT_UNDERLAY = "10.2.0.2"
NODE_CLIENT_SIDE = "10.2.0.1"
PRIMARY_IP = "10.1.0.4"  # the node's primary IP, on its host interface
UPLINK = "10.1.0.1"  # the internet's side of the node's host interface
FRONTEND_IP = "10.1.0.100"
SECONDARY_IP = "10.1.0.5"
POD_IP = "10.99.1.2"
INTERNET_VIA_GATEWAY = "198.18.0.1"
DIRECT_CLIENT_IP = "10.98.0.2"
INTERNET_VIA_DIRECT = "198.18.0.2"
DIRECT_CLIENT_PORT = 51821
DIRECT_INTERNET_PORT = 51822
_SCRIPT = Path(__file__).resolve()


class Route(StrEnum):
    VIA_GATEWAY = "via gateway"
    DIRECT = "direct"


@dataclass(frozen=True)
class Transfer:
    source: str  # the address the sink saw the connection come from
    byte_count: int
    seconds: float

    @property
    def mbit_per_s(self) -> float:
        return self.byte_count * 8 / self.seconds / 1e6 if self.seconds else 0.0


@dataclass(frozen=True)
class EnvNames:
    """Everything the environment names, all carrying the tag."""

    tag: str

    @property
    def client(self) -> str:
        return f"{self.tag}-c"

    @property
    def node(self) -> str:
        return f"{self.tag}-n"

    @property
    def gateway(self) -> str:
        return f"{self.tag}-g"

    @property
    def internet(self) -> str:
        return f"{self.tag}-i"

    @property
    def namespaces(self) -> tuple[str, ...]:
        return (self.client, self.node, self.gateway, self.internet)

    @property
    def client_to_gateway(self) -> str:
        return f"{self.tag}cg"

    @property
    def client_direct(self) -> str:
        return f"{self.tag}cd"

    @property
    def internet_direct(self) -> str:
        return f"{self.tag}iw"

    @property
    def host_interface(self) -> str:  # the node's "eth0", towards the internet
        return f"{self.tag}e"


class ThroughputEnv:
    def __init__(self, names: EnvNames, sink: subprocess.Popen[str]) -> None:
        self.names = names
        self._sink = sink

    @staticmethod
    def destination(route: Route) -> str:
        return INTERNET_VIA_GATEWAY if route is Route.VIA_GATEWAY else INTERNET_VIA_DIRECT

    @staticmethod
    def expected_source(route: Route) -> str:
        """What the internet sees: the configuration's secondary IP through the gateway, the
        client's tunnel address on the direct tunnel."""
        return SECONDARY_IP if route is Route.VIA_GATEWAY else DIRECT_CLIENT_IP

    def transfer(self, route: Route, seconds: float) -> Transfer:
        """One TCP stream from the client namespace to the sink for `seconds`."""
        subprocess.run(
            [
                *_in(self.names.client),
                *_python_script("send", self.destination(route), str(SINK_PORT), str(seconds)),
            ],
            check=True,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert self._sink.stdout is not None
        line = self._sink.stdout.readline()
        if not line:
            raise RuntimeError(f"the sink in {self.names.internet} exited")
        report = json.loads(line)
        return Transfer(str(report["source"]), int(report["bytes"]), float(report["seconds"]))

    def process_ids(self) -> list[int]:
        """The processes this environment runs: the sink and the wireguard-go daemons."""
        pids = [self._sink.pid]
        for path in _tagged_sockets(self.names.tag):
            pid = wireguard_uapi.daemon_pid(path)
            if pid is not None:
                pids.append(pid)
        return pids


@contextlib.contextmanager
def throughput_env(tag: str) -> Iterator[ThroughputEnv]:
    """Build the whole network (module docstring), yield it, and take it all down again."""
    names = EnvNames(tag)
    cleanup = contextlib.ExitStack()
    try:
        # Callbacks run last-registered first: whatever got built, the namespaces go at the end.
        cleanup.callback(_remove_namespaces, names)
        cleanup.callback(_stop_tagged_daemons, tag)
        _build_underlay(names)
        _build_gateway(names, cleanup)
        _build_client_and_baseline(names, cleanup)
        sink = _start_sink(names, cleanup)
        yield ThroughputEnv(names, sink)
    finally:
        with _ctrl_c_held():
            cleanup.close()


@contextlib.contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """A second Ctrl-C must not cut the teardown short (signals only reach the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _build_underlay(names: EnvNames) -> None:
    for name in (names.client, names.node, names.internet):
        netns.create(name)
    tag, node_if = names.tag, names.host_interface
    _ip(names.node, f"link add {node_if} type veth peer name {tag}i netns {names.internet}")
    _ip(names.node, f"link add {tag}n type veth peer name {tag}c netns {names.client}")
    for ns, dev, address in (
        (names.node, node_if, f"{PRIMARY_IP}/24"),
        (names.node, f"{tag}n", f"{NODE_CLIENT_SIDE}/24"),
        (names.internet, f"{tag}i", f"{UPLINK}/24"),
        (names.internet, f"{tag}i", f"{INTERNET_VIA_GATEWAY}/32"),
        (names.client, f"{tag}c", f"{CLIENT_UNDERLAY}/24"),
    ):
        _ip(ns, f"addr add {address} dev {dev}")
        _ip(ns, f"link set {dev} up")
    _ip(names.client, f"route add 10.1.0.0/24 via {NODE_CLIENT_SIDE}")
    # The node forwards and reaches "the internet" through its uplink; the internet knows the
    # way back to the node's addresses (Azure's fabric does this for the secondary IP).
    _sysctl(names.node, "net.ipv4.ip_forward", "1")
    _ip(names.node, f"route add 198.18.0.0/24 via {UPLINK}")
    _ip(names.internet, f"route add {SECONDARY_IP}/32 via {PRIMARY_IP}")
    _ip(names.internet, f"route add 10.2.0.0/24 via {PRIMARY_IP}")


def _build_gateway(names: EnvNames, cleanup: contextlib.ExitStack) -> None:
    """The gateway, exactly as the agent builds it, on a thread inside the node namespace."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{names.tag}-node")
    cleanup.callback(pool.shutdown)
    own_namespace = Path("/proc/thread-self/ns/net").stat().st_ino
    pool.submit(netns.setns, names.node, flags=0).result()
    node_namespace = pool.submit(lambda: Path("/proc/thread-self/ns/net").stat().st_ino).result()
    if node_namespace == own_namespace:  # never build a gateway in the machine's namespace
        raise RuntimeError(f"the node thread did not enter {names.node}")

    handles = NetnsHandles()
    cleanup.callback(lambda: pool.submit(handles.close).result())
    settings = NodeSettings(
        gateway_netns=names.gateway, host_interface=names.host_interface, socket_tag=names.tag
    )
    devices = pool.submit(open_wireguard, settings, handles, host_netns=names.node).result()
    cleanup.callback(lambda: pool.submit(devices.close).result())
    gateway_key = generate_private_key()
    setup = GatewaySetup(
        sgc_uid=f"bench-{names.tag}",
        listen_port=GATEWAY_PORT,
        frontend_ip=FRONTEND_IP,
        primary_ip=PRIMARY_IP,
        secondary_ip=SECONDARY_IP,
        private_key=gateway_key,
    )
    name = interface_name(GATEWAY_PORT)
    pool.submit(gateway_plumbing.apply_plumbing, setup, settings, handles).result()
    cleanup.callback(lambda: pool.submit(devices.delete_interface, name).result())
    pool.submit(
        devices.ensure_interface,
        name,
        owner=setup.sgc_uid,
        listen_port=GATEWAY_PORT,
        private_key=gateway_key,
    ).result()
    pod_key = generate_private_key()
    peer = PeerSpec(public_key_of(pod_key), ipaddress.IPv4Address(POD_IP))
    pool.submit(devices.sync_peers, name, [peer]).result()
    # The pod's side, configured as the CNI plugin would.
    _start_wireguard(names.client, names.client_to_gateway, cleanup)
    _configure_wireguard(
        names.client_to_gateway,
        private_key=pod_key,
        listen_port=0,
        peer_public_key=public_key_of(gateway_key),
        endpoint=f"{FRONTEND_IP}:{GATEWAY_PORT}",
        allowed_ip="0.0.0.0/0",
    )
    _address_and_route(names.client, names.client_to_gateway, POD_IP, INTERNET_VIA_GATEWAY)


def _build_client_and_baseline(names: EnvNames, cleanup: contextlib.ExitStack) -> None:
    """The baseline: a wireguard-go tunnel straight from the client to the internet."""
    client_key, internet_key = generate_private_key(), generate_private_key()
    _start_wireguard(names.client, names.client_direct, cleanup)
    _start_wireguard(names.internet, names.internet_direct, cleanup)
    _configure_wireguard(
        names.client_direct,
        private_key=client_key,
        listen_port=DIRECT_CLIENT_PORT,
        peer_public_key=public_key_of(internet_key),
        endpoint=f"{UPLINK}:{DIRECT_INTERNET_PORT}",
        allowed_ip=f"{INTERNET_VIA_DIRECT}/32",
    )
    _configure_wireguard(
        names.internet_direct,
        private_key=internet_key,
        listen_port=DIRECT_INTERNET_PORT,
        peer_public_key=public_key_of(client_key),
        endpoint=None,  # learned from the client's handshake, as the gateway does
        allowed_ip=f"{DIRECT_CLIENT_IP}/32",
    )
    _address_and_route(names.client, names.client_direct, DIRECT_CLIENT_IP, INTERNET_VIA_DIRECT)
    _address_and_route(names.internet, names.internet_direct, INTERNET_VIA_DIRECT, DIRECT_CLIENT_IP)


def _start_sink(names: EnvNames, cleanup: contextlib.ExitStack) -> subprocess.Popen[str]:
    # ip netns exec execs, so the PID is the sink's own; its own session keeps Ctrl-C for us.
    sink = subprocess.Popen(
        [*_in(names.internet), *_python_script("sink", str(SINK_PORT))],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    cleanup.callback(_stop_process, sink)
    assert sink.stdout is not None
    if sink.stdout.readline().strip() != "ready":
        raise RuntimeError(f"the sink in {names.internet} did not start")
    return sink


def _start_wireguard(namespace: str, ifname: str, cleanup: contextlib.ExitStack) -> None:
    daemons = UserspaceWireguard(host_netns=namespace)
    cleanup.callback(daemons.discard, ifname)  # stops it by the PID behind its socket
    daemons.create(ifname)


def _configure_wireguard(
    ifname: str,
    *,
    private_key: bytes,
    listen_port: int,
    peer_public_key: bytes,
    endpoint: str | None,
    allowed_ip: str,
) -> None:
    lines = [
        "set=1",
        f"private_key={private_key.hex()}",
        f"listen_port={listen_port}",
        "replace_peers=true",
        f"public_key={peer_public_key.hex()}",
        "replace_allowed_ips=true",
        f"allowed_ip={allowed_ip}",
    ]
    if endpoint is not None:
        lines.append(f"endpoint={endpoint}")
    reply = wireguard_uapi.call(wireguard_uapi.socket_path(ifname), "\n".join(lines) + "\n\n")
    wireguard_uapi.check_set_reply(reply)


def _address_and_route(namespace: str, ifname: str, address: str, destination: str) -> None:
    _ip(namespace, f"addr add {address}/32 dev {ifname}")
    _ip(namespace, f"link set {ifname} up")
    _ip(namespace, f"route add {destination}/32 dev {ifname}")


def _stop_process(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


def _tagged_sockets(tag: str) -> list[Path]:
    return sorted(wireguard_uapi.SOCKET_DIR.glob(f"wg{tag}*.sock")) + sorted(
        wireguard_uapi.SOCKET_DIR.glob(f"{tag}*.sock")
    )


def _stop_tagged_daemons(tag: str) -> None:
    """Safety net after an interrupted build: wireguard-go daemons whose sockets carry the tag
    (so only ours), stopped by the PID behind the socket."""
    daemons = UserspaceWireguard()
    for path in _tagged_sockets(tag):
        daemons.discard(path.name.removesuffix(".sock"))


def _remove_namespaces(names: EnvNames) -> None:
    present = set(netns.listnetns())
    for name in names.namespaces:
        if name in present:
            netns.remove(name)


def _in(namespace: str) -> list[str]:
    return ["ip", "netns", "exec", namespace]


def _python_script(*args: str) -> list[str]:
    return [sys.executable, str(_SCRIPT), *args]


def _ip(namespace: str, command: str) -> None:
    subprocess.run(["ip", "-n", namespace, *command.split()], check=True, capture_output=True)


def _sysctl(namespace: str, key: str, value: str) -> None:
    subprocess.run(
        [*_in(namespace), "sysctl", "-q", "-w", f"{key}={value}"], check=True, capture_output=True
    )


def main(argv: list[str]) -> None:
    match argv:
        case ["sink", port]:
            run_sink(int(port), sys.stdout)
        case ["send", host, port, seconds]:
            run_sender(host, int(port), float(seconds))
        case _:
            raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
