"""The flags of `egressgw cni-manager` and their checks, kept apart from the process so that
parsing (and `--help`) imports none of the clients.

Upstream's cnimanager flags carry over by name where they exist (`--exception-cidrs`,
`--cni-conf-file`, `--cni-uninstall-configmap-name`); `--socket-path` replaces
`--grpc-server-port` (docs/pod-side.md explains why a Unix socket), and the rest name what this
implementation adds (cluster CIDRs, directories, the dev stack's per-node settings).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from agent.cni.manager_settings import DEFAULT_BIN_DIR, DEFAULT_SOCKET, ManagerSettings
from agent.cni.plugin_config import BACKENDS, DEFAULT_STATE_DIR
from contracts import kube_names
from egressgw.controller_flags import add_metrics_flag, parse_duration
from egressgw.listen_address import ListenAddress, parse_listen_address
from egressgw.tracing import TracingSettings, tracing_settings

NODE_NAME_VARIABLE: Final = kube_names.ENV_NODE_NAME
POD_NAMESPACE_VARIABLE: Final = kube_names.ENV_POD_NAMESPACE
_NODE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True)
class CniManagerOptions:
    settings: ManagerSettings
    kubeconfig: Path | None = None
    log_level: str = "INFO"
    metrics: ListenAddress | None = None  # /metrics (egressgw/cni_manager_metrics.py)
    tracing: TracingSettings | None = None  # from the OTEL_* variables (egressgw/tracing.py)


def add_cni_manager_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    manager = commands.add_parser(
        "cni-manager",
        help="run the CNI manager of one regular node",
        description="Serve the kube-egress-cni plugin on a Unix socket (PodEndpoints for pods "
        "that use a gateway), keep the plugin's entry in the node's conflist and its "
        "executables in the CNI bin dir, and remove the node's cni-not-ready taint once they "
        "are in place. Stops on SIGTERM; the conflist entry is removed then only when the "
        'uninstall ConfigMap says uninstall: "true".',
    )
    manager.add_argument(
        "--node-name",
        default=os.environ.get(NODE_NAME_VARIABLE, ""),
        metavar="NAME",
        help=f"this node's Kubernetes name (default: ${NODE_NAME_VARIABLE})",
    )
    manager.add_argument(
        "--namespace",
        default=os.environ.get(POD_NAMESPACE_VARIABLE, ""),
        metavar="NS",
        help=f"the manager's namespace, where the uninstall ConfigMap is "
        f"(default: ${POD_NAMESPACE_VARIABLE})",
    )
    manager.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        metavar="FILE",
        help="kubeconfig (default: $KUBECONFIG, then in-cluster configuration, then "
        "~/.kube/config)",
    )
    manager.add_argument(
        "--socket-path",
        type=Path,
        default=DEFAULT_SOCKET,
        metavar="PATH",
        help=f"the Unix socket the plugin calls (default: {DEFAULT_SOCKET})",
    )
    manager.add_argument(
        "--cni-conf-dir",
        type=Path,
        default=Path(kube_names.CNI_CONF_DIR),
        metavar="DIR",
        help=f"the node's CNI configuration directory (default: {kube_names.CNI_CONF_DIR})",
    )
    manager.add_argument(
        "--cni-conf-file",
        default=kube_names.CNI_CONF_FILE,
        metavar="NAME",
        help=f"our conflist's file name (default: {kube_names.CNI_CONF_FILE})",
    )
    manager.add_argument(
        "--cni-bin-dir",
        type=Path,
        default=DEFAULT_BIN_DIR,
        metavar="DIR",
        help=f"where the plugin executables go (default: {DEFAULT_BIN_DIR})",
    )
    manager.add_argument(
        "--no-install-plugins",
        action="store_true",
        help="do not write the plugin executables (they are installed some other way)",
    )
    manager.add_argument(
        "--exception-cidrs",
        default=",".join(kube_names.DEFAULT_CNI_EXCEPTION_CIDRS),
        metavar="CIDRS",
        help="comma-separated CIDRs that never go through a gateway "
        f"(default: {','.join(kube_names.DEFAULT_CNI_EXCEPTION_CIDRS)})",
    )
    manager.add_argument(
        "--cluster-cidrs",
        default="",
        metavar="CIDRS",
        help="comma-separated CIDRs that stay on the pod's main interface under "
        "staticEgressGateway: pod CIDRs, the service CIDR, the nodes' subnet",
    )
    manager.add_argument(
        "--cni-uninstall-configmap-name",
        default=kube_names.CNI_UNINSTALL_CONFIGMAP,
        metavar="NAME",
        help='ConfigMap in --namespace whose uninstall: "true" makes the manager remove our '
        f"conflist when it stops (default: {kube_names.CNI_UNINSTALL_CONFIGMAP})",
    )
    manager.add_argument(
        "--plugin-state-dir",
        type=Path,
        default=Path(DEFAULT_STATE_DIR),
        metavar="DIR",
        help=f"where the plugin keeps its per-attachment records (default: {DEFAULT_STATE_DIR})",
    )
    manager.add_argument(
        "--wireguard-backend",
        choices=BACKENDS,
        default=BACKENDS[0],
        help="the pods' WireGuard: kernel module, wireguard-go, or auto: the kernel's when it "
        "has one (default: auto)",
    )
    manager.add_argument(
        "--wireguard-go",
        default="",
        metavar="PATH",
        help="wireguard-go for the plugin to run (default: found on PATH)",
    )
    manager.add_argument(
        "--poll-interval",
        default="1s",
        metavar="DURATION",
        help="how often the conf dir is looked at for a changed main configuration (default: 1s)",
    )
    manager.add_argument(
        "--taint-check-interval",
        default="1m",
        metavar="DURATION",
        help="how often the node is looked at for the cni-not-ready taint once installed "
        "(default: 1m)",
    )
    add_metrics_flag(manager)
    manager.add_argument("--log-level", default="INFO", metavar="LEVEL")


def parse_cidrs(flag: str, text: str) -> tuple[str, ...]:
    out = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"{flag}: {item!r} is not a CIDR") from None
        if network.version != 4:
            raise ValueError(f"{flag}: {item!r} is not IPv4 (the pod side is IPv4 only)")
        out.append(str(network))
    return tuple(out)


def _positive_seconds(flag: str, text: str) -> float:
    seconds = parse_duration(text).total_seconds()
    if seconds <= 0:
        raise ValueError(f"{flag} must be longer than zero, got {text!r}")
    return seconds


def cni_manager_options(args: argparse.Namespace, environ: Mapping[str, str]) -> CniManagerOptions:
    """The parsed flags, checked; ValueError names the flag that is wrong."""
    node = args.node_name
    if not node:
        raise ValueError(f"--node-name is empty and {NODE_NAME_VARIABLE} is not set")
    if len(node) > 253 or not _NODE_NAME.fullmatch(node):
        raise ValueError(f"--node-name {node!r} is not a Kubernetes node name")
    namespace = args.namespace or environ.get(POD_NAMESPACE_VARIABLE, "")
    if not namespace or not _DNS_LABEL.fullmatch(namespace):
        raise ValueError(
            f"--namespace {namespace!r} is not a namespace (set it or {POD_NAMESPACE_VARIABLE})"
        )
    if args.kubeconfig is not None and not args.kubeconfig.is_file():
        raise ValueError(f"--kubeconfig {args.kubeconfig} is not a file")
    for flag, path in (
        ("--socket-path", args.socket_path),
        ("--cni-conf-dir", args.cni_conf_dir),
        ("--cni-bin-dir", args.cni_bin_dir),
        ("--plugin-state-dir", args.plugin_state_dir),
    ):
        if not path.is_absolute():
            raise ValueError(f"{flag} {path} is not an absolute path")
    conf_file = args.cni_conf_file
    if "/" in conf_file or not conf_file.endswith(".conflist"):
        raise ValueError(f"--cni-conf-file {conf_file!r} must be a file name ending .conflist")
    if not _DNS_LABEL.fullmatch(args.cni_uninstall_configmap_name.replace(".", "-")):
        raise ValueError(
            f"--cni-uninstall-configmap-name {args.cni_uninstall_configmap_name!r} is not a name"
        )
    settings = ManagerSettings(
        node_name=node,
        namespace=namespace,
        socket_path=args.socket_path,
        conf_dir=args.cni_conf_dir,
        bin_dir=args.cni_bin_dir,
        conf_file=conf_file,
        exception_cidrs=parse_cidrs("--exception-cidrs", args.exception_cidrs),
        cluster_cidrs=parse_cidrs("--cluster-cidrs", args.cluster_cidrs),
        uninstall_configmap=args.cni_uninstall_configmap_name,
        plugin_state_dir=args.plugin_state_dir,
        wireguard_backend=args.wireguard_backend,
        wireguard_go=args.wireguard_go,
        install_plugins=not args.no_install_plugins,
        poll_interval=_positive_seconds("--poll-interval", args.poll_interval),
        taint_check_interval=_positive_seconds("--taint-check-interval", args.taint_check_interval),
    )
    return CniManagerOptions(
        settings=settings,
        kubeconfig=args.kubeconfig,
        log_level=args.log_level,
        metrics=parse_listen_address(args.metrics_address),
        tracing=tracing_settings(environ),
    )
