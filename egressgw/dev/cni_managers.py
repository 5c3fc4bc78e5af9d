"""The dev stack's CNI managers: one `egressgw cni-manager` per regular node of the node network,
run as the DaemonSet runs it on a cluster (docs/pod-side.md): the node's name, the ServiceAccount
token of `egressgw-cni-manager` (deploy/rbac/cni-manager.yaml), the node's CNI conf and bin dirs
(`DIR/nodes/<node>/cni/{net.d,bin}`, which its node runtime reads), a socket and plugin state dir
of its own beside them, and `--cluster-cidrs` of the dev network (pod range, service range,
VNet). Logs: `DIR/logs/cni-manager-<node>.log`.

Each manager writes the plugin launchers into its node's bin dir and our conflist
`01-egressgateway.conflist` (which sorts before the network's `10-pods.conflist`, so the node
runtime takes it) into its conf dir, then removes the node's
`egressgateway.kubernetes.azure.com/cni-not-ready` taint; `dev up` reports ready after that.

The process runs in the host's network namespace, as the node runtimes and the gateway agents do:
what it touches of its node (files, a Unix socket) is not namespaced, and the API server listens
on the host's loopback, which the node namespaces do not reach. The plugin it serves runs in the
node's namespace (the node runtime starts it there).

Stopping: SIGTERM (the socket closes; our conflist stays, as without the uninstall ConfigMap on a
cluster). What pods leave behind when their node runtime could not run their DEL is removed by
egressgw/dev/pod_leftovers.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from agent.cni import manager_api
from contracts import kube_names
from egressgw.dev.kube_seed import SYSTEM_NAMESPACE
from egressgw.dev.layout import StatePaths
from egressgw.dev.node_processes import NodeProcesses
from egressgw.dev.restarts import Part

MANAGER_STOP_TIMEOUT: Final = 15.0
STATUS_TIMEOUT: Final = 2.0
# sockaddr_un's sun_path holds 108 bytes with the terminating NUL.
UNIX_PATH_MAX: Final = 107
# Where a socket goes when the state dir's path is too long for one.
SHORT_SOCKET_DIR: Final = Path("/run/egressgw-dev")


@dataclass(frozen=True)
class ManagerPlacement:
    """Where one regular node's manager works."""

    node_name: str
    conf_dir: Path
    bin_dir: Path
    socket_path: Path
    plugin_state_dir: Path  # the plugin's attachment records


def socket_path(node_dir: Path, state_root: Path, index: int) -> Path:
    """`<node dir>/cni/manager.sock`, or a short path of this state dir's own when that one is
    too long for a Unix socket."""
    preferred = node_dir.resolve() / "cni" / "manager.sock"
    if len(os.fsencode(str(preferred))) <= UNIX_PATH_MAX:
        return preferred
    digest = hashlib.sha256(os.fsencode(str(state_root.resolve()))).hexdigest()[:12]
    return SHORT_SOCKET_DIR / f"{digest}-{index}.sock"


def manager_placements(
    regular_nodes: Sequence[str], nodes_dir: Path, state_root: Path
) -> list[ManagerPlacement]:
    """A manager per regular node (by name), in the node's directory of the state dir."""
    from egressgw.dev.node_network import node_cni

    placements = []
    for index, name in enumerate(regular_nodes):
        cni = node_cni(nodes_dir, name)
        placements.append(
            ManagerPlacement(
                node_name=name,
                conf_dir=cni.conf_dir.resolve(),
                bin_dir=cni.bin_dir.resolve(),
                socket_path=socket_path(nodes_dir / name, state_root, index),
                plugin_state_dir=(nodes_dir / name / "cni" / "attachments").resolve(),
            )
        )
    return placements


def manager_command(
    placement: ManagerPlacement, kubeconfig: Path, cluster_cidrs: Sequence[str]
) -> list[str]:
    """The manager as the DaemonSet would run it, pointed at the stack and its node."""
    return [
        sys.executable,
        "-m",
        "egressgw",
        "cni-manager",
        "--node-name",
        placement.node_name,
        "--namespace",
        SYSTEM_NAMESPACE,
        "--kubeconfig",
        str(kubeconfig.resolve()),
        "--socket-path",
        str(placement.socket_path),
        "--cni-conf-dir",
        str(placement.conf_dir),
        "--cni-bin-dir",
        str(placement.bin_dir),
        "--plugin-state-dir",
        str(placement.plugin_state_dir),
        "--cluster-cidrs",
        ",".join(cluster_cidrs),
        # Several managers on one host: each on a free port, which its log names.
        "--metrics-address",
        "127.0.0.1:0",
    ]


def manager_log(paths: StatePaths, node_name: str) -> Path:
    return paths.logs / f"cni-manager-{node_name}.log"


class CniManagers:
    """The manager processes, started at once and stopped by PID."""

    def __init__(
        self,
        placements: Sequence[ManagerPlacement],
        kubeconfig: Path,
        cluster_cidrs: Sequence[str],
        paths: StatePaths,
        progress: Callable[[str], None],
    ) -> None:
        self.placements = tuple(placements)
        self._kubeconfig = kubeconfig
        self._cluster_cidrs = tuple(cluster_cidrs)
        self._paths = paths
        self._progress = progress
        self._processes = NodeProcesses(MANAGER_STOP_TIMEOUT)

    @property
    def processes(self) -> Mapping[str, subprocess.Popen[bytes]]:
        """The running managers by node."""
        return self._processes.processes

    def launch(self) -> None:
        """Start every manager and return at once (each installs its node on its own)."""
        self._progress(
            f"starting {len(self.placements)} CNI managers, one per regular node (logs "
            f"{self._paths.logs.resolve()}/cni-manager-*.log)"
        )
        for placement in self.placements:
            placement.socket_path.parent.mkdir(parents=True, exist_ok=True)
            self._processes.start(
                placement.node_name,
                manager_command(placement, self._kubeconfig, self._cluster_cidrs),
                manager_log(self._paths, placement.node_name),
            )

    def parts(self) -> list[Part]:
        """The managers, for the restarter."""
        return [
            self._processes.part(f"cni-manager/{p.node_name}", p.node_name) for p in self.placements
        ]

    async def stop(self) -> None:
        """SIGTERM to every manager still running, then wait (SIGKILL after a timeout)."""
        await self._processes.stop()
        # Each manager removed its socket; the short sockets' directory goes once empty (a
        # manager making its socket there makes the directory again).
        with contextlib.suppress(OSError):
            SHORT_SOCKET_DIR.rmdir()

    def document(self) -> dict[str, dict[str, Any]]:
        """Per node: its manager's PID, log, socket and the plugin's record directory."""
        out: dict[str, dict[str, Any]] = {}
        for placement in self.placements:
            out[placement.node_name] = {
                "pid": self._processes.pid(placement.node_name),
                "log": str(manager_log(self._paths, placement.node_name).resolve()),
                "socket": str(placement.socket_path),
                "plugin_state_dir": str(placement.plugin_state_dir),
            }
        return out


def tainted_nodes(nodes: Sequence[Mapping[str, Any]]) -> set[str]:
    """Names of the Nodes that still carry the cni-not-ready taint."""
    return {
        str(node["metadata"]["name"])
        for node in nodes
        for taint in (node.get("spec") or {}).get("taints") or []
        if taint.get("key") == kube_names.CNI_NOT_READY_TAINT_KEY
    }


def manager_answers(socket: Path) -> bool:
    """The manager answers its socket (the plugin's STATUS call)."""
    from agent.cni.manager_client import ManagerClient, ManagerUnavailable

    try:
        ManagerClient(str(socket), timeout=STATUS_TIMEOUT).status()
    except (ManagerUnavailable, manager_api.ManagerError):
        return False
    return True
