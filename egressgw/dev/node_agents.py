"""The dev stack's gateway agents: one `egressgw agent` process per seeded gateway node.

With the node network built (root), each agent treats its node's namespace as its host namespace
and keeps its gateway namespace and wireguard-go sockets apart from the other agents' on the same
machine. Without it, each agent records what it would do in a dry-run file instead.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from egressgw.agent_flags import SOCKET_TAG_MAX
from egressgw.dev.kube_seed import SYSTEM_NAMESPACE
from egressgw.dev.layout import LOCALHOST, DevPorts, StatePaths
from egressgw.dev.node_processes import NodeProcesses
from egressgw.dev.restarts import Part

# `dev down` should feel quick: the dev load balancer probes every 5 s, and nothing depends on
# the drain there.
AGENT_PROBE_DRAIN: Final = "1s"
AGENT_STOP_TIMEOUT: Final = 15.0
GATEWAY_NETNS_SUFFIX: Final = "-gw"


@dataclass(frozen=True)
class AgentPlacement:
    """Where one node's agent runs: in the node network, or as a dry run."""

    node_name: str
    host_netns: str = ""  # the node's namespace; "" for a dry run
    gateway_netns: str = ""
    socket_tag: str = ""
    dry_run: Path | None = None


def socket_tag(prefix: str, index: int) -> str:
    """A wireguard-go socket tag per node: the prefix's letters and digits, then the index."""
    digits = str(index)
    letters = "".join(c for c in prefix if c.isascii() and c.isalnum())
    return letters[: SOCKET_TAG_MAX - len(digits)] + digits


def networked_placements(
    prefix: str, node_netns: Sequence[tuple[str, str]]
) -> list[AgentPlacement]:
    """Agents for nodes (name, namespace) of the built network."""
    return [
        AgentPlacement(
            node_name=name,
            host_netns=netns,
            gateway_netns=f"{netns}{GATEWAY_NETNS_SUFFIX}",
            socket_tag=socket_tag(prefix, index),
        )
        for index, (name, netns) in enumerate(node_netns)
    ]


def dry_run_placements(node_names: Iterable[str], agents_dir: Path) -> list[AgentPlacement]:
    return [
        AgentPlacement(node_name=name, dry_run=(agents_dir / f"{name}.jsonl").resolve())
        for name in node_names
    ]


def agent_command(placement: AgentPlacement, ports: DevPorts, paths: StatePaths) -> list[str]:
    """The agent as a DaemonSet would run it, pointed at the stack and its node."""
    command = [
        sys.executable,
        "-m",
        "egressgw",
        "agent",
        "--node-name",
        placement.node_name,
        "--temporal-address",
        f"{LOCALHOST}:{ports.temporal}",
        "--temporal-namespace",
        "default",
        "--kubeconfig",
        str(paths.agent_kubeconfig.resolve()),
        "--namespace",
        SYSTEM_NAMESPACE,
        "--probe-drain",
        AGENT_PROBE_DRAIN,
        # Several agents on one host: each on a free port, which its log names.
        "--metrics-address",
        f"{LOCALHOST}:0",
    ]
    if placement.dry_run is not None:
        # Several agents in one namespace: each probe on a free loopback port.
        return [
            *command,
            "--dry-run",
            str(placement.dry_run),
            "--probe-host",
            LOCALHOST,
            "--probe-port",
            "0",
        ]
    return [
        *command,
        "--host-netns",
        placement.host_netns,
        "--gateway-netns",
        placement.gateway_netns,
        "--socket-tag",
        placement.socket_tag,
    ]


def agent_log(paths: StatePaths, node_name: str) -> Path:
    return paths.logs / f"agent-{node_name}.log"


class NodeAgents:
    """The agent processes, started at once and stopped by PID."""

    def __init__(
        self,
        placements: Sequence[AgentPlacement],
        ports: DevPorts,
        paths: StatePaths,
        progress: Callable[[str], None],
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """`env`: the agents' environment (None: this process's)."""
        self.placements = tuple(placements)
        self._env = dict(env) if env is not None else None
        self._ports = ports
        self._paths = paths
        self._progress = progress
        self._processes = NodeProcesses(AGENT_STOP_TIMEOUT)

    @property
    def processes(self) -> Mapping[str, subprocess.Popen[bytes]]:
        """The running agents by node."""
        return self._processes.processes

    def launch(self) -> None:
        """Start every agent and return at once (each connects to Temporal on its own)."""
        where = (
            "dry run: no root or no node network"
            if any(p.dry_run for p in self.placements)
            else "one per node namespace"
        )
        self._progress(
            f"starting {len(self.placements)} gateway agents ({where}; logs "
            f"{self._paths.logs.resolve()}/agent-*.log)"
        )
        for placement in self.placements:
            if placement.dry_run is not None:
                placement.dry_run.parent.mkdir(parents=True, exist_ok=True)
            self._processes.start(
                placement.node_name,
                agent_command(placement, self._ports, self._paths),
                agent_log(self._paths, placement.node_name),
                self._env,
            )

    def parts(self) -> list[Part]:
        """The agents, for the restarter."""
        return [self._processes.part(f"agent/{p.node_name}", p.node_name) for p in self.placements]

    async def stop(self) -> None:
        """SIGTERM to every agent still running, then wait (SIGKILL after a timeout)."""
        await self._processes.stop()

    def document(self) -> dict[str, dict[str, Any]]:
        """Per node: its agent's PID, log, and where it runs."""
        out: dict[str, dict[str, Any]] = {}
        for placement in self.placements:
            out[placement.node_name] = {
                "pid": self._processes.pid(placement.node_name),
                "log": str(agent_log(self._paths, placement.node_name).resolve()),
                "host_netns": placement.host_netns or None,
                "gateway_netns": placement.gateway_netns or None,
                "socket_tag": placement.socket_tag or None,
                "dry_run": str(placement.dry_run) if placement.dry_run is not None else None,
            }
        return out
