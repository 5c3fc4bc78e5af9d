"""The flags of `egressgw controller` and their defaults, kept apart from the controller itself so
that parsing the command line (and `--help`) imports none of the clients."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Final

from egressgw.temporal_connection import add_temporal_flags

DEFAULT_CLOUD_CONFIG: Final = Path("/etc/kubernetes/kube-egress-gateway/azure.json")
DEFAULT_DRIFT_CHECK: Final = "5m"
DEFAULT_PEER_SYNC: Final = "5m"
DEFAULT_GRACEFUL_SHUTDOWN: Final = "20s"
DEFAULT_BATCH_WINDOW: Final = "2s"  # contracts.workflow_io.DEFAULT_BATCH_WINDOW_SECONDS
DEFAULT_NODE_ANSWER_TIMEOUT: Final = "10s"
DEFAULT_BATCH_QUIET: Final = "200ms"  # contracts.workflow_io.DEFAULT_BATCH_QUIET_SECONDS
DEFAULT_HEALTH_ADDRESS: Final = ":8081"
# kube-egress-gateway's metrics port (--metrics-bind-port), for all three processes.
DEFAULT_METRICS_ADDRESS: Final = ":8080"
SECRET_NAMESPACE_VARIABLE: Final = "MY_POD_NAMESPACE"
# Where a container (docker-compose.yml) that cannot take flags says where its cloud config is.
CLOUD_CONFIG_VARIABLE: Final = "EGRESSGW_CLOUD_CONFIG"

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(text: str) -> timedelta:
    """Go-style durations as upstream's flags take them: `5m`, `90s`, `1h30m`, `500ms`; a bare
    number is seconds."""
    value = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return timedelta(seconds=float(value))
    position, total = 0, timedelta()
    for match in _DURATION_PART.finditer(value):
        if match.start() != position:
            break
        amount, unit = float(match.group(1)), match.group(2)
        total += {
            "ms": timedelta(milliseconds=amount),
            "s": timedelta(seconds=amount),
            "m": timedelta(minutes=amount),
            "h": timedelta(hours=amount),
        }[unit]
        position = match.end()
    if not value or position != len(value):
        raise ValueError(f"not a duration like 5m, 90s or 1h30m: {text!r}")
    return total


def resolve_secret_namespace(flag: str, environ: Mapping[str, str]) -> str:
    namespace = flag or environ.get(SECRET_NAMESPACE_VARIABLE, "")
    if not namespace:
        raise ValueError(
            f"--secret-namespace is empty and {SECRET_NAMESPACE_VARIABLE} is not set: "
            "the controller needs the namespace where it keeps the gateways' key Secrets"
        )
    return namespace


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """--kubeconfig and the Temporal connection (address, namespace, TLS, API key), as every
    long-running command (controller, agent) takes them."""
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        metavar="FILE",
        help="kubeconfig (default: $KUBECONFIG, then in-cluster configuration, then "
        "~/.kube/config)",
    )
    add_temporal_flags(parser)


def add_metrics_flag(parser: argparse.ArgumentParser) -> None:
    """--metrics-address, as every long-running command takes it (kube-egress-gateway's
    --metrics-bind-port 8080)."""
    parser.add_argument(
        "--metrics-address",
        default=DEFAULT_METRICS_ADDRESS,
        metavar="[HOST]:PORT",
        help="serve Prometheus metrics on /metrics here; 'off', or port 0 for any free port "
        f"(default: {DEFAULT_METRICS_ADDRESS})",
    )


def add_controller_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    controller = commands.add_parser(
        "controller",
        help="run the watchers and the Temporal worker of the control plane",
        description="Watch StaticGatewayConfigurations, gateway Nodes and key Secrets, and run "
        "the workflows and activities that provision Azure for them. Stops on SIGTERM.",
    )
    controller.add_argument(
        "--cloud-config",
        type=Path,
        default=Path(os.environ.get(CLOUD_CONFIG_VARIABLE) or DEFAULT_CLOUD_CONFIG),
        metavar="FILE",
        help=f"Azure cloud config (default: ${CLOUD_CONFIG_VARIABLE} or {DEFAULT_CLOUD_CONFIG})",
    )
    add_connection_flags(controller)
    controller.add_argument(
        "--secret-namespace",
        default=os.environ.get(SECRET_NAMESPACE_VARIABLE, ""),
        metavar="NS",
        help=f"namespace of the gateways' key Secrets (default: ${SECRET_NAMESPACE_VARIABLE})",
    )
    controller.add_argument(
        "--azure-ca-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="CA bundle to trust for the ARM endpoint (the dev stack's ca.pem)",
    )
    controller.add_argument(
        "--drift-check-interval",
        default=DEFAULT_DRIFT_CHECK,
        metavar="DURATION",
        help="how often each configuration re-reads Azure and repairs drift (default: 5m)",
    )
    controller.add_argument(
        "--peer-sync-interval",
        default=DEFAULT_PEER_SYNC,
        metavar="DURATION",
        help="the longest a configuration goes without re-listing its PodEndpoints and making "
        "every gateway's peers exactly those, even when no change was watched (the drift pass "
        f"does it too; default: {DEFAULT_PEER_SYNC})",
    )
    controller.add_argument(
        "--configure-nodes",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="configure gateway nodes through their egressgw agents; --no-configure-nodes "
        "provisions Azure and the status only (default: on)",
    )
    controller.add_argument(
        "--node-answer-timeout",
        # 0.1.0's name for it, when it bounded only the pick-up
        "--node-start-timeout",
        dest="node_answer_timeout",
        default=DEFAULT_NODE_ANSWER_TIMEOUT,
        metavar="DURATION",
        help="how long a gateway node's agent may take to pick up a call, or go without a "
        "heartbeat during one, before the node is named in the Degraded condition and the "
        "configuration goes on without it; it is retried when its agent starts, and on a "
        "timer of its own (at twice this or 15 s, doubling up to the drift interval) "
        f"(default: {DEFAULT_NODE_ANSWER_TIMEOUT}; --node-start-timeout is the old name)",
    )
    controller.add_argument(
        "--task-queue",
        default=None,
        metavar="NAME",
        help="Temporal task queue of the worker (default: egressgw-controller)",
    )
    controller.add_argument(
        "--health-address",
        default=DEFAULT_HEALTH_ADDRESS,
        metavar="[HOST]:PORT",
        help=f"serve /healthz and /readyz here, or 'off' (default: {DEFAULT_HEALTH_ADDRESS})",
    )
    add_metrics_flag(controller)
    controller.add_argument(
        "--graceful-shutdown",
        default=DEFAULT_GRACEFUL_SHUTDOWN,
        metavar="DURATION",
        help="time in-flight activities get to finish on SIGTERM (default: 20s)",
    )
    controller.add_argument(
        "--max-cached-workflows",
        type=int,
        default=1000,
        metavar="N",
        help="workflows the worker keeps in memory (about 1 MiB each; default: 1000)",
    )
    controller.add_argument(
        "--batch-window",
        default=DEFAULT_BATCH_WINDOW,
        metavar="DURATION",
        help="longest the load balancer and pool workflows collect requests before one Azure "
        f"write (default: {DEFAULT_BATCH_WINDOW})",
    )
    controller.add_argument(
        "--batch-quiet",
        default=DEFAULT_BATCH_QUIET,
        metavar="DURATION",
        help="a batch closes once no request arrived for this long "
        f"(default: {DEFAULT_BATCH_QUIET})",
    )
    controller.add_argument("--log-level", default="INFO", metavar="LEVEL")
