"""The CRD manifests in deploy/crds agree with contracts/: names, defaults, bounds, and the CEL
rule messages that spec_validation repeats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts import kube_names
from contracts import spec_validation as sv

CRD_DIR = Path(__file__).resolve().parents[2] / "deploy" / "crds"

KINDS = [
    (kube_names.SGC_KIND, kube_names.SGC_PLURAL, kube_names.SGC_SINGULAR),
    (
        kube_names.POD_ENDPOINT_KIND,
        kube_names.POD_ENDPOINT_PLURAL,
        kube_names.POD_ENDPOINT_SINGULAR,
    ),
    (
        kube_names.GATEWAY_STATUS_KIND,
        kube_names.GATEWAY_STATUS_PLURAL,
        kube_names.GATEWAY_STATUS_SINGULAR,
    ),
]


def _load(plural: str) -> dict[str, Any]:
    path = CRD_DIR / f"{kube_names.API_GROUP}_{plural}.yaml"
    crd: dict[str, Any] = yaml.safe_load(path.read_text())
    return crd


def _sgc_spec_schema() -> dict[str, Any]:
    version = _load(kube_names.SGC_PLURAL)["spec"]["versions"][0]
    spec: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec


def test_the_crd_directory_holds_exactly_the_three_kinds() -> None:
    expected = {f"{kube_names.API_GROUP}_{plural}.yaml" for _, plural, _ in KINDS}
    assert {path.name for path in CRD_DIR.glob("*.yaml")} == expected


@pytest.mark.parametrize(("kind", "plural", "singular"), KINDS)
def test_crd_names_and_version(kind: str, plural: str, singular: str) -> None:
    crd = _load(plural)
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.{kube_names.API_GROUP}"
    spec = crd["spec"]
    assert spec["group"] == kube_names.API_GROUP
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == kind
    assert spec["names"]["plural"] == plural
    assert spec["names"]["singular"] == singular
    assert spec["names"]["listKind"] == f"{kind}List"
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == (
        kube_names.API_VERSION,
        True,
        True,
    )
    assert version["subresources"] == {"status": {}}
    assert version["schema"]["openAPIV3Schema"]["type"] == "object"


def test_sgc_short_name_and_printer_columns() -> None:
    spec = _load(kube_names.SGC_PLURAL)["spec"]
    assert spec["names"]["shortNames"] == [kube_names.SGC_SHORT_NAME]
    columns = {c["name"]: c for c in spec["versions"][0]["additionalPrinterColumns"]}
    assert list(columns) == ["Ready", "Egress IP", "Age"]
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Egress IP"]["jsonPath"] == ".status.egressIpPrefix"
    assert columns["Age"] == {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
    }


def test_sgc_defaults_enums_and_bounds_match_contracts() -> None:
    props = _sgc_spec_schema()["properties"]
    assert props["provisionPublicIps"]["default"] is True
    assert props["defaultRoute"]["default"] == "staticEgressGateway"
    assert props["defaultRoute"]["enum"] == ["azureNetworking", "staticEgressGateway"]
    profile = props["gatewayVmssProfile"]["properties"]
    assert profile["publicIpPrefixSize"]["minimum"] == sv.MIN_PUBLIC_IP_PREFIX_SIZE
    assert profile["publicIpPrefixSize"]["maximum"] == sv.MAX_PUBLIC_IP_PREFIX_SIZE
    assert profile["vmssResourceGroup"]["maxLength"] == sv.MAX_RESOURCE_GROUP_LENGTH
    assert profile["vmssName"]["maxLength"] == sv.MAX_VMSS_NAME_LENGTH
    assert props["gatewayNodepoolName"]["maxLength"] == sv.MAX_NODEPOOL_NAME_LENGTH
    assert props["publicIpPrefixId"]["maxLength"] == sv.MAX_PUBLIC_IP_PREFIX_ID_LENGTH
    assert props["excludeCidrs"]["maxItems"] == sv.MAX_EXCLUDE_CIDRS
    assert props["excludeCidrs"]["items"]["maxLength"] == sv.MAX_CIDR_LENGTH


def _rules(schema: dict[str, Any]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = schema.get("x-kubernetes-validations", [])
    return rules


def test_sgc_cel_messages_are_the_ones_validate_spec_reports() -> None:
    spec = _sgc_spec_schema()
    props = spec["properties"]
    messages = [rule["message"] for rule in _rules(spec)]
    messages += [rule["message"] for rule in _rules(props["gatewayVmssProfile"])]
    messages += [rule["message"] for rule in _rules(props["publicIpPrefixId"])]
    messages += [rule["message"] for rule in _rules(props["excludeCidrs"]["items"])]
    assert messages == [
        sv.MSG_EXACTLY_ONE_POOL,
        sv.MSG_PREFIX_ID_NEEDS_PUBLIC_IPS,
        sv.MSG_VMSS_RESOURCE_GROUP_REQUIRED,
        sv.MSG_VMSS_NAME_REQUIRED,
        sv.MSG_PREFIX_ID_SHAPE,
        sv.MSG_EXCLUDE_CIDR,
    ]
    assert sv.PUBLIC_IP_PREFIX_ID_PATTERN in _rules(props["publicIpPrefixId"])[0]["rule"]
    assert _rules(props["excludeCidrs"]["items"])[0]["rule"] == "isCIDR(self)"


def test_sgc_cel_rules_that_name_a_field_point_at_it() -> None:
    spec = _sgc_spec_schema()
    located = [
        (rule.get("fieldPath"), rule.get("reason"))
        for rule in _rules(spec) + _rules(spec["properties"]["gatewayVmssProfile"])
    ]
    assert located == [
        (None, None),
        (".publicIpPrefixId", "FieldValueForbidden"),
        (".vmssResourceGroup", "FieldValueRequired"),
        (".vmssName", "FieldValueRequired"),
    ]


def test_sgc_status_has_metav1_conditions_and_the_upstream_fields() -> None:
    version = _load(kube_names.SGC_PLURAL)["spec"]["versions"][0]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert set(status) == {
        "egressIpPrefix",
        "gatewayServerProfile",
        "conditions",
        "observedGeneration",
    }
    assert set(status["gatewayServerProfile"]["properties"]) == {
        "ip",
        "port",
        "publicKey",
        "privateKeySecretRef",
    }
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["required"]) == {"type", "status", "lastTransitionTime", "reason", "message"}
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]


def test_pod_endpoint_and_gateway_status_fields_are_upstreams() -> None:
    def spec_props(plural: str) -> dict[str, Any]:
        version = _load(plural)["spec"]["versions"][0]
        spec: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
        props: dict[str, Any] = spec["properties"]
        return props

    assert set(spec_props(kube_names.POD_ENDPOINT_PLURAL)) == {
        "staticGatewayConfiguration",
        "podIpAddress",
        "podPublicKey",
    }
    gateway = spec_props(kube_names.GATEWAY_STATUS_PLURAL)
    assert set(gateway["readyGatewayConfigurations"]["items"]["properties"]) == {
        "staticGatewayConfiguration",
        "interfaceName",
    }
    assert set(gateway["readyPeerConfigurations"]["items"]["properties"]) == {
        "podEndpoint",
        "interfaceName",
        "publicKey",
    }
