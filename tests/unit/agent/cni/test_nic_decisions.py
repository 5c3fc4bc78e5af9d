"""The CNI manager's decisions (agent/cni/nic_service.py): when a configuration can serve a pod,
and the PodEndpoint it writes."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from agent.cni import manager_api as api
from agent.cni.cni_protocol import PodRef
from agent.cni.manager_api import GatewayProfile, ManagerError, NicAddRequest
from agent.cni.nic_service import check_gateway_name, gateway_profile, pod_endpoint_body

KEY = base64.b64encode(bytes(range(32))).decode()
POD = PodRef("ns", "web")


def sgc(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": "egress", "namespace": "ns"},
        "spec": {
            "defaultRoute": "staticEgressGateway",
            "excludeCidrs": ["10.1.2.3/16", "fd00::/8"],
        },
        "status": {"gatewayServerProfile": {"ip": "10.224.0.4", "port": 6000, "publicKey": KEY}},
    }
    for key, value in changes.items():
        obj[key] = {**obj[key], **value}
    return obj


def kind_of(raw: dict[str, Any]) -> str:
    with pytest.raises(ManagerError) as caught:
        gateway_profile(raw, POD)
    return caught.value.kind


def test_a_ready_configuration_gives_the_profile() -> None:
    assert gateway_profile(sgc(), POD) == GatewayProfile(
        endpoint_ip="10.224.0.4",
        listen_port=6000,
        public_key=KEY,
        exclude_cidrs=("10.1.0.0/16",),  # normalized; IPv6 left out (the pod side is IPv4)
        default_route="staticEgressGateway",
    )


def test_configurations_that_cannot_serve_pods() -> None:
    assert kind_of(sgc(metadata={"deletionTimestamp": "2026-01-01T00:00:00Z"})) == api.DELETING
    assert kind_of(sgc(status={"gatewayServerProfile": {}})) == api.NOT_READY
    assert kind_of(sgc(status={"gatewayServerProfile": {"ip": "10.0.0.1"}})) == api.NOT_READY
    assert kind_of(sgc(spec={"excludeCidrs": ["nope"]})) == api.INVALID
    assert kind_of(sgc(spec={"defaultRoute": "viaMars"})) == api.INVALID
    bad_key = {"gatewayServerProfile": {"ip": "10.0.0.1", "port": 1, "publicKey": "x"}}
    assert kind_of(sgc(status=bad_key)) == api.INVALID


def test_gateway_names() -> None:
    assert check_gateway_name("egress-1.a", POD) == "egress-1.a"
    for name, message in [
        ("other/egress", "names another namespace"),
        ("Egress", "is not the name"),
    ]:
        with pytest.raises(ManagerError, match=message):
            check_gateway_name(name, POD)


def test_the_pod_endpoint_is_owned_by_the_pod() -> None:
    body = pod_endpoint_body(NicAddRequest(POD, "10.244.1.5", KEY, "egress"), "uid-1", "42")
    assert body == {
        "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
        "kind": "PodEndpoint",
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "resourceVersion": "42",
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": "web",
                    "uid": "uid-1",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "staticGatewayConfiguration": "egress",
            "podIpAddress": "10.244.1.5/32",
            "podPublicKey": KEY,
        },
    }
