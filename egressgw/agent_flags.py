"""The flags of `egressgw agent`, their defaults and their checks, and what they ask of the host
(root, wireguard-go or the kernel module, iptables-restore), kept apart from the agent itself so
that parsing the command line (and `--help`) imports none of the clients.

Upstream's daemon flags carry over where they exist (`--gateway-lb-probe-port` 8082 is
`--probe-port`, `--lb-probe-drain-delay-seconds` 10 is `--probe-drain`, cleanup every minute);
the rest name what this implementation adds (Temporal, the WireGuard backend, the dev stack's
per-node namespaces).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Final

from agent.node_settings import NodeSettings, WireguardBackend
from contracts import kube_names
from egressgw.controller_flags import add_connection_flags, add_metrics_flag, parse_duration
from egressgw.listen_address import ListenAddress, parse_listen_address
from egressgw.temporal_connection import (
    DEFAULT_TEMPORAL_ADDRESS,
    TemporalConnection,
    TemporalTls,
    temporal_connection,
)
from egressgw.tracing import TracingSettings, tracing_settings

DEFAULT_PROBE_DRAIN: Final = "10s"
DEFAULT_CLEANUP_INTERVAL: Final = "1m"
DEFAULT_PEER_RESYNC_INTERVAL: Final = "30s"
DEFAULT_HOST_INTERFACE: Final = "eth0"
POD_NAMESPACE_VARIABLE: Final = kube_names.ENV_POD_NAMESPACE
NODE_NAME_VARIABLE: Final = kube_names.ENV_NODE_NAME
# wireguard-go's interface names are "wg" + tag + a 4-digit port, at most 15 characters.
SOCKET_TAG_MAX: Final = 9
IFNAME_MAX: Final = 15

WIREGUARD_GO: Final = "wireguard-go"
IPTABLES_RESTORE: Final = "iptables-restore"
NETNS_DIR: Final = Path("/var/run/netns")

# A Kubernetes node name: a DNS subdomain.
_NODE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NETNS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class AgentOptions:
    node_name: str
    namespace: str  # where the node's GatewayStatus goes and whose Secrets it may read
    temporal_address: str = DEFAULT_TEMPORAL_ADDRESS
    temporal_namespace: str = "default"
    temporal_tls: TemporalTls | None = None  # None: plaintext
    temporal_api_key: str | None = field(default=None, repr=False)
    kubeconfig: Path | None = None  # None: $KUBECONFIG, in-cluster, ~/.kube/config
    settings: NodeSettings = field(default_factory=NodeSettings)
    host_netns: str = ""  # "" = the process's own namespace is the node's host namespace
    probe_host: str = "0.0.0.0"
    probe_port: int = kube_names.PROBE_PORT
    probe_drain: timedelta = timedelta(seconds=10)
    # After draining, take the gateways off the node so pods re-handshake with the others.
    withdraw_on_stop: bool = True
    dry_run: Path | None = None  # record node changes here instead of making them
    cleanup_interval: timedelta = timedelta(minutes=1)
    # How often each interface's peers are held again to what the workflow last asked for.
    peer_resync_interval: timedelta = timedelta(seconds=30)
    # A gateway applied this recently is never an orphan (visibility may lag behind a new run).
    orphan_grace: timedelta = timedelta(minutes=5)
    graceful_shutdown: timedelta = timedelta(seconds=10)
    log_level: str = "INFO"
    metrics: ListenAddress | None = None  # /metrics (egressgw/agent_metrics.py)
    tracing: TracingSettings | None = None  # from the OTEL_* variables (egressgw/tracing.py)

    @property
    def temporal(self) -> TemporalConnection:
        return TemporalConnection(
            self.temporal_address,
            self.temporal_namespace,
            self.temporal_tls,
            self.temporal_api_key,
        )


def add_agent_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agent = commands.add_parser(
        "agent",
        help="run the gateway agent of one node",
        description="Configure this gateway node for the configurations that use it: a Temporal "
        "worker on the node's task queue, the load balancer's health probe, and the node's "
        "GatewayStatus. Stops on SIGTERM: probes drain first, then the gateways are taken off "
        "the node (unless --keep-gateways-on-stop).",
    )
    agent.add_argument(
        "--node-name",
        default=os.environ.get(NODE_NAME_VARIABLE, ""),
        metavar="NAME",
        help=f"this node's Kubernetes name (default: ${NODE_NAME_VARIABLE})",
    )
    add_connection_flags(agent)
    agent.add_argument(
        "--namespace",
        default=os.environ.get(POD_NAMESPACE_VARIABLE, ""),
        metavar="NS",
        help="namespace of the node's GatewayStatus and of the gateways' key Secrets "
        f"(default: ${POD_NAMESPACE_VARIABLE})",
    )
    agent.add_argument(
        "--gateway-netns",
        default=kube_names.GATEWAY_NETNS,
        metavar="NAME",
        help=f"network namespace of the gateway interfaces (default: {kube_names.GATEWAY_NETNS})",
    )
    agent.add_argument(
        "--host-interface",
        default=DEFAULT_HOST_INTERFACE,
        metavar="IFNAME",
        help="interface that receives the load balancer's traffic (default: eth0)",
    )
    agent.add_argument(
        "--wireguard-backend",
        choices=[backend.value for backend in WireguardBackend],
        default=WireguardBackend.AUTO.value,
        help="kernel module, wireguard-go, or auto: the kernel's when it has one (default: auto)",
    )
    agent.add_argument(
        "--host-netns",
        default="",
        metavar="NAME",
        help="development and tests: a network namespace that plays this node's host "
        "namespace (the process itself stays where it is)",
    )
    agent.add_argument(
        "--socket-tag",
        default="",
        metavar="TAG",
        help="development and tests: sets this agent's wireguard-go sockets apart from other "
        f"agents' on the same machine (letters and digits, at most {SOCKET_TAG_MAX})",
    )
    agent.add_argument(
        "--probe-host",
        default="0.0.0.0",
        metavar="ADDRESS",
        help="address the health probe listens on (default: all IPv4 addresses)",
    )
    agent.add_argument(
        "--probe-port",
        type=int,
        default=kube_names.PROBE_PORT,
        metavar="PORT",
        help=f"port of the load balancer's health probe, 0 for any free one "
        f"(default: {kube_names.PROBE_PORT})",
    )
    agent.add_argument(
        "--probe-drain",
        default=DEFAULT_PROBE_DRAIN,
        metavar="DURATION",
        help="on SIGTERM, how long every probe answers 503 before the server closes, so the "
        f"load balancer moves flows away first (default: {DEFAULT_PROBE_DRAIN})",
    )
    agent.add_argument(
        "--keep-gateways-on-stop",
        action="store_true",
        help="leave the gateways in place when the agent stops (by default they are taken off "
        "after the drain, so pods' WireGuard sessions move to the other gateways instead of "
        "lingering with this one)",
    )
    agent.add_argument(
        "--dry-run",
        type=Path,
        default=None,
        metavar="FILE",
        help="record what would change on the node in FILE (JSON lines) instead of changing it; "
        "needs no root",
    )
    agent.add_argument(
        "--cleanup-interval",
        default=DEFAULT_CLEANUP_INTERVAL,
        metavar="DURATION",
        help="how often the agent asks the configurations what the node should hold and removes "
        f"the rest (default: {DEFAULT_CLEANUP_INTERVAL})",
    )
    agent.add_argument(
        "--peer-resync-interval",
        default=DEFAULT_PEER_RESYNC_INTERVAL,
        metavar="DURATION",
        help="how often each gateway interface's peers are made again exactly what the "
        "configuration last asked for, undoing changes made on the node by hand "
        f"(default: {DEFAULT_PEER_RESYNC_INTERVAL})",
    )
    agent.add_argument(
        "--orphan-grace",
        default="5m",
        metavar="DURATION",
        help="a gateway applied this recently is kept by the cleanup even when no configuration "
        "names it yet (the workflow list can lag behind a new configuration; default: 5m)",
    )
    add_metrics_flag(agent)
    agent.add_argument("--log-level", default="INFO", metavar="LEVEL")


def _positive(flag: str, text: str) -> timedelta:
    value = parse_duration(text)
    if value <= timedelta(0):
        raise ValueError(f"{flag} must be longer than zero, got {text!r}")
    return value


def _check_node_name(name: str) -> str:
    if not name:
        raise ValueError(f"--node-name is empty and {NODE_NAME_VARIABLE} is not set")
    if len(name) > 253 or not _NODE_NAME.fullmatch(name):
        raise ValueError(f"--node-name {name!r} is not a Kubernetes node name")
    return name


def _check_netns(flag: str, name: str, *, required: bool) -> str:
    if not name and not required:
        return ""
    if not _NETNS_NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(f"{flag} {name!r} is not a network namespace name")
    return name


def _check_ifname(flag: str, name: str) -> str:
    if not name or len(name) > IFNAME_MAX or "/" in name or any(c.isspace() for c in name):
        raise ValueError(f"{flag} {name!r} is not an interface name (at most {IFNAME_MAX} chars)")
    return name


def _check_socket_tag(tag: str) -> str:
    if tag and (len(tag) > SOCKET_TAG_MAX or not (tag.isascii() and tag.isalnum())):
        raise ValueError(
            f"--socket-tag {tag!r}: use at most {SOCKET_TAG_MAX} letters and digits "
            "(it becomes part of interface names)"
        )
    return tag


def resolve_namespace(flag: str, environ: Mapping[str, str]) -> str:
    namespace = flag or environ.get(POD_NAMESPACE_VARIABLE, "")
    if not namespace:
        raise ValueError(
            f"--namespace is empty and {POD_NAMESPACE_VARIABLE} is not set: the agent needs "
            "the namespace of its GatewayStatus and of the gateways' key Secrets"
        )
    return namespace


def agent_options(args: argparse.Namespace, environ: Mapping[str, str]) -> AgentOptions:
    """The parsed flags, checked; ValueError names the flag that is wrong."""
    if not 0 <= args.probe_port <= 65535:
        raise ValueError(f"--probe-port must be between 0 and 65535, got {args.probe_port}")
    if args.kubeconfig is not None and not args.kubeconfig.is_file():
        raise ValueError(f"--kubeconfig {args.kubeconfig} is not a file")
    if args.dry_run is not None and args.dry_run.is_dir():
        raise ValueError(f"--dry-run {args.dry_run} is a directory; name a file")
    settings = NodeSettings(
        gateway_netns=_check_netns("--gateway-netns", args.gateway_netns, required=True),
        host_interface=_check_ifname("--host-interface", args.host_interface),
        wireguard_backend=WireguardBackend(args.wireguard_backend),
        socket_tag=_check_socket_tag(args.socket_tag),
    )
    temporal = temporal_connection(args, environ)
    return AgentOptions(
        node_name=_check_node_name(args.node_name),
        namespace=resolve_namespace(args.namespace, environ),
        temporal_address=temporal.address,
        temporal_namespace=temporal.namespace,
        temporal_tls=temporal.tls,
        temporal_api_key=temporal.api_key,
        kubeconfig=args.kubeconfig,
        settings=settings,
        host_netns=_check_netns("--host-netns", args.host_netns, required=False),
        probe_host=args.probe_host,
        probe_port=args.probe_port,
        probe_drain=parse_duration(args.probe_drain),
        withdraw_on_stop=not args.keep_gateways_on_stop,
        dry_run=args.dry_run,
        cleanup_interval=_positive("--cleanup-interval", args.cleanup_interval),
        peer_resync_interval=_positive("--peer-resync-interval", args.peer_resync_interval),
        orphan_grace=parse_duration(args.orphan_grace),
        log_level=args.log_level,
        metrics=parse_listen_address(args.metrics_address),
        tracing=tracing_settings(environ),
    )


# --- Start-up checks (pure: the facts are passed in) ---------------------------------------------


@dataclass(frozen=True)
class HostFacts:
    euid: int
    kernel_wireguard: Callable[[], bool]  # asked only when it matters
    has_program: Callable[[str], bool]
    netns_exists: Callable[[str], bool]


def startup_problem(options: AgentOptions, facts: HostFacts) -> str | None:
    """Why the agent cannot run on this host as asked, or None."""
    if options.host_netns and not facts.netns_exists(options.host_netns):
        return f"--host-netns {options.host_netns}: no such network namespace"
    if options.dry_run is not None:
        if options.host_netns and facts.euid != 0:
            return "--host-netns needs root (the probe listens inside that namespace)"
        return None
    if facts.euid != 0:
        return (
            "the agent configures network namespaces, WireGuard and iptables and needs root; "
            "run it as root, or with --dry-run FILE to record what it would do"
        )
    if not facts.has_program(IPTABLES_RESTORE):
        return f"{IPTABLES_RESTORE} is not installed; the agent sets up SNAT with it"
    backend = options.settings.wireguard_backend
    if backend is WireguardBackend.KERNEL:
        if not facts.kernel_wireguard():
            return (
                "--wireguard-backend kernel: this kernel has no WireGuard module; "
                "use --wireguard-backend wireguard-go or auto"
            )
        return None
    if not facts.has_program(options.settings.wireguard_go_path):
        if backend is WireguardBackend.USERSPACE:
            return f"--wireguard-backend wireguard-go: {WIREGUARD_GO} is not installed"
        if not facts.kernel_wireguard():
            return (
                f"this kernel has no WireGuard module and {WIREGUARD_GO} is not installed; "
                "install one of them"
            )
    return None


def host_facts() -> HostFacts:
    def kernel_wireguard() -> bool:
        from agent.wireguard_kernel import kernel_wireguard_available

        return kernel_wireguard_available()

    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return HostFacts(
        euid=os.geteuid(),
        kernel_wireguard=kernel_wireguard,
        has_program=lambda name: shutil.which(name, path=search) is not None,
        netns_exists=lambda name: (NETNS_DIR / name).exists(),
    )
