"""What one node's CNI manager is told (egressgw/cni_manager_flags.py reads the flags), and the
conflist entry it derives for the plugin.

Defaults are upstream's where upstream has the setting (conflist file name, uninstall ConfigMap,
exception CIDRs); the socket replaces upstream's gRPC port 50051 on all interfaces: a Unix socket
only root on the node can open (docs/pod-side.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from agent.cni.plugin_config import BACKEND_AUTO, DEFAULT_STATE_DIR
from contracts import kube_names

DEFAULT_SOCKET: Final = Path("/var/run/egressgw/cni-manager.sock")
DEFAULT_BIN_DIR: Final = Path("/opt/cni/bin")


@dataclass(frozen=True)
class ManagerSettings:
    node_name: str
    namespace: str  # the manager's own: where the uninstall ConfigMap is
    socket_path: Path = DEFAULT_SOCKET
    conf_dir: Path = Path(kube_names.CNI_CONF_DIR)
    bin_dir: Path = DEFAULT_BIN_DIR
    conf_file: str = kube_names.CNI_CONF_FILE
    # Never through the gateway (upstream --exception-cidrs).
    exception_cidrs: tuple[str, ...] = kube_names.DEFAULT_CNI_EXCEPTION_CIDRS
    # Kept on the pod's main interface under staticEgressGateway: pod CIDRs, service CIDR, the
    # nodes' subnet.
    cluster_cidrs: tuple[str, ...] = ()
    uninstall_configmap: str = kube_names.CNI_UNINSTALL_CONFIGMAP
    plugin_state_dir: Path = Path(DEFAULT_STATE_DIR)
    wireguard_backend: str = BACKEND_AUTO
    wireguard_go: str = ""  # the plugin's wireguard-go path; "" = found on PATH
    install_plugins: bool = True  # write the launchers into bin_dir
    poll_interval: float = 1.0  # seconds between looks at the conf dir
    taint_check_interval: float = 60.0  # seconds between looks at the node's taints


def conf_entry(settings: ManagerSettings) -> dict[str, Any]:
    """Our plugin's entry in the node's conflist (upstream's keys first, then ours)."""
    entry: dict[str, Any] = {
        "type": kube_names.CNI_PLUGIN_TYPE,
        "ipam": {"type": kube_names.CNI_IPAM_TYPE},
        "excludedCIDRs": list(settings.exception_cidrs),
        "socketPath": str(settings.socket_path),
        "clusterCIDRs": list(settings.cluster_cidrs),
        "stateDir": str(settings.plugin_state_dir),
        "wireguardBackend": settings.wireguard_backend,
    }
    if settings.wireguard_go:
        entry["wireguardGo"] = settings.wireguard_go
    return entry
