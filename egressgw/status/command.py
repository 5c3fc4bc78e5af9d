"""`egressgw status`: its flags and its run. The kubeconfig is found as kubectl finds it; Temporal
and its Web UI as egressgw/client_endpoints.py says (flag, environment, the dev stack's
endpoints.json, docker-compose.yml's ports)."""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from egressgw.temporal_connection import add_temporal_flags

if TYPE_CHECKING:  # the CLI builds its parser from this module: keep `--help` light
    from egressgw.status.report import StatusRow

OUTPUTS: Final = ("table", "json")
DEFAULT_QUERY_TIMEOUT: Final = "5s"
CONNECT_TIMEOUT: Final = 10.0  # seconds


def add_status_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser(
        "status",
        help="every StaticGatewayConfiguration with its phase, egress IP, nodes and workflow",
        description="List StaticGatewayConfigurations with the phase of their workflow, the "
        "egress IP, the gateway nodes that report the gateway ready out of the pool's nodes, "
        "the last error and the workflow's page in the Temporal Web UI. Reads only. Exit "
        "code 1 when the API server or Temporal cannot be read.",
    )
    status.add_argument(
        "-n",
        "--namespace",
        default=None,
        metavar="NS",
        help="only this Kubernetes namespace (default: all namespaces)",
    )
    status.add_argument("-o", "--output", choices=OUTPUTS, default="table", help="(default: table)")
    status.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        metavar="FILE",
        help="kubeconfig (default: $KUBECONFIG, then in-cluster configuration, then "
        "~/.kube/config)",
    )
    status.add_argument(
        "--ui-url",
        default=None,
        metavar="URL",
        help="Temporal Web UI base URL for the workflow links (default: $EGRESSGW_UI_URL, then "
        "the dev stack's, then http://localhost:8080 as docker-compose.yml publishes it)",
    )
    status.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".egressgw"),
        metavar="DIR",
        help="a dev stack's state directory whose endpoints.json supplies the Temporal address, "
        "namespace and Web UI URL that neither a flag nor the environment gives "
        "(default: .egressgw)",
    )
    # The controller's Temporal flags (TLS, mTLS, API key); address and namespace fall back to
    # the dev stack's endpoints.json before the built-in defaults (egressgw/client_endpoints.py).
    add_temporal_flags(status)
    status.set_defaults(temporal_address=None, temporal_namespace=None)
    status.add_argument(
        "--query-timeout",
        default=DEFAULT_QUERY_TIMEOUT,
        metavar="DURATION",
        help="how long a workflow gets to answer the status query; without a running "
        f"controller nothing answers (default: {DEFAULT_QUERY_TIMEOUT})",
    )


async def _facts_and_rows(
    args: argparse.Namespace, query_timeout: timedelta, stderr: TextIO
) -> tuple[int, list[StatusRow] | None]:
    from kubernetes_asyncio.config import ConfigException
    from temporalio.service import RPCError

    from contracts.gateway_config import StaticGatewayConfiguration
    from contracts.raw_fields import ObjectFormatError
    from egressgw.client_endpoints import read_dev_endpoints, resolve_target
    from egressgw.service_clients import connect_temporal_once, kube_api_client
    from egressgw.status import report, sources
    from egressgw.temporal_connection import temporal_connection
    from kubeclient.errors import CLIENT_ERRORS, describe_failure

    target = resolve_target(
        address=args.temporal_address,
        namespace=args.temporal_namespace,
        ui_url=args.ui_url,
        environ=os.environ,
        dev_endpoints=read_dev_endpoints(args.state_dir),
    )
    try:
        api = await kube_api_client(args.kubeconfig)
    except (ConfigException, OSError, ValueError) as err:
        print(f"egressgw status: no usable kubeconfig: {err}", file=stderr)
        return 1, None
    async with api:
        try:
            objects = await sources.list_configurations(api, args.namespace)
        except CLIENT_ERRORS as err:
            print(f"egressgw status: reading the API server: {describe_failure(err)}", file=stderr)
            return 1, None
        gateway_statuses: list[dict[str, Any]] | None = None
        try:
            gateway_statuses = await sources.list_gateway_statuses(api)
        except CLIENT_ERRORS as err:
            # E.g. a user who may read configurations but not every namespace's GatewayStatus.
            reason = describe_failure(err)
            print(f"egressgw status: nodes not counted: GatewayStatuses: {reason}", file=stderr)
    configurations: list[StaticGatewayConfiguration] = []
    for raw in objects:
        try:
            configurations.append(StaticGatewayConfiguration.from_object(raw))
        except ObjectFormatError as err:
            name = (raw.get("metadata") or {}).get("name", "?")
            print(f"egressgw status: skipping {name}: {err}", file=stderr)
    keys = [(c.metadata.namespace, c.metadata.name) for c in configurations]
    code = 0
    try:
        connection = temporal_connection(
            argparse.Namespace(
                **{
                    **vars(args),
                    "temporal_address": target.address,
                    "temporal_namespace": target.namespace,
                }
            ),
            os.environ,
        )
    except ValueError as err:
        print(f"egressgw status: {err}", file=stderr)
        return 2, None
    try:
        client = await asyncio.wait_for(connect_temporal_once(connection), CONNECT_TIMEOUT)
    except (RPCError, RuntimeError, OSError, TimeoutError) as err:
        reason = f"Temporal at {target.address} not reachable: {err or 'timed out'}"
        print(f"egressgw status: {reason}", file=stderr)
        facts = sources.unreadable_facts(keys, reason)
        code = 1
    else:
        facts = await sources.all_workflow_facts(client, keys, query_timeout)
    configured = None if gateway_statuses is None else report.configured_nodes(gateway_statuses)
    rows = [
        report.status_row(c, f, configured, target.ui_url, target.namespace)
        for c, f in zip(configurations, facts, strict=True)
    ]
    return code, rows


def run_status(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from egressgw.controller_flags import parse_duration
    from egressgw.status.report import render_json, render_table

    try:
        query_timeout = parse_duration(args.query_timeout)
    except ValueError as err:
        print(f"egressgw status: --query-timeout: {err}", file=stderr)
        return 2
    code, rows = asyncio.run(_facts_and_rows(args, query_timeout, stderr))
    if rows is not None:
        # Printed even when Temporal could not be read: the objects' side is still worth seeing.
        stdout.write((render_json if args.output == "json" else render_table)(rows))
    return code
