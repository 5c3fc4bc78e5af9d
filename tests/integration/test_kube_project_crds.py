"""The project's own CRDs (deploy/crds) served by the emulator fixture."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client import ApiClient, ApiException

G, V, P = "egressgateway.kubernetes.azure.com", "v1alpha1", "staticgatewayconfigurations"


def test_fixture_serves_the_project_crds(kube_api_client: ApiClient) -> None:
    resources = client.CustomObjectsApi(kube_api_client).get_api_resources(G, V)
    kinds = {r.kind for r in resources.resources}
    assert {"StaticGatewayConfiguration", "PodEndpoint", "GatewayStatus"} <= kinds


def test_static_gateway_configuration_defaults_and_rules(kube_api_client: ApiClient) -> None:
    custom = client.CustomObjectsApi(kube_api_client)
    body = {
        "apiVersion": f"{G}/{V}",
        "kind": "StaticGatewayConfiguration",
        "metadata": {"name": "sgc"},
        "spec": {"gatewayNodepoolName": "gwpool"},
    }
    created = custom.create_namespaced_custom_object(G, V, "default", P, body)
    assert created["spec"]["provisionPublicIps"] is True
    assert created["spec"]["defaultRoute"] == "staticEgressGateway"
    both = {**body, "metadata": {"name": "both"}}
    both["spec"] = {"gatewayNodepoolName": "gwpool", "gatewayVmssProfile": {"vmssName": "x"}}
    with pytest.raises(ApiException) as info:
        custom.create_namespaced_custom_object(G, V, "default", P, both)
    status = json.loads(info.value.body)
    assert info.value.status == 422 and status["reason"] == "Invalid"
    assert status["message"].startswith(
        'StaticGatewayConfiguration.egressgateway.kubernetes.azure.com "both" is invalid: '
    )
    assert {c["field"] for c in status["details"]["causes"]} >= {"spec"}
