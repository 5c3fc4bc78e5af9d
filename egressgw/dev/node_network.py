"""The dev stack's node network (root only): sim/fabric's namespaces for the seeded nodes (the
gateway nodes and the regular pool's) behind a VNet router, the emulated internal load balancer
with 5-second health probes, the cluster's outbound SNAT and the "internet" echo service; each
node's CNI configuration; plus the leftovers of the agents that ran in it.

The fabric follows the ARM emulator: secondary IPs and load balancer rules the controller writes
to ARM become routes and load balancer rules in the router within a second. `network.json` in
the state dir says where everything is, so that users and tests find it:

    plan = fabric_plan(json.loads((state_dir / "network.json").read_text()))
    client = Fabric(plan, state_dir / "network").add_client("pod1", "10.244.0.5")

Per node it names the node's namespace, role, pod CIDR and CNI directories (`DIR/nodes/<node>/
cni/{net.d,bin,ipam}`, sim/fabric/cni.py): a node runtime runs the node's pods through that CNI
chain, inside that namespace.

Stopping: the agents first (by the stack), then the wireguard-go daemons they left (gateway
interfaces deliberately outlive an agent), the gateway namespaces, and the fabric. The pods'
wireguard-go daemons (started by the CNI plugin) are stopped by the stack before
(egressgw/dev/pod_leftovers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from agent import wireguard_uapi
from egressgw.dev.node_agents import GATEWAY_NETNS_SUFFIX, AgentPlacement

if TYPE_CHECKING:
    from sim.arm.server import ArmEmulator
    from sim.fabric.cni import NodeCni
    from sim.fabric.network import Fabric
    from sim.fabric.plan import FabricPlan

log = logging.getLogger(__name__)

NETWORK_MODES: Final = ("auto", "on", "off")
WIREGUARD_SOCKET_DIR: Final = Path("/var/run/wireguard")
DAEMON_STOP_TIMEOUT: Final = 3.0


def network_wanted(mode: str, euid: int) -> tuple[bool, str]:
    """Whether to build the node network, and if not, why (for the progress output)."""
    if mode not in NETWORK_MODES:
        raise ValueError(f"--network must be one of {', '.join(NETWORK_MODES)}, got {mode!r}")
    if mode == "off":
        return False, "--network off"
    if euid != 0:
        if mode == "on":
            raise ValueError("--network on needs root (it creates network namespaces)")
        return False, "not root"
    return True, ""


def check_prefix(prefix: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,9}", prefix):
        raise ValueError(
            f"--net-prefix {prefix!r}: 1 to 10 lower-case letters, digits and dashes "
            "(it starts every namespace and link name, at most 15 characters)"
        )
    return prefix


def fabric_plan(document: Mapping[str, Any]) -> FabricPlan:
    """The fabric's plan from a network.json document (the same names and addresses)."""
    from sim.fabric.plan import CLIENT_CIDR, GATEWAY, NodeSpec, plan_fabric

    # A network.json of an older stack has no roles, clients' range or outbound IP.
    nodes = [
        NodeSpec(
            str(n["name"]), str(n["primary_ip"]), int(n["prefix_len"]), str(n.get("role", GATEWAY))
        )
        for n in document["nodes"]
    ]
    outbound_ip = document.get("outbound_ip")
    return plan_fabric(
        str(document["prefix"]),
        nodes,
        echo_port=int(document["echo"]["port"]),
        pod_cidr=str(document["pod_cidr"]),
        client_cidr=str(document.get("client_cidr", CLIENT_CIDR)),
        outbound_ip=str(outbound_ip) if outbound_ip else None,
    )


def node_cni(nodes_dir: Path, node_name: str) -> NodeCni:
    """Where a node's CNI configuration lives: `<nodes_dir>/<node>/cni/`."""
    from sim.fabric.cni import NodeCni

    return NodeCni.under(nodes_dir / node_name / "cni")


def network_document(
    fabric: Fabric | None,
    reason: str,
    agents: Mapping[str, Mapping[str, Any]],
    nodes_dir: Path | None = None,
    cni_managers: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """What network.json says; with `nodes_dir`, each node's CNI directories too, and with
    `cni_managers` each regular node's CNI manager (pid, log, socket, plugin records)."""
    if fabric is None:
        return {"built": False, "reason": reason, "agents": dict(agents)}
    plan = fabric.plan
    nodes = []
    for node in plan.nodes:
        entry: dict[str, Any] = {
            "name": node.name,
            "role": node.role,
            "netns": node.netns,
            "primary_ip": node.primary_ip,
            "prefix_len": node.prefix_len,
            "pod_cidr": node.pod_cidr,
        }
        if node.is_gateway:
            entry["gateway_netns"] = f"{node.netns}{GATEWAY_NETNS_SUFFIX}"
        if nodes_dir is not None:
            cni = node_cni(nodes_dir, node.name)
            entry["cni"] = {
                "conf_dir": str(cni.conf_dir.resolve()),
                "bin_dir": str(cni.bin_dir.resolve()),
                "data_dir": str(cni.data_dir.resolve()),
                "conflist": str(cni.conflist.resolve()),
            }
        nodes.append(entry)
    return {
        "built": True,
        "reason": "",
        "prefix": plan.prefix,
        "router_netns": plan.router_netns,
        "internet_netns": plan.internet_netns,
        "pod_cidr": plan.pod_cidr,
        "client_cidr": plan.client_cidr,
        "client_gateway_ip": plan.client_gateway_ip,
        "outbound_ip": plan.outbound_ip,
        "state_dir": str(fabric.state_dir.resolve()),
        "echo": {
            "ip": plan.echo_ip,
            "port": plan.echo_port,
            "records": str(fabric.records_path.resolve()),
            "pid": fabric.echo_pid,
        },
        "nodes": nodes,
        "agents": dict(agents),
        "cni_managers": dict(cni_managers or {}),
    }


def _daemon_names(tags: Iterable[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(tag) for tag in sorted(set(tags)) if tag)
    return re.compile(rf"wg(?:{alternatives})\d{{4}}") if alternatives else re.compile(r"(?!)")


def stop_wireguard_daemons(tags: Iterable[str], socket_dir: Path = WIREGUARD_SOCKET_DIR) -> int:
    """Stop the wireguard-go daemons the agents with these socket tags started; how many."""
    names = _daemon_names(tags)
    found = sorted(socket_dir.glob("wg*.sock")) if socket_dir.is_dir() else []
    return stop_daemons_at(path for path in found if names.fullmatch(path.stem))


def stop_daemons_at(sockets: Iterable[Path]) -> int:
    """Stop the wireguard-go daemons answering on these UAPI sockets (by the PID each socket
    reports, checked to be wireguard-go); how many."""
    pids: list[int] = []
    for path in sockets:
        with contextlib.suppress(OSError):
            pid = wireguard_uapi.daemon_pid(path)
            if pid is not None and _is_wireguard_go(pid):
                os.kill(pid, signal.SIGTERM)
                pids.append(pid)
    deadline = time.monotonic() + DAEMON_STOP_TIMEOUT
    for pid in pids:
        while _is_wireguard_go(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _is_wireguard_go(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return len(pids)


def _is_wireguard_go(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # "pid (comm) state ...": a zombie has exited already.
    comm, _, rest = status.partition(") ")
    return comm.endswith("(wireguard-go") and not rest.startswith("Z")


def node_netns_dir(nodes_dir: Path, node_name: str) -> Path:
    """What the node's pods see as /var/run/netns (the node runtime's --host-path)."""
    return nodes_dir / node_name / "netns"


def bind_gateway_netns(nodes_dir: Path, placements: Iterable[AgentPlacement]) -> None:
    """Each gateway node's gateway namespace, created (as the chart's init container would) and
    bound under the default name in the node's own netns directory, where the chart's agent
    finds it with createGatewayNetns: false and gatewayNetns left at its default."""
    from contracts import kube_names
    from sim.fabric import namespaces

    for placement in placements:
        if not placement.gateway_netns:
            continue
        namespaces.create(placement.gateway_netns)
        target = node_netns_dir(nodes_dir, placement.node_name) / kube_names.GATEWAY_NETNS
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch(exist_ok=True)
        if not os.path.ismount(target):
            subprocess.run(
                ["mount", "--bind", f"/var/run/netns/{placement.gateway_netns}", str(target)],
                check=True,
                capture_output=True,
            )


def unbind_gateway_netns(nodes_dir: Path) -> None:
    """Undo bind_gateway_netns (also what a crashed run left), so the namespaces can go."""
    for target in sorted(nodes_dir.glob("*/netns/*")):
        if os.path.ismount(target):
            subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


def remove_agent_leftovers(placements: Iterable[AgentPlacement]) -> None:
    """What agents leave on purpose when they stop: wireguard-go daemons, gateway namespaces."""
    from sim.fabric import namespaces

    placed = list(placements)
    stop_wireguard_daemons(p.socket_tag for p in placed)
    for placement in placed:
        if placement.gateway_netns:
            namespaces.remove(placement.gateway_netns)


class NodeNetwork:
    """The fabric for the seeded nodes, built from and kept in step with the ARM emulator, and
    the nodes' CNI configuration in `nodes_dir`."""

    def __init__(self, prefix: str, state_dir: Path, nodes_dir: Path) -> None:
        self.prefix = prefix
        self.state_dir = state_dir
        self.nodes_dir = nodes_dir
        self.fabric: Fabric | None = None
        self._following: asyncio.Task[None] | None = None

    def plan_from(self, arm: ArmEmulator) -> FabricPlan:
        """The plan for the nodes ARM knows, with the cluster's outbound IP (read on the
        emulator's loop, i.e. this one)."""
        from sim.fabric.arm_view import read_arm_network
        from sim.fabric.plan import plan_fabric

        network = read_arm_network(arm.store)
        return plan_fabric(self.prefix, network.node_specs(), outbound_ip=network.outbound_ip)

    async def build(self, plan: FabricPlan, leftovers: Iterable[AgentPlacement]) -> None:
        """Build from scratch; what an earlier run left (also after a crash) goes first. Every
        node gets its CNI configuration, with no pod address handed out yet."""
        from sim.fabric.network import Fabric

        fabric = Fabric(plan, self.state_dir)
        self.fabric = fabric
        await asyncio.to_thread(unbind_gateway_netns, self.nodes_dir)
        await asyncio.to_thread(remove_agent_leftovers, list(leftovers))
        await asyncio.to_thread(fabric.build)
        await asyncio.to_thread(install_cni, plan, self.nodes_dir)

    def node_gateway_netns(self, placements: Iterable[AgentPlacement]) -> None:
        bind_gateway_netns(self.nodes_dir, placements)

    def follow(self, arm: ArmEmulator) -> None:
        """Keep routes and load balancer in step with ARM, and probe like Azure (every 5 s)."""
        assert self.fabric is not None
        self._following = asyncio.create_task(
            self.fabric.follow_arm(arm.store), name="fabric follows ARM"
        )
        self.fabric.start_probing()

    async def stop(self, placements: Iterable[AgentPlacement]) -> None:
        """Tear everything down; call after the agents have stopped."""
        following, self._following = self._following, None
        if following is not None:
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following
        fabric, self.fabric = self.fabric, None
        await asyncio.to_thread(unbind_gateway_netns, self.nodes_dir)
        await asyncio.to_thread(remove_agent_leftovers, list(placements))
        if fabric is not None:
            await asyncio.to_thread(fabric.destroy)
            await asyncio.to_thread(clear_cni_leases, fabric.plan, self.nodes_dir)


def install_cni(plan: FabricPlan, nodes_dir: Path) -> None:
    """Each node's conflist over its pod CIDR and the reference plugins from the cached
    Kubernetes binaries; host-local's leases start empty."""
    from sim.control_plane.binaries import kube_binaries
    from sim.fabric.cni import install_node_cni

    plugins = kube_binaries().directory
    clear_cni_leases(plan, nodes_dir)
    for node in plan.nodes:
        install_node_cni(node_cni(nodes_dir, node.name), node.pod_cidr, plugins)


def clear_cni_leases(plan: FabricPlan, nodes_dir: Path) -> None:
    from sim.fabric.cni import clear_leases

    clear_leases(node_cni(nodes_dir, node.name) for node in plan.nodes)


def teardown_leftover_network(
    document: Mapping[str, Any], state_dir: Path, nodes_dir: Path | None = None
) -> None:
    """`dev down` after the supervisor died: remove what its network.json names."""
    if not document.get("built") or os.geteuid() != 0:
        return
    from sim.fabric import namespaces
    from sim.fabric.network import Fabric

    echo_pid = (document.get("echo") or {}).get("pid")
    if isinstance(echo_pid, int) and _cmdline_has(echo_pid, b"sim.fabric.echo"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(echo_pid, signal.SIGTERM)
    from egressgw.dev.pod_leftovers import remove_pod_namespaces, stop_pod_daemons

    managers: Mapping[str, Mapping[str, Any]] = document.get("cni_managers") or {}
    stop_pod_daemons(
        Path(str(info["plugin_state_dir"]))
        for info in managers.values()
        if info.get("plugin_state_dir")
    )
    remove_pod_namespaces(str(document["prefix"]))
    agents = document.get("agents") or {}
    remove_agent_leftovers(
        AgentPlacement(
            node_name=name,
            gateway_netns=str(info.get("gateway_netns") or ""),
            socket_tag=str(info.get("socket_tag") or ""),
        )
        for name, info in agents.items()
    )
    # The gateway namespaces dev up made for the chart's agents (--no-egressgw), bound in the
    # nodes' netns directories.
    if nodes_dir is not None:
        unbind_gateway_netns(nodes_dir)
    for node in document["nodes"]:
        if node.get("gateway_netns"):
            namespaces.remove(str(node["gateway_netns"]))
    # The nodes' host-local leases stay until the next build clears them.
    Fabric(fabric_plan(document), state_dir).destroy()
    # Namespaces named by an older version's rules, too.
    for node in document["nodes"]:
        namespaces.remove(str(node["netns"]))


def _cmdline_has(pid: int, word: bytes) -> bool:
    try:
        return word in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
