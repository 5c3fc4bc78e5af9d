"""Round trips of real-looking objects through the contract models, and status conditions."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.converter import DataConverter

from contracts import kube_names
from contracts.conditions import (
    Condition,
    ConditionStatus,
    find_condition,
    format_kube_time,
    set_condition,
)
from contracts.gateway_config import (
    DefaultRoute,
    GatewayVmssProfile,
    StaticGatewayConfiguration,
    StaticGatewayConfigurationSpec,
)
from contracts.gateway_status import GatewayStatus
from contracts.object_meta import ObjectReference
from contracts.pod_endpoint import PodEndpoint
from contracts.raw_fields import ObjectFormatError

SGC_UID = "0f5d2c1e-6a3b-4c8d-9e7f-112233445566"

# As the API server returns a provisioned VMSS-profile configuration.
PUBLIC_SGC: dict[str, Any] = {
    "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
    "kind": "StaticGatewayConfiguration",
    "metadata": {
        "name": "payments-egress",
        "namespace": "payments",
        "uid": SGC_UID,
        "generation": 3,
        "resourceVersion": "48213",
        "creationTimestamp": "2026-11-20T09:14:02Z",
        "finalizers": ["static-gateway-configuration-controller.microsoft.com"],
        "labels": {"team": "payments"},
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
    },
    "spec": {
        "gatewayVmssProfile": {
            "vmssResourceGroup": "MC_prod_aks_westeurope",
            "vmssName": "aks-gwpool-12345678-vmss",
            "publicIpPrefixSize": 31,
        },
        "defaultRoute": "staticEgressGateway",
        "provisionPublicIps": True,
        "publicIpPrefixId": (
            "/subscriptions/9e2f1a3c-4b5d-4e6f-8a7b-1c2d3e4f5a6b/resourceGroups/net"
            "/providers/Microsoft.Network/publicIPPrefixes/payments-prefix"
        ),
        "excludeCidrs": ["10.0.0.0/8", "169.254.169.254/32", "fd00::/8"],
    },
    "status": {
        "egressIpPrefix": "20.61.14.32/31",
        "gatewayServerProfile": {
            "ip": "10.225.0.4",
            "port": 6000,
            "publicKey": "mT3/1Fp7N0cQk4Qb5wq0q3VbJ0n2rZp0bq2xKk6cH2Y=",
            "privateKeySecretRef": {
                "apiVersion": "v1",
                "kind": "Secret",
                "name": f"sgw-{SGC_UID}",
                "namespace": "egressgw-system",
            },
        },
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Provisioned",
                "message": "egress through 20.61.14.32/31 on 2 of 2 gateway nodes",
                "lastTransitionTime": "2026-11-20T09:15:40Z",
                "observedGeneration": 3,
            },
            {
                "type": "Progressing",
                "status": "False",
                "reason": "Provisioned",
                "message": "",
                "lastTransitionTime": "2026-11-20T09:15:40Z",
                "observedGeneration": 3,
            },
        ],
        "observedGeneration": 3,
    },
}

# A private-IP configuration on a VM pool, being deleted, before any status was written.
PRIVATE_SGC_DELETING: dict[str, Any] = {
    "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
    "kind": "StaticGatewayConfiguration",
    "metadata": {
        "name": "internal",
        "namespace": "ledger",
        "uid": "5a0c7f4e-2222-4bbb-8ccc-0123456789ab",
        "generation": 1,
        "resourceVersion": "77",
        "creationTimestamp": "2026-11-21T12:00:00Z",
        "deletionTimestamp": "2026-11-21T12:30:00Z",
        "finalizers": ["static-gateway-configuration-controller.microsoft.com"],
    },
    "spec": {
        "gatewayNodepoolName": "gwvmpool",
        "defaultRoute": "azureNetworking",
        "provisionPublicIps": False,
        "excludeCidrs": ["192.168.0.0/16"],
    },
}

POD_ENDPOINT: dict[str, Any] = {
    "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
    "kind": "PodEndpoint",
    "metadata": {
        "name": "checkout-7d9f8b6c5-x2x7q",
        "namespace": "payments",
        "uid": "c3f1b1de-0000-4000-8000-00000000abcd",
        "generation": 1,
        "resourceVersion": "50100",
        "creationTimestamp": "2026-11-20T09:20:00Z",
        "ownerReferences": [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": "checkout-7d9f8b6c5-x2x7q",
                "uid": "9b1e0c55-1111-4222-8333-444455556666",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    },
    "spec": {
        "staticGatewayConfiguration": "payments-egress",
        "podIpAddress": "10.244.1.17/32",
        "podPublicKey": "2zv3K8Wl7mY6o0r5p8Q9sT1uV2wX3yZ4a5b6c7d8e9E=",
    },
}

GATEWAY_STATUS: dict[str, Any] = {
    "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
    "kind": "GatewayStatus",
    "metadata": {
        "name": "aks-gwpool-12345678-vmss000000",
        "namespace": "egressgw-system",
        "uid": "1d2e3f40-5060-4708-8090-a0b0c0d0e0f0",
        "generation": 4,
        "resourceVersion": "50230",
        "ownerReferences": [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "name": "aks-gwpool-12345678-vmss000000",
                "uid": "aa00bb11-cc22-4d33-8e44-ff5566778899",
            }
        ],
    },
    "spec": {
        "readyGatewayConfigurations": [
            {"staticGatewayConfiguration": "payments/payments-egress", "interfaceName": "wg-6000"}
        ],
        "readyPeerConfigurations": [
            {
                "podEndpoint": "payments/checkout-7d9f8b6c5-x2x7q",
                "interfaceName": "wg-6000",
                "publicKey": "2zv3K8Wl7mY6o0r5p8Q9sT1uV2wX3yZ4a5b6c7d8e9E=",
            }
        ],
    },
}


@pytest.mark.parametrize("raw", [PUBLIC_SGC, PRIVATE_SGC_DELETING], ids=["public", "private"])
def test_sgc_round_trips(raw: dict[str, Any]) -> None:
    original = copy.deepcopy(raw)
    assert StaticGatewayConfiguration.from_object(raw).to_object() == original
    assert raw == original  # reading does not mutate the caller's object


def test_sgc_fields_read_as_a_user_wrote_them() -> None:
    sgc = StaticGatewayConfiguration.from_object(PUBLIC_SGC)
    assert sgc.metadata.key == "payments/payments-egress"
    assert not sgc.metadata.is_deleting
    assert sgc.spec.vmss_profile == GatewayVmssProfile(
        "MC_prod_aks_westeurope", "aks-gwpool-12345678-vmss", 31
    )
    assert sgc.spec.default_route == DefaultRoute.STATIC_EGRESS_GATEWAY
    assert sgc.status.gateway_server_profile is not None
    assert sgc.status.gateway_server_profile.port == 6000
    assert sgc.status.gateway_server_profile.private_key_secret_ref == ObjectReference(
        "v1", "Secret", f"sgw-{SGC_UID}", "egressgw-system"
    )
    ready = find_condition(sgc.status.conditions, kube_names.CONDITION_READY)
    assert ready is not None and ready.status is ConditionStatus.TRUE

    private = StaticGatewayConfiguration.from_object(PRIVATE_SGC_DELETING)
    assert private.metadata.is_deleting
    assert private.spec.vmss_profile is None
    assert private.spec.default_route == DefaultRoute.AZURE_NETWORKING
    assert not private.spec.provision_public_ips


def test_sgc_spec_defaults_match_the_crd_defaults() -> None:
    spec = StaticGatewayConfigurationSpec.from_object({"gatewayNodepoolName": "gwpool"})
    assert spec.provision_public_ips is True
    assert spec.default_route == "staticEgressGateway"
    assert spec.to_object() == {
        "gatewayNodepoolName": "gwpool",
        "defaultRoute": "staticEgressGateway",
        "provisionPublicIps": True,
    }


def test_an_empty_vmss_profile_counts_as_absent() -> None:
    spec = StaticGatewayConfigurationSpec.from_object(
        {"gatewayNodepoolName": "gwpool", "gatewayVmssProfile": {}}
    )
    assert spec.gateway_vmss_profile == GatewayVmssProfile()
    assert spec.vmss_profile is None
    # ... but is written back as the user had it.
    assert spec.to_object()["gatewayVmssProfile"] == {}


def test_unknown_default_route_is_kept_for_validation_to_report() -> None:
    spec = StaticGatewayConfigurationSpec.from_object(
        {"gatewayNodepoolName": "gwpool", "defaultRoute": "internet"}
    )
    assert spec.default_route == "internet"


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"spec": {"provisionPublicIps": "yes"}}, "spec.provisionPublicIps"),
        ({"spec": {"gatewayVmssProfile": {"publicIpPrefixSize": "31"}}}, "publicIpPrefixSize"),
        ({"spec": {"gatewayVmssProfile": {"publicIpPrefixSize": True}}}, "publicIpPrefixSize"),
        ({"spec": {"excludeCidrs": "10.0.0.0/8"}}, "spec.excludeCidrs"),
        ({"spec": {"excludeCidrs": ["10.0.0.0/8", 7]}}, "spec.excludeCidrs[1]"),
        ({"spec": [], "metadata": {"name": "x"}}, "spec"),
        ({"metadata": {"name": "x", "labels": {"a": 1}}}, "metadata.labels[a]"),
        ({"metadata": {"name": "x", "generation": "2"}}, "metadata.generation"),
        (
            {"status": {"conditions": [{"type": "Ready", "status": "Yes"}]}},
            "status.conditions[0].status",
        ),
        ({"status": {"gatewayServerProfile": {"port": 6000.5}}}, "gatewayServerProfile.port"),
    ],
)
def test_malformed_objects_are_refused_naming_the_field(raw: dict[str, Any], path: str) -> None:
    with pytest.raises(ObjectFormatError) as caught:
        StaticGatewayConfiguration.from_object(raw)
    assert path in str(caught.value)


def test_pod_endpoint_round_trips() -> None:
    endpoint = PodEndpoint.from_object(POD_ENDPOINT)
    assert endpoint.to_object() == POD_ENDPOINT
    (owner,) = endpoint.metadata.owner_references
    assert owner.kind == "Pod" and owner.controller is True


def test_gateway_status_round_trips() -> None:
    status = GatewayStatus.from_object(GATEWAY_STATUS)
    assert status.to_object() == GATEWAY_STATUS
    assert status.spec.ready_peer_configurations[0].interface_name == "wg-6000"
    empty = GatewayStatus.from_object({"metadata": {"name": "node-a", "namespace": "sys"}})
    assert empty.to_object()["spec"] == {}


# --- conditions ----------------------------------------------------------------------------------

T0 = datetime(2026, 11, 26, 7, 0, 0, tzinfo=UTC)


def test_set_condition_adds_then_keeps_transition_time_while_status_is_unchanged() -> None:
    first = set_condition(
        (),
        kube_names.CONDITION_READY,
        ConditionStatus.FALSE,
        kube_names.REASON_PROVISIONING,
        "creating the load balancer rule",
        observed_generation=1,
        now=T0,
    )
    assert first == (
        Condition(
            "Ready",
            ConditionStatus.FALSE,
            "Provisioning",
            "creating the load balancer rule",
            "2026-11-26T07:00:00Z",
            1,
        ),
    )
    later = set_condition(
        first,
        kube_names.CONDITION_READY,
        ConditionStatus.FALSE,
        kube_names.REASON_GATEWAY_NODES_NOT_READY,
        "0 of 2 gateway nodes configured",
        observed_generation=2,
        now=T0 + timedelta(minutes=5),
    )
    (ready,) = later
    assert ready.last_transition_time == "2026-11-26T07:00:00Z"
    assert (ready.reason, ready.observed_generation) == ("GatewayNodesNotReady", 2)


def test_set_condition_moves_transition_time_on_status_change_and_keeps_order() -> None:
    conditions = set_condition(
        (),
        kube_names.CONDITION_READY,
        ConditionStatus.FALSE,
        kube_names.REASON_PROVISIONING,
        "",
        observed_generation=1,
        now=T0,
    )
    conditions = set_condition(
        conditions,
        kube_names.CONDITION_PROGRESSING,
        ConditionStatus.TRUE,
        kube_names.REASON_PROVISIONING,
        "",
        observed_generation=1,
        now=T0,
    )
    conditions = set_condition(
        conditions,
        kube_names.CONDITION_READY,
        ConditionStatus.TRUE,
        kube_names.REASON_PROVISIONED,
        "egress through 20.61.14.32/31",
        observed_generation=1,
        now=T0 + timedelta(seconds=42),
    )
    assert [c.type for c in conditions] == ["Ready", "Progressing"]
    ready = find_condition(conditions, "Ready")
    assert ready is not None
    assert ready.status is ConditionStatus.TRUE
    assert ready.last_transition_time == format_kube_time(T0 + timedelta(seconds=42))
    assert find_condition(conditions, "Degraded") is None


def test_kube_time_is_utc_whole_seconds_and_refuses_naive_datetimes() -> None:
    local = datetime(2026, 11, 26, 8, 0, 0, 900000, tzinfo=ZoneInfo("Europe/Amsterdam"))
    assert format_kube_time(local) == "2026-11-26T07:00:00Z"
    with pytest.raises(ValueError, match="naive"):
        format_kube_time(datetime(2026, 11, 26))


@pytest.mark.parametrize("raw", [PUBLIC_SGC, PRIVATE_SGC_DELETING], ids=["public", "private"])
async def test_models_survive_temporals_default_payload_converter(raw: dict[str, Any]) -> None:
    # Workflows receive these models as arguments; they must decode to equal values.
    sgc = StaticGatewayConfiguration.from_object(raw)
    converter = DataConverter.default
    (decoded,) = await converter.decode(await converter.encode([sgc]), [StaticGatewayConfiguration])
    assert decoded == sgc
    assert decoded.to_object() == raw
