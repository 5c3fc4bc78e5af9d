"""Where the dev stack keeps its files and which ports it listens on.

Everything lives in one state directory so that `dev down` and a later `dev up` find the same
databases, certificates and ports.
"""

from __future__ import annotations

import json
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LOCALHOST = "127.0.0.1"


class DevStackError(RuntimeError):
    """A problem starting or stopping the stack, worded for the person running it."""


@dataclass(frozen=True)
class DevOptions:
    state_dir: Path
    port_base: int | None = None
    ui: bool = True
    network: str = "auto"  # build the node network: "on", "off", or "auto" (when root)
    net_prefix: str = "egw"  # starts every namespace and link name of the node network
    traces: bool = False  # run Jaeger and send the controller's and agents' spans to it
    # Run the controller, the gateway agents and the CNI managers; False leaves the cluster
    # without them, for installing them another way (the Helm chart: docs/install.md).
    egressgw: bool = True


@dataclass(frozen=True)
class DevPorts:
    temporal: int = 7233
    temporal_http: int = 7243
    temporal_metrics: int = 7244
    temporal_ui: int = 8233
    kube_api: int = 6443
    arm: int = 8443
    etcd: int = 2379
    etcd_peer: int = 2380

    @classmethod
    def from_base(cls, base: int) -> DevPorts:
        """Consecutive ports starting at `base`, for running several stacks side by side."""
        count = len(cls.__dataclass_fields__)
        if not 1024 <= base <= 65535 - count:
            raise ValueError(f"--port-base must be between 1024 and {65535 - count}, got {base}")
        return cls(*range(base, base + count))

    def named(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class StatePaths:
    root: Path

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def azure_config(self) -> Path:
        return self.root / "azure.json"

    @property
    def ca(self) -> Path:
        return self.root / "ca.pem"

    @property
    def endpoints(self) -> Path:
        return self.root / "endpoints.json"

    @property
    def pid_file(self) -> Path:
        return self.root / "dev.pid"

    @property
    def process_records(self) -> Path:
        """Every process the stack started, restarts included (egressgw/dev/process_records.py)."""
        return self.root / "processes.json"

    @property
    def ports_file(self) -> Path:
        return self.root / "ports.json"

    @property
    def temporal_db(self) -> Path:
        return self.root / "temporal.db"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def kube_state(self) -> Path:
        """The control plane's etcd data, certificates, kubeconfigs and logs."""
        return self.root / "kube"

    @property
    def controller_kubeconfig(self) -> Path:
        """The controller's ServiceAccount token (deploy/rbac/controller.yaml)."""
        return self.kube_state / "controller.kubeconfig"

    @property
    def agent_kubeconfig(self) -> Path:
        """The gateway agents' ServiceAccount token (deploy/rbac/agent.yaml)."""
        return self.kube_state / "agent.kubeconfig"

    @property
    def cni_manager_kubeconfig(self) -> Path:
        """The CNI managers' ServiceAccount token (deploy/rbac/cni-manager.yaml)."""
        return self.kube_state / "cni-manager.kubeconfig"

    @property
    def arm_state(self) -> Path:
        return self.root / "arm"

    @property
    def network_file(self) -> Path:
        return self.root / "network.json"

    @property
    def network_state(self) -> Path:
        """The fabric's files (the echo service's records)."""
        return self.root / "network"

    @property
    def nodes_dir(self) -> Path:
        """Per node `<node>/`: its CNI configuration (`cni/net.d`, `cni/bin`, `cni/ipam`), and on
        regular nodes the CNI manager's socket `cni/manager.sock` and the plugin's records
        `cni/attachments/`."""
        return self.root / "nodes"

    @property
    def agents_dir(self) -> Path:
        """Dry-run agents' records, one JSON-lines file per node."""
        return self.root / "agents"


def write_json_atomic(path: Path, data: Any, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.chmod(mode)
    tmp.replace(path)


def resolve_ports(paths: StatePaths, port_base: int | None) -> DevPorts:
    """Ports for this start: an explicit base wins, else the ones this state dir used last."""
    if port_base is not None:
        return DevPorts.from_base(port_base)
    if paths.ports_file.exists():
        try:
            return DevPorts(**json.loads(paths.ports_file.read_text()))
        except (ValueError, TypeError):
            pass  # an unreadable file falls back to the defaults rather than blocking start
    return DevPorts()


def busy_ports(ports: DevPorts, host: str = LOCALHOST) -> list[tuple[str, int]]:
    """Ports someone else already listens on, so `dev up` can say which before starting."""
    taken: list[tuple[str, int]] = []
    for name, port in ports.named().items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                taken.append((name, port))
    return taken
