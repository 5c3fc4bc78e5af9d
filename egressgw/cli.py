"""The `egressgw` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path


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

    down = dev_commands.add_parser("down", help="stop a stack started with --detach")
    down.add_argument("--state-dir", type=Path, default=Path(".egressgw"), metavar="DIR")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "dev":
        return _dev(args)
    raise AssertionError(f"unhandled command {args.command}")


def _dev(args: argparse.Namespace) -> int:
    from egressgw.dev.layout import DevOptions, DevStackError
    from egressgw.dev.supervisor import run_foreground, start_detached, stop_detached

    try:
        if args.dev_command == "down":
            return stop_detached(args.state_dir, sys.stdout)
        options = DevOptions(
            state_dir=args.state_dir, port_base=args.port_base, ui=not args.headless
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
