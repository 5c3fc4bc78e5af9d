"""The StaticGatewayConfiguration CRD refuses what the Go controller would refuse, at the real API
server (its OpenAPI schema validation and CEL rules), with a message that names the field; and
contracts.spec_validation refuses the same specs with the same messages, so the controller can
back the CRD up on clusters running an older one. One table of cases drives both sides.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from contracts import kube_names
from contracts import spec_validation as sv
from contracts.gateway_config import StaticGatewayConfigurationSpec
from tests.fixtures.cluster import Cluster

SUB = "9e2f1a3c-4b5d-4e6f-8a7b-1c2d3e4f5a6b"
PREFIX_ID = (
    f"/subscriptions/{SUB}/resourceGroups/egressgw-dev/providers/Microsoft.Network"
    "/publicIPPrefixes/byo-prefix"
)
PROFILE = {"vmssResourceGroup": "egressgw-dev", "vmssName": "aks-gwpool-12345678-vmss"}


@dataclass(frozen=True)
class Valid:
    id: str
    spec: dict[str, Any]
    stored: dict[str, Any]  # the spec the API server returns, defaults applied


@dataclass(frozen=True)
class Invalid:
    id: str
    spec: dict[str, Any]
    # (field path, fragment of the message): each must be reported, by the API server (in the
    # 422 Status message, as "<field>: ...<fragment>...") and by validate_spec.
    errors: tuple[tuple[str, str], ...]


VALID = [
    Valid(
        "nodepool-defaults",
        {"gatewayNodepoolName": "gwpool"},
        {
            "gatewayNodepoolName": "gwpool",
            "provisionPublicIps": True,
            "defaultRoute": "staticEgressGateway",
        },
    ),
    Valid(
        "vmss-profile-byo-prefix-excludes",
        {
            "gatewayVmssProfile": {**PROFILE, "publicIpPrefixSize": 31},
            "publicIpPrefixId": PREFIX_ID,
            "excludeCidrs": ["10.0.0.0/8", "169.254.169.254/32", "fd00::/8", "2001:db8::1/128"],
        },
        {
            "gatewayVmssProfile": {**PROFILE, "publicIpPrefixSize": 31},
            "publicIpPrefixId": PREFIX_ID,
            "excludeCidrs": ["10.0.0.0/8", "169.254.169.254/32", "fd00::/8", "2001:db8::1/128"],
            "provisionPublicIps": True,
            "defaultRoute": "staticEgressGateway",
        },
    ),
    Valid(
        "private-mode-azure-networking",
        {
            "gatewayNodepoolName": "gwvmpool",
            "provisionPublicIps": False,
            "defaultRoute": "azureNetworking",
            "excludeCidrs": ["192.168.0.0/16"],
        },
        {
            "gatewayNodepoolName": "gwvmpool",
            "provisionPublicIps": False,
            "defaultRoute": "azureNetworking",
            "excludeCidrs": ["192.168.0.0/16"],
        },
    ),
    Valid(
        "nodepool-with-empty-profile",
        {"gatewayNodepoolName": "gwpool", "gatewayVmssProfile": {}},
        {
            "gatewayNodepoolName": "gwpool",
            "gatewayVmssProfile": {},
            "provisionPublicIps": True,
            "defaultRoute": "staticEgressGateway",
        },
    ),
    Valid(
        "empty-prefix-id-in-private-mode",
        {"gatewayNodepoolName": "gwvmpool", "provisionPublicIps": False, "publicIpPrefixId": ""},
        {
            "gatewayNodepoolName": "gwvmpool",
            "provisionPublicIps": False,
            "publicIpPrefixId": "",
            "defaultRoute": "staticEgressGateway",
        },
    ),
    Valid(
        "prefix-id-in-other-case-and-zero-prefix-size",
        {
            "gatewayVmssProfile": {**PROFILE, "publicIpPrefixSize": 0},
            "publicIpPrefixId": PREFIX_ID.lower(),
        },
        {
            "gatewayVmssProfile": {**PROFILE, "publicIpPrefixSize": 0},
            "publicIpPrefixId": PREFIX_ID.lower(),
            "provisionPublicIps": True,
            "defaultRoute": "staticEgressGateway",
        },
    ),
]

EXACTLY_ONE = ("spec", sv.MSG_EXACTLY_ONE_POOL)
RG_REQUIRED = ("spec.gatewayVmssProfile.vmssResourceGroup", sv.MSG_VMSS_RESOURCE_GROUP_REQUIRED)
NAME_REQUIRED = ("spec.gatewayVmssProfile.vmssName", sv.MSG_VMSS_NAME_REQUIRED)
PREFIX_FORBIDDEN = ("spec.publicIpPrefixId", sv.MSG_PREFIX_ID_NEEDS_PUBLIC_IPS)
PREFIX_SHAPE = ("spec.publicIpPrefixId", sv.MSG_PREFIX_ID_SHAPE)


def _cidr_error(index: int) -> tuple[str, str]:
    return (f"spec.excludeCidrs[{index}]", sv.MSG_EXCLUDE_CIDR)


INVALID = [
    Invalid(
        "both-pool-kinds",
        {"gatewayNodepoolName": "gwpool", "gatewayVmssProfile": PROFILE},
        (EXACTLY_ONE,),
    ),
    Invalid("no-pool", {}, (EXACTLY_ONE,)),
    Invalid("only-empty-profile", {"gatewayVmssProfile": {}}, (EXACTLY_ONE,)),
    Invalid(
        "only-zero-valued-profile",
        {"gatewayVmssProfile": {"vmssResourceGroup": "", "vmssName": "", "publicIpPrefixSize": 0}},
        (EXACTLY_ONE,),
    ),
    Invalid("empty-nodepool-name", {"gatewayNodepoolName": ""}, (EXACTLY_ONE,)),
    Invalid(
        "profile-without-name",
        {"gatewayVmssProfile": {"vmssResourceGroup": "rg"}},
        (NAME_REQUIRED,),
    ),
    Invalid("profile-without-group", {"gatewayVmssProfile": {"vmssName": "vmss"}}, (RG_REQUIRED,)),
    Invalid(
        "profile-with-empty-name",
        {"gatewayVmssProfile": {"vmssResourceGroup": "rg", "vmssName": ""}},
        (NAME_REQUIRED,),
    ),
    Invalid(
        "profile-with-only-prefix-size",
        {"gatewayVmssProfile": {"publicIpPrefixSize": 30}},
        (RG_REQUIRED, NAME_REQUIRED),
    ),
    Invalid(
        "prefix-size-32",
        {"gatewayVmssProfile": {**PROFILE, "publicIpPrefixSize": 32}},
        (("spec.gatewayVmssProfile.publicIpPrefixSize", "less than or equal to 31"),),
    ),
    Invalid(
        "prefix-size-negative",
        {"gatewayVmssProfile": {**PROFILE, "publicIpPrefixSize": -1}},
        (("spec.gatewayVmssProfile.publicIpPrefixSize", "greater than or equal to 0"),),
    ),
    Invalid(
        "unknown-default-route",
        {"gatewayNodepoolName": "gwpool", "defaultRoute": "internet"},
        (("spec.defaultRoute", 'Unsupported value: "internet"'),),
    ),
    Invalid(
        "prefix-id-in-private-mode",
        {
            "gatewayNodepoolName": "gwvmpool",
            "provisionPublicIps": False,
            "publicIpPrefixId": PREFIX_ID,
        },
        (PREFIX_FORBIDDEN,),
    ),
    Invalid(
        "prefix-id-of-a-public-ip-address",
        {
            "gatewayNodepoolName": "gwpool",
            "publicIpPrefixId": PREFIX_ID.replace("publicIPPrefixes", "publicIPAddresses"),
        },
        (PREFIX_SHAPE,),
    ),
    Invalid(
        "prefix-id-bare-name",
        {"gatewayNodepoolName": "gwpool", "publicIpPrefixId": "byo-prefix"},
        (PREFIX_SHAPE,),
    ),
    Invalid(
        "prefix-id-with-child",
        {"gatewayNodepoolName": "gwpool", "publicIpPrefixId": PREFIX_ID + "/extra/x"},
        (PREFIX_SHAPE,),
    ),
    Invalid(
        "prefix-id-without-resource-group",
        {
            "gatewayNodepoolName": "gwpool",
            "publicIpPrefixId": (
                f"/subscriptions/{SUB}/providers/Microsoft.Network/publicIPPrefixes/p"
            ),
        },
        (PREFIX_SHAPE,),
    ),
    Invalid(
        "prefix-id-malformed-and-forbidden",
        {"gatewayNodepoolName": "gwvmpool", "provisionPublicIps": False, "publicIpPrefixId": "byo"},
        (PREFIX_FORBIDDEN, PREFIX_SHAPE),
    ),
    Invalid(
        "exclude-address-without-length",
        {"gatewayNodepoolName": "gwpool", "excludeCidrs": ["10.0.0.1"]},
        (_cidr_error(0),),
    ),
    Invalid(
        "exclude-ipv4-length-33",
        {"gatewayNodepoolName": "gwpool", "excludeCidrs": ["10.0.0.0/8", "10.0.0.0/33"]},
        (_cidr_error(1),),
    ),
    Invalid(
        "exclude-ipv6-length-129",
        {"gatewayNodepoolName": "gwpool", "excludeCidrs": ["fd00::/129"]},
        (_cidr_error(0),),
    ),
    Invalid(
        "exclude-garbage",
        {"gatewayNodepoolName": "gwpool", "excludeCidrs": ["192.168.0.0/16", "", "not-a-cidr"]},
        (_cidr_error(1), _cidr_error(2)),
    ),
    Invalid(
        "exclude-bad-octet",
        {"gatewayNodepoolName": "gwpool", "excludeCidrs": ["10.0.0.256/32"]},
        (_cidr_error(0),),
    ),
]


def _by_id(cases: list[Any]) -> dict[str, Any]:
    return {"argvalues": cases, "ids": [case.id for case in cases]}


# --- validate_spec: no server needed -------------------------------------------------------------


@pytest.mark.parametrize("case", **_by_id(VALID))
def test_validate_spec_accepts(case: Valid) -> None:
    assert sv.validate_spec(StaticGatewayConfigurationSpec.from_object(case.spec)) == []


@pytest.mark.parametrize("case", **_by_id(INVALID))
def test_validate_spec_rejects_naming_the_field(case: Invalid) -> None:
    errors = sv.validate_spec(StaticGatewayConfigurationSpec.from_object(case.spec))
    for field, fragment in case.errors:
        assert any(e.field == field and fragment in e.message for e in errors), (field, errors)
    assert len(errors) == len(case.errors), errors


def test_the_invalid_table_is_large_and_distinct() -> None:
    specs = [json.dumps(case.spec, sort_keys=True) for case in INVALID]
    assert len(set(specs)) == len(specs) >= 15


# --- through the real API server (its OpenAPI schema validation and CEL) ------------------------


async def _call(fn: Callable[..., object], *args: Any, **kwargs: Any) -> Any:
    # The sync client blocks; run it off the event loop.
    return await asyncio.to_thread(fn, *args, **kwargs)


@dataclass(frozen=True)
class Sgcs:
    """StaticGatewayConfigurations of the test's namespace, through the `kubernetes` client."""

    api: client.CustomObjectsApi
    namespace: str

    def body(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": kube_names.GROUP_VERSION,
            "kind": kube_names.SGC_KIND,
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }

    def _where(self) -> tuple[str, str, str, str]:
        return kube_names.API_GROUP, kube_names.API_VERSION, self.namespace, kube_names.SGC_PLURAL

    async def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = await _call(
            self.api.create_namespaced_custom_object, *self._where(), self.body(name, spec)
        )
        return created

    async def get(self, name: str) -> dict[str, Any]:
        got: dict[str, Any] = await _call(
            self.api.get_namespaced_custom_object, *self._where(), name
        )
        return got

    async def patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        # kubernetes 37 sends application/merge-patch+json for custom objects; say so explicitly.
        patched: dict[str, Any] = await _call(
            self.api.patch_namespaced_custom_object,
            *self._where(),
            name,
            patch,
            _content_type="application/merge-patch+json",
        )
        return patched

    async def replace(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        replaced: dict[str, Any] = await _call(
            self.api.replace_namespaced_custom_object, *self._where(), name, body
        )
        return replaced


@pytest.fixture
def sgcs(kube_cluster: Cluster, kube_namespace: str) -> Iterator[Sgcs]:
    api = kubernetes.config.new_client_from_config(config_file=str(kube_cluster.admin_kubeconfig))  # type: ignore[no-untyped-call]
    try:
        yield Sgcs(client.CustomObjectsApi(api), kube_namespace)
    finally:
        api.close()


def _assert_unprocessable(
    exc: ApiException, name: str, errors: tuple[tuple[str, str], ...]
) -> None:
    assert exc.status == 422, exc.body
    assert exc.body is not None
    status = json.loads(exc.body)
    assert status["reason"] == "Invalid"
    message = status["message"]
    assert message.startswith(
        f'StaticGatewayConfiguration.egressgateway.kubernetes.azure.com "{name}" is invalid'
    )
    for field, fragment in errors:
        assert f"{field}: " in message, message
        assert fragment in message, message
    causes = status["details"]["causes"]
    # An enum violation blocks the CEL rules; the API server then adds a cause with no field
    # ("<nil>") saying some rules were not checked.
    reported = {cause["field"] for cause in causes if cause.get("field") not in (None, "<nil>")}
    assert reported == {field for field, _ in errors}, causes


@pytest.mark.parametrize("case", **_by_id(VALID))
async def test_apiserver_accepts_and_applies_defaults(sgcs: Sgcs, case: Valid) -> None:
    created = await sgcs.create(case.id, case.spec)
    assert created["spec"] == case.stored
    assert (await sgcs.get(case.id))["spec"] == case.stored


@pytest.mark.parametrize("case", **_by_id(INVALID))
async def test_apiserver_rejects_naming_the_field(sgcs: Sgcs, case: Invalid) -> None:
    with pytest.raises(ApiException) as caught:
        await sgcs.create(case.id, case.spec)
    _assert_unprocessable(caught.value, case.id, case.errors)
    with pytest.raises(ApiException) as missing:
        await sgcs.get(case.id)
    assert missing.value.status == 404


UPDATES = [
    pytest.param(
        {"spec": {"gatewayVmssProfile": PROFILE}}, (EXACTLY_ONE,), id="add-second-pool-kind"
    ),
    pytest.param({"spec": {"gatewayNodepoolName": None}}, (EXACTLY_ONE,), id="remove-pool"),
    pytest.param(
        {"spec": {"provisionPublicIps": False}}, (PREFIX_FORBIDDEN,), id="go-private-keeping-prefix"
    ),
    pytest.param(
        {"spec": {"publicIpPrefixId": "byo-prefix"}}, (PREFIX_SHAPE,), id="malformed-prefix-id"
    ),
    pytest.param(
        {"spec": {"excludeCidrs": ["10.0.0.0/8", "10.1.0.0"]}},
        (_cidr_error(1),),
        id="bad-exclude-cidr",
    ),
    pytest.param(
        {"spec": {"defaultRoute": "Internet"}},
        (("spec.defaultRoute", "supported values"),),
        id="bad-route",
    ),
]


@pytest.mark.parametrize(("patch", "errors"), UPDATES)
async def test_apiserver_rejects_patches_that_make_a_valid_sgc_invalid(
    sgcs: Sgcs,
    request: pytest.FixtureRequest,
    patch: dict[str, Any],
    errors: tuple[tuple[str, str], ...],
) -> None:
    name = f"patch-{request.node.callspec.id}"
    created = await sgcs.create(
        name, {"gatewayNodepoolName": "gwpool", "publicIpPrefixId": PREFIX_ID}
    )
    with pytest.raises(ApiException) as caught:
        await sgcs.patch(name, patch)
    _assert_unprocessable(caught.value, name, errors)
    after = await sgcs.get(name)
    assert after["spec"] == created["spec"]
    assert after["metadata"]["generation"] == created["metadata"]["generation"]


async def test_apiserver_rejects_a_replace_that_makes_a_valid_sgc_invalid(sgcs: Sgcs) -> None:
    created = await sgcs.create("replace-me", {"gatewayVmssProfile": PROFILE})
    body = {**created, "spec": {"gatewayVmssProfile": {"vmssResourceGroup": "egressgw-dev"}}}
    with pytest.raises(ApiException) as caught:
        await sgcs.replace("replace-me", body)
    _assert_unprocessable(caught.value, "replace-me", (NAME_REQUIRED,))
    # The same object with a valid change goes through and bumps the generation.
    body["spec"] = {"gatewayVmssProfile": {**PROFILE, "publicIpPrefixSize": 30}}
    replaced = await sgcs.replace("replace-me", body)
    assert replaced["spec"]["gatewayVmssProfile"]["publicIpPrefixSize"] == 30
    assert replaced["spec"]["provisionPublicIps"] is True
    assert replaced["metadata"]["generation"] == created["metadata"]["generation"] + 1


async def test_a_valid_patch_is_accepted(sgcs: Sgcs) -> None:
    await sgcs.create(
        "go-private", {"gatewayNodepoolName": "gwvmpool", "publicIpPrefixId": PREFIX_ID}
    )
    # Dropping the prefix and going private in one patch is valid.
    patched = await sgcs.patch(
        "go-private", {"spec": {"publicIpPrefixId": None, "provisionPublicIps": False}}
    )
    assert "publicIpPrefixId" not in patched["spec"]
    assert patched["spec"]["provisionPublicIps"] is False


# --- what a user sees with kubectl ---------------------------------------------------------------

INVALID_MANIFEST = """\
apiVersion: egressgateway.kubernetes.azure.com/v1alpha1
kind: StaticGatewayConfiguration
metadata:
  name: half-profile
  namespace: {namespace}
spec:
  gatewayVmssProfile:
    vmssResourceGroup: egressgw-dev
    publicIpPrefixSize: 31
"""

VALID_MANIFEST = """\
apiVersion: egressgateway.kubernetes.azure.com/v1alpha1
kind: StaticGatewayConfiguration
metadata:
  name: from-kubectl
  namespace: {namespace}
spec:
  gatewayVmssProfile:
    vmssResourceGroup: egressgw-dev
    vmssName: aks-gwpool-12345678-vmss
    publicIpPrefixSize: 31
"""


async def _kubectl(
    program: Path, kubeconfig: Path, *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(program),
        f"--kubeconfig={kubeconfig}",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin.encode())
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.kubectl
async def test_kubectl_apply_shows_the_rule_message_and_get_uses_the_short_name(
    kube_cluster: Cluster, kube_namespace: str
) -> None:
    kubectl_path, kubeconfig_path = kube_cluster.kubectl, kube_cluster.admin_kubeconfig
    code, _, err = await _kubectl(
        kubectl_path,
        kubeconfig_path,
        "apply",
        "-f",
        "-",
        stdin=INVALID_MANIFEST.format(namespace=kube_namespace),
    )
    assert code != 0
    # kubectl rewrites the Status message into its own sentence, keeping the causes.
    assert 'The StaticGatewayConfiguration "half-profile" is invalid' in err
    assert f"spec.gatewayVmssProfile.vmssName: Required value: {sv.MSG_VMSS_NAME_REQUIRED}" in err

    code, out, err = await _kubectl(
        kubectl_path,
        kubeconfig_path,
        "apply",
        "-f",
        "-",
        stdin=VALID_MANIFEST.format(namespace=kube_namespace),
    )
    assert code == 0, err
    assert (
        "staticgatewayconfiguration.egressgateway.kubernetes.azure.com/from-kubectl created" in out
    )

    code, out, err = await _kubectl(
        kubectl_path, kubeconfig_path, "get", "sgc", "-n", kube_namespace, "from-kubectl"
    )
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split() == ["NAME", "READY", "EGRESS", "IP", "AGE"]
    assert row.split()[0] == "from-kubectl"
