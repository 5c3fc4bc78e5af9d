"""`egressgw plan` on an invalid manifest prints what the API server says about it, field for field
and word for word (its schema checks and the CRD's CEL rules, tried here on the session's real
API server with kubectl's strict field validation), exits 1, and reads nothing: no kubeconfig or
cloud config is even there."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from contracts import kube_names
from tests.fixtures.cluster import Cluster

PROFILE = {"vmssResourceGroup": "egressgw-dev", "vmssName": "aks-gwpool-12345678-vmss"}
PREFIX_ID = (
    "/subscriptions/9e2f1a3c-4b5d-4e6f-8a7b-1c2d3e4f5a6b/resourceGroups/egressgw-dev"
    "/providers/Microsoft.Network/publicIPPrefixes/byo"
)

INVALID: list[Any] = [
    pytest.param({}, id="no-pool"),
    pytest.param({"gatewayNodepoolName": "gwpool", "gatewayVmssProfile": PROFILE}, id="two-pools"),
    pytest.param({"gatewayVmssProfile": {"vmssName": "v"}}, id="profile-without-group"),
    pytest.param({"gatewayVmssProfile": {"publicIpPrefixSize": 30}}, id="profile-only-size"),
    pytest.param(
        {"gatewayVmssProfile": {**PROFILE, "publicIpPrefixSize": 32}}, id="prefix-size-32"
    ),
    pytest.param(
        {
            "gatewayNodepoolName": "gwpool",
            "gatewayVmssProfile": {**PROFILE, "publicIpPrefixSize": -1},
        },
        id="bound-and-rule-together",
    ),
    pytest.param(
        {"gatewayVmssProfile": {**PROFILE, "publicIpPrefixSize": "31"}}, id="size-as-string"
    ),
    pytest.param(
        {"gatewayVmssProfile": {**PROFILE, "publicIpPrefixSize": 30.5}}, id="size-with-fraction"
    ),
    pytest.param({"gatewayNodepoolName": "x" * 64}, id="pool-name-too-long"),
    pytest.param({"gatewayNodepoolName": "gwpool", "defaultRoute": "internet"}, id="bad-route"),
    pytest.param({"gatewayNodepoolName": "gwpool", "provisionPublicIps": "yes"}, id="bool-string"),
    pytest.param(
        {"gatewayNodepoolName": "gwvmpool", "provisionPublicIps": False, "publicIpPrefixId": "x"},
        id="prefix-forbidden-and-malformed",
    ),
    pytest.param(
        {
            "gatewayNodepoolName": "gwvmpool",
            "provisionPublicIps": False,
            "publicIpPrefixId": PREFIX_ID,
        },
        id="prefix-in-private-mode",
    ),
    pytest.param(
        {"gatewayNodepoolName": "gwpool", "excludeCidrs": ["10.0.0.0/8", "10.0.0.1", "fd00::/129"]},
        id="bad-cidrs",
    ),
    pytest.param({"gatewayNodepoolName": "gwpool", "excludeCidrs": ["10/8", 7]}, id="cidr-type"),
    pytest.param(
        {"gatewayNodepoolName": "gwpool", "excludeCidrs": ["10.0.0.0/8"] * 257}, id="too-many"
    ),
]


def manifest(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": kube_names.GROUP_VERSION,
        "kind": kube_names.SGC_KIND,
        "metadata": {"name": name},
        "spec": spec,
    }


@pytest.fixture
def custom(kube_cluster: Cluster) -> Any:
    api = kubernetes.config.new_client_from_config(config_file=str(kube_cluster.admin_kubeconfig))  # type: ignore[no-untyped-call]
    try:
        yield client.CustomObjectsApi(api)
    finally:
        api.close()


async def api_server_errors(custom: Any, namespace: str, body: dict[str, Any]) -> Any:
    """What the API server answers a create (as kubectl apply sends it: strict field
    validation; dry run, so nothing is stored)."""
    with pytest.raises(ApiException) as refused:
        await asyncio.to_thread(
            custom.create_namespaced_custom_object,
            kube_names.API_GROUP,
            kube_names.API_VERSION,
            namespace,
            kube_names.SGC_PLURAL,
            body,
            field_validation="Strict",
            dry_run="All",
        )
    return refused.value


def plan(tmp_path: Path, document: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "sgc.yaml"
    path.write_text(yaml.safe_dump(document))
    # Nothing to read with: a plan of an invalid manifest must not need it.
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "EGRESSGW_CLOUD_CONFIG")}
    env["HOME"] = str(tmp_path)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "egressgw",
            "plan",
            "-f",
            str(path),
            "-o",
            "json",
            "--cloud-config",
            str(tmp_path / "no-such-azure.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("spec", INVALID)
async def test_plan_refuses_an_invalid_spec_with_the_api_servers_errors(
    custom: Any, kube_namespace: str, tmp_path: Path, spec: dict[str, Any]
) -> None:
    body = manifest("invalid", spec)
    refused = await api_server_errors(custom, kube_namespace, body)
    status = json.loads(refused.body)
    causes = {
        (cause["field"], cause["message"])
        for cause in status["details"]["causes"]
        if cause.get("field") not in (None, "<nil>")  # "some rules were not checked"
    }

    planned = plan(tmp_path, body)

    assert refused.status == 422, status
    assert planned.returncode == 1, planned.stderr
    item = json.loads(planned.stdout)["items"][0]
    assert item["valid"] is False
    assert {(e["field"], e["message"]) for e in item["errors"]} == causes
    assert item["changes"] == []


async def test_plan_refuses_an_unknown_field_as_strict_field_validation_does(
    custom: Any, kube_namespace: str, tmp_path: Path
) -> None:
    body = manifest("unknown", {"gatewayNodepoolName": "gwpool", "gatewayPool": "gwpool"})
    refused = await api_server_errors(custom, kube_namespace, body)

    planned = plan(tmp_path, body)

    assert refused.status == 400
    assert 'unknown field "spec.gatewayPool"' in json.loads(refused.body)["message"]
    assert planned.returncode == 1
    errors = json.loads(planned.stdout)["items"][0]["errors"]
    assert errors == [{"field": "spec.gatewayPool", "message": 'unknown field "spec.gatewayPool"'}]


def test_plan_prints_field_named_errors_and_reads_nothing(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(
        yaml.safe_dump_all(
            [
                manifest("fine", {"gatewayNodepoolName": "gwpool"}),
                manifest("broken", {"gatewayVmssProfile": {"vmssName": "v"}}),
            ]
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["HOME"] = str(tmp_path)

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "egressgw",
            "plan",
            "-f",
            str(path),
            "--cloud-config",
            str(tmp_path / "none.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f'StaticGatewayConfiguration "broken" is invalid ({path} document 2):',
        "  spec.gatewayVmssProfile.vmssResourceGroup: Required value: "
        "spec.gatewayVmssProfile.vmssResourceGroup must be set when spec.gatewayVmssProfile "
        "is given",
    ]
