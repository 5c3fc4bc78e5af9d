"""The chart's rendered objects, CRDs included, are accepted by the real API server of the
pinned Kubernetes version (server-side dry run with strict field validation: an unknown or
misplaced field, a wrong type or a forbidden combination is refused), for the default values
and for representative ones. Nothing is created."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.cluster import Cluster
from tests.fixtures.helm_chart import render

pytestmark = pytest.mark.kubectl

REPRESENTATIVE: dict[str, Any] = {
    "common": {"imageRepository": "myregistry.azurecr.io", "imageTag": "0.1.0"},
    "temporal": {
        "address": "my-ns.a1b2c.tmprl.cloud:7233",
        "namespace": "my-ns.a1b2c",
        "tls": {
            "caSecret": {"name": "temporal-ca"},
            "clientSecret": {"name": "egressgw-temporal-client"},
        },
        "apiKeySecret": {"name": "temporal-api-key"},
    },
    "config": {
        "azureCloudConfig": {
            "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "subscriptionId": "9e2f1a3c-4b5d-4e6f-8a7b-1c2d3e4f5a6b",
            "useManagedIdentityExtension": True,
            "userAssignedIdentityID": "00000000-0000-0000-0000-00000000c11e",
            "resourceGroup": "MC_rg_cluster_westeurope",
            "location": "westeurope",
            "vnetName": "aks-vnet",
            "subnetName": "gateway-subnet",
        },
        "azureCaBundle": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    },
    "gatewayControllerManager": {
        "serviceAccount": {"annotations": {"azure.workload.identity/client-id": "x"}},
        "podLabels": {"azure.workload.identity/use": "true"},
        "podAnnotations": {"prometheus.io/scrape": "false"},
        "extraEnv": [{"name": "EXTRA", "value": "1"}],
    },
    "gatewayDaemonManager": {"wireguardBackend": "wireguard-go", "priorityClassName": ""},
    "gatewayCNIManager": {"clusterCidrs": ["10.244.0.0/16"], "cniUninstall": True},
}


def dry_run(cluster: Cluster, objects: list[dict[str, Any]], tmp_path: Path) -> str:
    manifest = tmp_path / f"rendered-{uuid.uuid4().hex[:6]}.yaml"
    manifest.write_text(yaml.safe_dump_all(objects))
    done = subprocess.run(
        [
            str(cluster.kubectl),
            "--kubeconfig",
            str(cluster.admin_kubeconfig),
            "apply",
            "--server-side",
            "--dry-run=server",
            "--validate=strict",
            "--field-manager=helm-chart-test",
            "-f",
            str(manifest),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("values", [None, REPRESENTATIVE], ids=["defaults", "representative"])
def test_the_api_server_accepts_every_rendered_object(
    helm_path: Path,
    kube_cluster: Cluster,
    kube_namespace: str,
    tmp_path: Path,
    values: dict[str, Any] | None,
) -> None:
    # A release name of the test's own: the cluster-wide roles it names must not meet others'.
    release = f"r{uuid.uuid4().hex[:8]}"
    rendered = render(
        helm_path, tmp_path, values, "--include-crds", namespace=kube_namespace, release=release
    )

    out = dry_run(kube_cluster, rendered.objects, tmp_path)

    for obj in rendered.objects:
        assert f"{obj['metadata']['name']} serverside-applied (server dry run)" in out, (
            obj["kind"],
            out,
        )
    assert len(rendered.of_kind("CustomResourceDefinition")) == 3


def test_the_dry_run_refuses_what_a_cluster_would(
    helm_path: Path, kube_cluster: Cluster, kube_namespace: str, tmp_path: Path
) -> None:
    """Negative control: the same path refuses a privileged agent that forbids privilege
    escalation, and a field that does not exist."""
    release = f"r{uuid.uuid4().hex[:8]}"
    rendered = render(helm_path, tmp_path, None, namespace=kube_namespace, release=release)
    agent = rendered.get("DaemonSet", f"{release}-egressgw-agent")
    agent["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(
        privileged=True, allowPrivilegeEscalation=False
    )
    unknown = rendered.get("Deployment", f"{release}-egressgw-controller")
    unknown["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}

    for broken, says in ((agent, "allowPrivilegeEscalation"), (unknown, "readinesProbe")):
        with pytest.raises(AssertionError) as refused:
            dry_run(kube_cluster, [broken], tmp_path)
        assert broken["metadata"]["name"] in str(refused.value)
        assert says in str(refused.value)
