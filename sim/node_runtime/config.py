"""The node runtime's command line and the settings it gives (`python -m sim.node_runtime --help`).

Parsing is pure: `parse_args(argv)` returns a `RuntimeConfig` or raises `ConfigError`, so the
checks (label keys a node may not set, taint syntax) are unit-tested without starting anything.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sim.node_runtime.host_paths import HostPathError, HostPathMap, parse_host_path

TAINT_EFFECTS: Final = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# Label prefixes NodeRestriction allows a node to set on itself although they are under
# kubernetes.io / k8s.io (plugin/pkg/admission/noderestriction, kubelet's allowed labels).
_ALLOWED_KUBERNETES_LABELS: Final = frozenset(
    {
        "kubernetes.io/hostname",
        "kubernetes.io/arch",
        "kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
    }
)
_ALLOWED_KUBERNETES_LABEL_NAMESPACES: Final = ("kubelet.kubernetes.io", "node.kubernetes.io")
DEFAULT_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ConfigError(ValueError):
    """An option the node runtime cannot run with; the message names it."""


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str

    def to_json(self) -> dict[str, str]:
        out = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out


@dataclass(frozen=True)
class RuntimeConfig:
    node_name: str
    kubeconfig: Path
    state_dir: Path
    netns: str | None  # the node's network namespace by name; None: the host is the node
    cni_conf_dir: Path
    cni_bin_dirs: tuple[Path, ...]
    kubelet_port: int
    kubelet_bind_address: str
    kubelet_dns_name: str  # registered as InternalDNS: what the API server dials for logs
    serving_cert: Path
    serving_key: Path
    client_ca: Path | None  # verifies the API server's client certificate; None: kubeconfig's CA
    labels: tuple[tuple[str, str], ...]
    taints: tuple[Taint, ...]
    provider_id: str
    internal_ip: str
    extra_path: tuple[Path, ...]
    pod_netns_prefix: str
    cpu: str
    memory: str
    max_pods: int
    lease_duration_seconds: int
    lease_renew_seconds: float
    status_update_seconds: float
    restart_backoff_initial: float
    restart_backoff_max: float
    keep_pods_on_exit: bool
    kubernetes_service_host: str | None  # None: the host of the kubeconfig's server
    kubernetes_service_port: int | None
    host_paths: tuple[HostPathMap, ...]  # the node's directories kept elsewhere on this machine
    log_max_bytes: int
    log_level: str

    def container_path(self) -> str:
        """PATH of containers that set none: the extra dirs (the project's venv) first."""
        return ":".join([*(str(p) for p in self.extra_path), DEFAULT_PATH])


def parse_label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--label {text!r}: expected key=value")
    if restricted_label(key):
        raise ConfigError(
            f"--label {key}: NodeRestriction forbids a node to set labels under kubernetes.io "
            "or k8s.io other than the kubelet's own (kubernetes.io/hostname, topology.*, "
            "node.kubernetes.io/*, ...)"
        )
    return key, value


def restricted_label(key: str) -> bool:
    """Whether NodeRestriction refuses this label key from a node (set it as the admin)."""
    if key in _ALLOWED_KUBERNETES_LABELS:
        return False
    prefix, _, _ = key.rpartition("/")
    if not prefix:
        return False
    for allowed in _ALLOWED_KUBERNETES_LABEL_NAMESPACES:
        if prefix == allowed or prefix.endswith("." + allowed):
            return False
    return any(
        prefix == domain or prefix.endswith("." + domain) for domain in ("kubernetes.io", "k8s.io")
    )


def parse_taint(text: str) -> Taint:
    """`key=value:Effect` or `key:Effect`, as kubectl taint writes them."""
    spec, sep, effect = text.rpartition(":")
    if not sep or not spec:
        raise ConfigError(f"--taint {text!r}: expected key[=value]:Effect")
    if effect not in TAINT_EFFECTS:
        raise ConfigError(f"--taint {text!r}: effect must be one of {', '.join(TAINT_EFFECTS)}")
    key, _, value = spec.partition("=")
    if not key:
        raise ConfigError(f"--taint {text!r}: empty key")
    return Taint(key, value, effect)


def default_netns_prefix(node_name: str, state_dir: Path) -> str:
    """A short tag for this node's pod namespaces, unique per node and state dir on a machine."""
    digest = hashlib.sha256(f"{node_name}\0{state_dir.resolve()}".encode()).hexdigest()
    return "p" + digest[:6]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sim.node_runtime",
        description="A kubelet stand-in: runs the pods bound to one node as host processes.",
    )
    p.add_argument("--node-name", required=True)
    p.add_argument("--kubeconfig", type=Path, required=True, help="the node's client certificate")
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--netns", help="the node's network namespace (default: the host's)")
    p.add_argument("--cni-conf-dir", type=Path, required=True)
    p.add_argument(
        "--cni-bin-dir",
        action="append",
        type=Path,
        required=True,
        help="where CNI plugins are (repeatable; searched in order)",
    )
    p.add_argument("--kubelet-port", type=int, required=True)
    p.add_argument("--kubelet-bind-address", default="127.0.0.1")
    p.add_argument(
        "--kubelet-dns-name",
        default="localhost",
        help="the InternalDNS address registered for the kubelet endpoint (the API server dials "
        "it with --kubelet-preferred-address-types=InternalDNS,...)",
    )
    p.add_argument("--serving-cert", type=Path, required=True)
    p.add_argument("--serving-key", type=Path, required=True)
    p.add_argument(
        "--client-ca", type=Path, help="CA of API server client certs (default: kubeconfig's)"
    )
    p.add_argument("--label", action="append", default=[], help="key=value (repeatable)")
    p.add_argument("--taint", action="append", default=[], help="key[=value]:Effect (repeatable)")
    p.add_argument("--provider-id", default="")
    p.add_argument("--internal-ip", required=True)
    p.add_argument("--extra-path", action="append", type=Path, default=[])
    p.add_argument("--pod-netns-prefix", help="tag of pod netns names (default: from the node)")
    p.add_argument("--cpu", default="2")
    p.add_argument("--memory", default="8Gi")
    p.add_argument("--max-pods", type=int, default=110)
    p.add_argument("--lease-duration", type=int, default=40)
    p.add_argument("--lease-renew-interval", type=float, default=5.0)
    p.add_argument("--status-update-interval", type=float, default=30.0)
    p.add_argument("--restart-backoff-initial", type=float, default=10.0)
    p.add_argument("--restart-backoff-max", type=float, default=300.0)
    p.add_argument(
        "--keep-pods-on-exit",
        action="store_true",
        help="leave pod processes running when the runtime stops (adopted on the next start)",
    )
    p.add_argument("--kubernetes-service-host", help="KUBERNETES_SERVICE_HOST given to pods")
    p.add_argument("--kubernetes-service-port", type=int)
    p.add_argument(
        "--host-path",
        action="append",
        default=[],
        metavar="NODE_PATH=DIR",
        help="this node's NODE_PATH is DIR on this machine, for hostPath volumes and the CNI "
        "plugins (repeatable; sim/node_runtime/host_paths.py)",
    )
    p.add_argument("--log-max-bytes", type=int, default=10 * 1024 * 1024)
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p


def parse_args(argv: list[str]) -> RuntimeConfig:
    a = _parser().parse_args(argv)  # argparse itself reports missing or malformed options
    try:
        ipaddress.ip_address(a.internal_ip)
    except ValueError:
        raise ConfigError(f"--internal-ip {a.internal_ip!r} is not an IP address") from None
    if a.pod_netns_prefix is not None and not (0 < len(a.pod_netns_prefix) <= 20):
        raise ConfigError("--pod-netns-prefix must have 1 to 20 characters")
    if a.restart_backoff_initial <= 0 or a.restart_backoff_max < a.restart_backoff_initial:
        raise ConfigError("--restart-backoff-initial must be > 0 and <= --restart-backoff-max")
    try:
        host_paths = tuple(parse_host_path(text) for text in a.host_path)
    except HostPathError as err:
        raise ConfigError(str(err)) from None
    return RuntimeConfig(
        node_name=a.node_name,
        kubeconfig=a.kubeconfig,
        state_dir=a.state_dir,
        netns=a.netns,
        cni_conf_dir=a.cni_conf_dir,
        cni_bin_dirs=tuple(a.cni_bin_dir),
        kubelet_port=a.kubelet_port,
        kubelet_bind_address=a.kubelet_bind_address,
        kubelet_dns_name=a.kubelet_dns_name,
        serving_cert=a.serving_cert,
        serving_key=a.serving_key,
        client_ca=a.client_ca,
        labels=tuple(parse_label(text) for text in a.label),
        taints=tuple(parse_taint(text) for text in a.taint),
        provider_id=a.provider_id,
        internal_ip=a.internal_ip,
        extra_path=tuple(a.extra_path),
        pod_netns_prefix=a.pod_netns_prefix or default_netns_prefix(a.node_name, a.state_dir),
        cpu=a.cpu,
        memory=a.memory,
        max_pods=a.max_pods,
        lease_duration_seconds=a.lease_duration,
        lease_renew_seconds=a.lease_renew_interval,
        status_update_seconds=a.status_update_interval,
        restart_backoff_initial=a.restart_backoff_initial,
        restart_backoff_max=a.restart_backoff_max,
        keep_pods_on_exit=a.keep_pods_on_exit,
        kubernetes_service_host=a.kubernetes_service_host,
        kubernetes_service_port=a.kubernetes_service_port,
        host_paths=host_paths,
        log_max_bytes=a.log_max_bytes,
        log_level=a.log_level,
    )
