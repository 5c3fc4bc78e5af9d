"""The `egressgw` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from egressgw.agent_flags import add_agent_parser
from egressgw.cni_manager_flags import add_cni_manager_parser
from egressgw.controller_flags import add_controller_parser
from egressgw.plan.command import add_plan_parser
from egressgw.status.command import add_status_parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="egressgw",
        description="Fixed egress IPs for Kubernetes pods on Azure, run as Temporal workflows.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = commands.add_parser("dev", help="the embedded development stack")
    dev_commands = dev.add_subparsers(dest="dev_command", required=True, metavar="ACTION")

    up = dev_commands.add_parser(
        "up",
        help="start Temporal, the Kubernetes and Azure emulators, and seed them",
        description="Start the embedded stack. State (Temporal's database, Kubernetes objects, "
        "Azure resources) lives in the state directory and survives restarts.",
    )
    up.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".egressgw"),
        metavar="DIR",
        help="where the stack keeps its state (default: .egressgw)",
    )
    up.add_argument(
        "--detach", action="store_true", help="run in the background and return once ready"
    )
    up.add_argument(
        "--port-base",
        type=int,
        default=None,
        metavar="N",
        help="use ports N..N+5 instead of 7233/7243/7244/8233/6443/8443",
    )
    up.add_argument("--headless", action="store_true", help="do not serve the Temporal Web UI")
    up.add_argument(
        "--network",
        choices=("auto", "on", "off"),
        default="auto",
        help="build the gateway nodes' network (namespaces, load balancer, internet echo) and "
        "run real agents in it; auto: when run as root, else the agents dry-run (default: auto)",
    )
    up.add_argument(
        "--net-prefix",
        default="egw",
        metavar="PREFIX",
        help="first part of every namespace and link name of the node network (default: egw)",
    )

    up.add_argument(
        "--traces",
        action="store_true",
        help="run Jaeger (built from tools/jaeger on first use) and send the controller's and "
        "agents' traces to it; `egressgw dev trace NAMESPACE/NAME` prints one",
    )
    up.add_argument(
        "--no-egressgw",
        action="store_true",
        help="start the cluster, Temporal, the ARM emulator and the node network without the "
        "controller, agents and CNI managers (to install them with the Helm chart)",
    )

    down = dev_commands.add_parser("down", help="stop a stack started with --detach")
    down.add_argument("--state-dir", type=Path, default=Path(".egressgw"), metavar="DIR")

    trace = dev_commands.add_parser(
        "trace",
        help="print a configuration's trace from a stack started with --traces",
        description="Print the trace of the reconcile that started a StaticGatewayConfiguration's "
        "workflow (its activities and Azure and Kubernetes calls, later passes included) as a "
        "tree, from the stack's Jaeger.",
    )
    trace.add_argument("configuration", metavar="NAMESPACE/NAME")
    trace.add_argument("--state-dir", type=Path, default=Path(".egressgw"), metavar="DIR")
    trace.add_argument(
        "--max-lines", type=int, default=400, metavar="N", help="spans to print at most"
    )
    values = dev_commands.add_parser(
        "chart-values",
        help="print Helm values (JSON) that install the chart into a running stack started "
        "with --no-egressgw",
    )
    values.add_argument("--state-dir", type=Path, default=Path(".egressgw"), metavar="DIR")

    add_controller_parser(commands)
    add_agent_parser(commands)
    add_cni_manager_parser(commands)
    _replay_parser(commands)
    add_status_parser(commands)
    add_plan_parser(commands)
    return parser


def _replay_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = commands.add_parser(
        "replay",
        help="replay workflow histories against the current workflow code",
        description="Replay histories from JSON files, directories of them, or a Temporal "
        "server by workflow ID; one line per history; exit code 1 on any non-determinism.",
    )
    replay.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="file or directory")
    replay.add_argument(
        "--workflow-id",
        action="append",
        default=[],
        metavar="ID",
        help="fetch this workflow's history from the server (repeatable)",
    )
    replay.add_argument(
        "--address",
        default=os.environ.get("TEMPORAL_ADDRESS", "localhost:7233"),
        metavar="HOST:PORT",
        help="Temporal frontend for --workflow-id (default: $TEMPORAL_ADDRESS or localhost:7233)",
    )
    replay.add_argument("--namespace", default="default", metavar="NS")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "dev":
        return _dev(args)
    if args.command in ("controller", "agent", "cni-manager", "replay", "status", "plan"):
        run = {
            "controller": _controller,
            "agent": _agent,
            "cni-manager": _cni_manager,
            "replay": _replay,
            "status": _status,
            "plan": _plan,
        }[args.command]
        code = run(args)
        if argv is None:  # a real process, not a caller in the same interpreter
            _exit_now(code)
        return code
    raise AssertionError(f"unhandled command {args.command}")


def _dev(args: argparse.Namespace) -> int:
    from egressgw.dev.layout import DevOptions, DevStackError
    from egressgw.dev.supervisor import run_foreground, start_detached, stop_detached

    try:
        if args.dev_command == "down":
            return stop_detached(args.state_dir, sys.stdout)
        if args.dev_command == "trace":
            from egressgw.dev.trace_view import print_trace

            return asyncio.run(
                print_trace(args.state_dir, args.configuration, sys.stdout, args.max_lines)
            )
        if args.dev_command == "chart-values":
            from egressgw.dev.chart_values import stack_chart_values

            print(json.dumps(stack_chart_values(args.state_dir), indent=2))
            return 0
        options = DevOptions(
            state_dir=args.state_dir,
            port_base=args.port_base,
            ui=not args.headless,
            network=args.network,
            net_prefix=args.net_prefix,
            traces=args.traces,
            egressgw=not args.no_egressgw,
        )
        if args.detach:
            return start_detached(options, sys.stdout)
        return asyncio.run(run_foreground(options, sys.stdout))
    except DevStackError as err:
        print(f"egressgw dev: {err}", file=sys.stderr)
        return 1
    except ValueError as err:
        print(f"egressgw dev: {err}", file=sys.stderr)
        return 2


def _controller(args: argparse.Namespace) -> int:
    # Flags and the cloud config are checked before the controller's heavy imports, so that a
    # mistake is reported at once.
    from contracts import resource_names
    from egressgw.cloud_config import CloudConfigError, load_cloud_config
    from egressgw.controller_flags import parse_duration, resolve_secret_namespace
    from egressgw.listen_address import parse_listen_address
    from egressgw.telemetry import configure_logging
    from egressgw.temporal_connection import temporal_connection
    from egressgw.tracing import tracing_settings

    configure_logging(args.log_level)
    try:
        drift_check = parse_duration(args.drift_check_interval)
        graceful_shutdown = parse_duration(args.graceful_shutdown)
        batch_window = parse_duration(args.batch_window)
        batch_quiet = parse_duration(args.batch_quiet)
        node_answer_timeout = parse_duration(args.node_answer_timeout)
        peer_sync = parse_duration(args.peer_sync_interval)
        health = parse_listen_address(args.health_address)
        metrics = parse_listen_address(args.metrics_address)
        tracing = tracing_settings(os.environ)
        secret_namespace = resolve_secret_namespace(args.secret_namespace, os.environ)
        temporal = temporal_connection(args, os.environ)
        loaded = load_cloud_config(args.cloud_config, environ=dict(os.environ))

        from egressgw.controller import ControllerOptions, run_controller

        options = ControllerOptions(
            cloud_config=args.cloud_config,
            kubeconfig=args.kubeconfig,
            temporal_address=temporal.address,
            temporal_namespace=temporal.namespace,
            temporal_tls=temporal.tls,
            temporal_api_key=temporal.api_key,
            secret_namespace=secret_namespace,
            azure_ca_file=args.azure_ca_file,
            drift_check=drift_check,
            task_queue=args.task_queue or resource_names.CONTROLLER_TASK_QUEUE,
            health=health,
            metrics=metrics,
            tracing=tracing,
            graceful_shutdown=graceful_shutdown,
            max_cached_workflows=args.max_cached_workflows,
            batch_window=batch_window,
            batch_quiet=batch_quiet,
            configure_nodes=args.configure_nodes,
            node_answer_timeout=node_answer_timeout,
            peer_sync=peer_sync,
        )
        return asyncio.run(run_controller(options, loaded))
    except (CloudConfigError, ValueError) as err:
        print(f"egressgw controller: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _agent(args: argparse.Namespace) -> int:
    # Flags and the host are checked before the clients are imported: a mistake is reported
    # at once, with exit code 2.
    from egressgw.agent_flags import agent_options, host_facts, startup_problem
    from egressgw.telemetry import configure_logging

    configure_logging(args.log_level)
    try:
        options = agent_options(args, os.environ)
    except ValueError as err:
        print(f"egressgw agent: {err}", file=sys.stderr)
        return 2
    problem = startup_problem(options, host_facts())
    if problem is not None:
        print(f"egressgw agent: {problem}", file=sys.stderr)
        return 2
    from egressgw.agent_process import run_agent
    from egressgw.telemetry import ListenError

    try:
        return asyncio.run(run_agent(options))
    except ListenError as err:
        print(f"egressgw agent: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _cni_manager(args: argparse.Namespace) -> int:
    from egressgw.cni_manager_flags import cni_manager_options
    from egressgw.telemetry import configure_logging

    configure_logging(args.log_level)
    try:
        options = cni_manager_options(args, os.environ)
    except ValueError as err:
        print(f"egressgw cni-manager: {err}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print(
            "egressgw cni-manager: needs root (it writes the node's CNI configuration and "
            "executables and serves the plugin's socket)",
            file=sys.stderr,
        )
        return 2
    from egressgw.cni_manager_process import run_cni_manager
    from egressgw.telemetry import ListenError

    try:
        return asyncio.run(run_cni_manager(options))
    except ListenError as err:
        print(f"egressgw cni-manager: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _replay(args: argparse.Namespace) -> int:
    from egressgw.replay import run_replay

    return asyncio.run(
        run_replay(
            args.paths, args.workflow_id, args.address, args.namespace, sys.stdout, sys.stderr
        )
    )


def _status(args: argparse.Namespace) -> int:
    from egressgw.status.command import run_status

    return run_status(args, sys.stdout, sys.stderr)


def _plan(args: argparse.Namespace) -> int:
    from egressgw.plan.command import run_plan

    return run_plan(args, sys.stdout, sys.stderr)


def _exit_now(code: int) -> NoReturn:
    """Exit without interpreter finalization: the Temporal SDK's Rust threads can outlive it and
    abort the process ("PyGILState_Release"), turning a clean run into a crash exit code."""
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)
