"""The dev stack's node runtimes: one kubelet stand-in (sim/node_runtime) per node of the node
network, gateway and regular nodes alike.

Each registers its Node as the seed describes it (labels, taints, provider ID, the primary IP
ARM gave it) with its own client certificate (system:node:<name>), renews its Lease, and runs the
pods the scheduler binds to it: hostNetwork pods in the node's namespace, the others in pod
namespaces made by the node's CNI chain (the network's conf and bin dirs per node).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from egressgw.dev.layout import StatePaths
from egressgw.dev.restarts import Part, pid_of
from egressgw.dev.service_front import KUBERNETES_SERVICE_IP, KUBERNETES_SERVICE_PORT
from sim.control_plane.cluster import ControlPlane
from sim.fabric.plan import FabricPlan
from sim.node_runtime.node_process import (
    NodeRuntimeProcess,
    NodeSpec,
    node_command,
    prepare_node,
)
from sim.ports import free_port

RUNTIME_STOP_TIMEOUT: Final = 30.0


@dataclass(frozen=True)
class RuntimePlacement:
    spec: NodeSpec
    cni_conf_dir: Path
    cni_bin_dir: Path


def node_labels(seed: Mapping[str, Any]) -> tuple[str, ...]:
    labels: Mapping[str, str] = seed["metadata"].get("labels") or {}
    return tuple(f"{key}={value}" for key, value in sorted(labels.items()))


def node_taints(seed: Mapping[str, Any]) -> tuple[str, ...]:
    """As `kubectl taint` writes them: `key=value:Effect`, or `key:Effect` without a value."""
    taints = (seed.get("spec") or {}).get("taints") or []
    return tuple(
        f"{t['key']}={t['value']}:{t['effect']}" if t.get("value") else f"{t['key']}:{t['effect']}"
        for t in taints
    )


# The node paths the chart's DaemonSets mount (values.yaml defaults), kept per node under
# `<nodes_dir>/<node>/`: the node runtime serves hostPath volumes from there and runs the CNI
# plugins with them bound at these paths, so the CNI manager's conflist (which names its socket
# and state dir by node path) means the same to the plugin (sim/node_runtime/host_paths.py).
CNI_SOCKET_DIR: Final = "/var/run/egressgw"
CNI_PLUGIN_STATE_DIR: Final = "/var/lib/cni/egressgateway"


def host_path_args(nodes_dir: Path, node_name: str) -> tuple[str, ...]:
    """`--host-path` flags of one node: its CNI dirs, the CNI manager's socket and plugin state
    dirs, and its netns directory (which holds its gateway namespace on a gateway node)."""
    from egressgw.dev.node_network import node_cni, node_netns_dir

    cni = node_cni(nodes_dir, node_name)
    node_dir = (nodes_dir / node_name).resolve()
    mapping = {
        "/etc/cni/net.d": cni.conf_dir.resolve(),
        "/opt/cni/bin": cni.bin_dir.resolve(),
        CNI_SOCKET_DIR: node_dir / "cni" / "run",
        CNI_PLUGIN_STATE_DIR: node_dir / "cni" / "attachments",
        "/var/run/netns": node_netns_dir(nodes_dir, node_name).resolve(),
    }
    out: list[str] = []
    for node_path, directory in mapping.items():
        directory.mkdir(parents=True, exist_ok=True)
        out += ["--host-path", f"{node_path}={directory}"]
    return tuple(out)


def runtime_placements(
    seed_nodes: Sequence[Mapping[str, Any]],
    plan: FabricPlan,
    nodes_dir: Path,
    port: Callable[[], int] = free_port,
) -> list[RuntimePlacement]:
    """A runtime for every node of the network, labelled and tainted as the seed says."""
    from egressgw.dev.node_network import node_cni

    seeds = {str(node["metadata"]["name"]): node for node in seed_nodes}
    placements: list[RuntimePlacement] = []
    for index, node in enumerate(plan.nodes):
        seed = seeds.get(node.name)
        if seed is None:
            continue
        cni = node_cni(nodes_dir, node.name)
        spec = NodeSpec(
            name=node.name,
            internal_ip=node.primary_ip,
            kubelet_port=port(),
            pod_subnet=node.pod_cidr,
            netns=node.netns,
            labels=node_labels(seed),
            taints=node_taints(seed),
            provider_id=str((seed.get("spec") or {}).get("providerID", "")),
            pod_netns_prefix=f"{plan.prefix}p{index}",
            extra_args=(
                # The kubernetes Service as the node network reaches it (service_front.py).
                "--kubernetes-service-host",
                KUBERNETES_SERVICE_IP,
                "--kubernetes-service-port",
                str(KUBERNETES_SERVICE_PORT),
                *host_path_args(nodes_dir, node.name),
            ),
        )
        placements.append(RuntimePlacement(spec, cni.conf_dir, cni.bin_dir))
    return placements


class NodeRuntimes:
    """The runtime processes, started at once and stopped by PID."""

    def __init__(
        self,
        placements: Sequence[RuntimePlacement],
        control_plane: ControlPlane,
        paths: StatePaths,
        progress: Callable[[str], None],
    ) -> None:
        self.placements = tuple(placements)
        self._control_plane = control_plane
        self._paths = paths
        self._progress = progress
        self.processes: dict[str, NodeRuntimeProcess] = {}

    def log(self, node_name: str) -> Path:
        return self._paths.logs / f"node-{node_name}.log"

    def launch(self) -> None:
        control_plane = self._control_plane
        assert control_plane.pki is not None
        self._progress(
            f"starting {len(self.placements)} node runtimes (logs "
            f"{self._paths.logs.resolve()}/node-*.log)"
        )
        venv_bin = Path(sys.executable).parent
        for placement in self.placements:
            spec = placement.spec
            files = prepare_node(
                spec,
                self._paths.nodes_dir / spec.name / "runtime",
                control_plane.paths.pki,
                control_plane.server,
                control_plane.pki.ca,
                cni_conf_dir=placement.cni_conf_dir,
            )
            process = NodeRuntimeProcess(
                node_command(spec, files, placement.cni_bin_dir, (venv_bin,)), self.log(spec.name)
            )
            process.start()
            self.processes[spec.name] = process

    def parts(self) -> list[Part]:
        """The runtimes, for the restarter: one restarted finds its pods' processes still
        running and takes them over (sim/node_runtime/pod_recovery.py)."""
        return [
            Part(
                f"node-runtime/{name}",
                pid_of(process),
                process.exited,
                process.start,
                process.log,
            )
            for name, process in self.processes.items()
        ]

    async def stop(self) -> None:
        """SIGTERM every runtime (each stops its pods' processes), then wait."""
        processes, self.processes = self.processes, {}
        await asyncio.gather(*(p.stop(RUNTIME_STOP_TIMEOUT) for p in processes.values()))

    def document(self) -> dict[str, dict[str, Any]]:
        return {
            p.spec.name: {
                "pid": self.processes[p.spec.name].pid if p.spec.name in self.processes else None,
                "log": str(self.log(p.spec.name).resolve()),
                "kubelet_port": p.spec.kubelet_port,
                "netns": p.spec.netns,
            }
            for p in self.placements
        }


def ready_nodes(nodes: Sequence[Mapping[str, Any]]) -> set[str]:
    """Names of the Nodes whose Ready condition is True."""
    ready: set[str] = set()
    for node in nodes:
        for condition in (node.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Ready" and condition.get("status") == "True":
                ready.add(str(node["metadata"]["name"]))
    return ready
