"""`egressgw plan -f sgc.yaml`: its flags and its run.

First the manifest is checked as the CRD checks it (egressgw/plan/documents.py); an invalid one
stops there, before anything is read. Then each configuration's object is read from the API
server (is it new? what does its current spec name?) and Azure is read and planned
(egressgw/plan/azure_plan.py). Nothing is written anywhere. Exit code 0: planned; 1: a
configuration is invalid or would be refused, or the API server or Azure could not be read;
2: a flag, file or cloud config is unusable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from egressgw.controller_flags import CLOUD_CONFIG_VARIABLE, DEFAULT_CLOUD_CONFIG

if TYPE_CHECKING:  # the CLI builds its parser from this module: keep `--help` light
    from egressgw.plan.changes import ConfigurationPlan
    from egressgw.plan.documents import SgcDocument


def add_plan_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plan = commands.add_parser(
        "plan",
        help="the Azure and node changes applying StaticGatewayConfigurations would make",
        description="Check the StaticGatewayConfigurations in the files as the CRD does, then "
        "show what the controller would create, update and delete in Azure and on the gateway "
        "nodes if they were applied, computed by the workflows' own planners over Azure as it "
        "is now. Reads only: nothing is written to Azure or the cluster. Exit code 1 when a "
        "configuration is invalid or would be refused.",
    )
    plan.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        type=Path,
        metavar="FILE",
        help="a manifest of one or more StaticGatewayConfigurations ('-': stdin; repeatable)",
    )
    plan.add_argument(
        "-n",
        "--namespace",
        default=None,
        metavar="NS",
        help="namespace of documents that name none (default: the kubeconfig context's)",
    )
    plan.add_argument("-o", "--output", choices=("text", "json"), default="text")
    plan.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        metavar="FILE",
        help="kubeconfig (default: $KUBECONFIG, then in-cluster configuration, then "
        "~/.kube/config)",
    )
    plan.add_argument(
        "--cloud-config",
        type=Path,
        default=Path(os.environ.get(CLOUD_CONFIG_VARIABLE) or DEFAULT_CLOUD_CONFIG),
        metavar="FILE",
        help="the controller's Azure cloud config, for the scope and the credentials "
        f"(default: ${CLOUD_CONFIG_VARIABLE} or {DEFAULT_CLOUD_CONFIG})",
    )
    plan.add_argument(
        "--azure-ca-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="CA bundle to trust for the ARM endpoint (the dev stack's ca.pem)",
    )


def _read_manifests(paths: Sequence[Path]) -> list[tuple[str, str]]:
    texts = []
    for path in paths:
        if str(path) == "-":
            texts.append(("<stdin>", sys.stdin.read()))
        else:
            texts.append((str(path), path.read_text()))
    return texts


def context_namespace(kubeconfig: Path | None) -> str:
    """The current context's namespace, as kubectl takes it for objects that name none."""
    from kubernetes_asyncio.config import ConfigException, list_kube_config_contexts

    from egressgw.service_clients import KUBECONFIG_VARIABLE

    listed = str(kubeconfig) if kubeconfig else os.environ.get(KUBECONFIG_VARIABLE) or None
    try:
        _, active = list_kube_config_contexts(config_file=listed)
    except (ConfigException, OSError, ValueError, TypeError):
        return "default"
    namespace = ((active or {}).get("context") or {}).get("namespace")
    return namespace if isinstance(namespace, str) and namespace else "default"


async def _plan(
    args: argparse.Namespace, docs: Sequence[SgcDocument], stderr: TextIO
) -> tuple[int, list[ConfigurationPlan]]:
    from kubernetes_asyncio.client import CustomObjectsApi
    from kubernetes_asyncio.config import ConfigException

    from contracts import kube_names
    from contracts.activity_io import SgcRef
    from contracts.gateway_config import StaticGatewayConfigurationSpec
    from contracts.raw_fields import ObjectFormatError
    from egressgw.azure_credential import azure_clients_from_config
    from egressgw.cloud_config import CloudConfigError, load_cloud_config
    from egressgw.controller import azure_scope
    from egressgw.plan.azure_plan import AzurePlanner, AzureReadError, PlanTarget
    from egressgw.plan.changes import NEW_UID, ConfigurationPlan
    from egressgw.service_clients import kube_api_client
    from kubeclient.errors import CLIENT_ERRORS, describe_failure, is_not_found

    try:
        loaded = load_cloud_config(args.cloud_config, environ=dict(os.environ))
    except CloudConfigError as err:
        print(f"egressgw plan: {err}", file=stderr)
        return 2, []
    default_namespace = args.namespace or context_namespace(args.kubeconfig)
    targets: list[tuple[SgcDocument, PlanTarget, str]] = []
    try:
        api = await kube_api_client(args.kubeconfig)
    except (ConfigException, OSError, ValueError) as err:
        print(f"egressgw plan: no usable kubeconfig: {err}", file=stderr)
        return 2, []
    async with api:
        custom = CustomObjectsApi(api)
        for doc in docs:
            namespace = doc.namespace or default_namespace
            if args.namespace and doc.namespace and doc.namespace != args.namespace:
                print(
                    f"egressgw plan: {doc.source}: the namespace from the object "
                    f'"{doc.namespace}" does not match --namespace "{args.namespace}"',
                    file=stderr,
                )
                return 1, []
            try:
                found = await custom.get_namespaced_custom_object(
                    kube_names.API_GROUP,
                    kube_names.API_VERSION,
                    namespace,
                    kube_names.SGC_PLURAL,
                    doc.name,
                )
            except CLIENT_ERRORS as err:
                if not is_not_found(err):
                    print(
                        f"egressgw plan: reading {namespace}/{doc.name}: {describe_failure(err)}",
                        file=stderr,
                    )
                    return 1, []
                found = None
            uid, current, note = NEW_UID, None, ""
            if found is not None:
                meta = found.get("metadata") or {}
                uid = str(meta.get("uid") or NEW_UID)
                try:
                    current = StaticGatewayConfigurationSpec.from_object(found.get("spec") or {})
                except ObjectFormatError:
                    current = None
                if meta.get("deletionTimestamp"):
                    note = "the object is being deleted: the controller tears it down first"
            assert doc.spec is not None
            targets.append(
                (doc, PlanTarget(SgcRef(namespace, doc.name, uid), doc.spec, current), note)
            )
    verify: bool | str = str(args.azure_ca_file) if args.azure_ca_file else True
    plans: list[ConfigurationPlan] = []
    code = 0
    try:
        async with azure_clients_from_config(loaded.config, connection_verify=verify) as azure:
            planner = AzurePlanner(azure.network, azure.compute, azure_scope(loaded.config))
            for doc, target, note in targets:
                planned = await planner.plan(target)
                code = 1 if planned.refusal else code
                plans.append(
                    ConfigurationPlan(
                        source=doc.source,
                        namespace=target.sgc.namespace,
                        name=target.sgc.name,
                        uid="" if target.sgc.uid == NEW_UID else target.sgc.uid,
                        refusal=planned.refusal,
                        changes=planned.changes,
                        notes=(note,) if note else (),
                    )
                )
    except AzureReadError as err:
        print(f"egressgw plan: reading Azure: {err}", file=stderr)
        return 1, []
    return code, plans


def run_plan(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from egressgw.plan.changes import ConfigurationPlan
    from egressgw.plan.documents import ManifestError, parse_manifest
    from egressgw.plan.render import render_invalid, render_json, render_text

    docs: list[SgcDocument] = []
    try:
        for source, text in _read_manifests(args.filename):
            found, skipped = parse_manifest(text, source)
            docs += found
            for item in skipped:
                print(f"egressgw plan: skipping {item.source}: {item.reason}", file=stderr)
    except (OSError, ManifestError) as err:
        print(f"egressgw plan: {err}", file=stderr)
        return 2
    if not docs:
        print("egressgw plan: no StaticGatewayConfiguration in the files", file=stderr)
        return 2
    invalid = [
        ConfigurationPlan(d.source, d.namespace, d.name, "", errors=d.errors)
        for d in docs
        if not d.valid
    ]
    if invalid:
        # As the API server would: nothing is planned (or read) for a manifest it would refuse.
        if args.output == "json":
            stdout.write(render_json(invalid))
        else:
            for plan in invalid:
                stderr.write(render_invalid(plan))
        return 1
    code, plans = asyncio.run(_plan(args, docs, stderr))
    if plans:
        stdout.write((render_json if args.output == "json" else render_text)(plans))
    return code
