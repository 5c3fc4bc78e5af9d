"""Loading the Azure cloud config file: what a user's azure.json / YAML turns into."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from egressgw.cloud_config import (
    DEFAULT_LOAD_BALANCER_NAME,
    DEFAULT_USER_AGENT,
    AuthMethod,
    CloudConfigError,
    LoadedCloudConfig,
    ManagedIdentityKind,
    load_cloud_config,
    resolve_auth,
)

SUB = "9e2f1a3c-4b5d-4e6f-8a7b-1c2d3e4f5a6b"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "3c1d5e7f-0a2b-4c6d-8e0f-1a2b3c4d5e6f"
OTHER_TENANT = "11111111-2222-3333-4444-555555555555"
SECRET = "s3cr3t-Value~with.chars"
IDENTITY_RESOURCE_ID = (
    f"/subscriptions/{SUB}/resourceGroups/identities/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/egressgw"
)

BASE: dict[str, Any] = {
    "cloud": "AzurePublicCloud",
    "tenantId": TENANT,
    "subscriptionId": SUB,
    "aadClientId": CLIENT,
    "aadClientSecret": SECRET,
    "resourceGroup": "egressgw-rg",
    "location": "westeurope",
    "vnetName": "aks-vnet",
    "subnetName": "gateway-subnet",
}


def write(tmp_path: Path, document: dict[str, Any], *, fmt: str = "json", name: str = "") -> Path:
    path = tmp_path / (name or f"azure.{fmt}")
    text = json.dumps(document, indent=2) if fmt == "json" else yaml.safe_dump(document)
    path.write_text(text)
    return path


def load(tmp_path: Path, document: dict[str, Any], **env: str) -> LoadedCloudConfig:
    return load_cloud_config(write(tmp_path, document), environ=env)


def with_changes(changes: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    document = {k: v for k, v in BASE.items() if k not in drop}
    document.update(changes)
    return document


# --- valid files ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_a_minimal_file_gets_the_go_defaults(tmp_path: Path, fmt: str) -> None:
    loaded = load_cloud_config(write(tmp_path, BASE, fmt=fmt), environ={})
    cfg = loaded.config
    assert (cfg.cloud, cfg.location, cfg.subscription_id) == ("AzurePublicCloud", "westeurope", SUB)
    assert cfg.user_agent == DEFAULT_USER_AGENT == "kube-egress-gateway-controller"
    assert cfg.load_balancer_name == DEFAULT_LOAD_BALANCER_NAME == "kubeegressgateway-ilb"
    assert cfg.load_balancer_resource_group == "egressgw-rg"
    assert cfg.vnet_resource_group == "egressgw-rg"
    assert not cfg.rate_limit.enabled
    assert cfg.aad_client_secret.reveal() == SECRET
    assert loaded.warnings == ()


def test_json_and_yaml_of_the_same_settings_load_the_same(tmp_path: Path) -> None:
    document = with_changes({"cloudProviderRateLimit": True, "cloudProviderRateLimitQPS": 10})
    document["cloudProviderRateLimitBucket"] = 100
    from_json = load_cloud_config(write(tmp_path, document, fmt="json"), environ={}).config
    from_yaml = load_cloud_config(write(tmp_path, document, fmt="yaml"), environ={}).config
    assert from_json.__dict__ | {"source": ""} == from_yaml.__dict__ | {"source": ""}


def test_format_is_decided_by_content_not_extension(tmp_path: Path) -> None:
    json_named_yaml = tmp_path / "azure.yaml"
    json_named_yaml.write_text(json.dumps(BASE))
    yaml_named_json = tmp_path / "azure.json"
    yaml_named_json.write_text(yaml.safe_dump(BASE))
    for path in (json_named_yaml, yaml_named_json):
        assert load_cloud_config(path, environ={}).config.subscription_id == SUB


def test_utf8_bom_and_yaml_flow_mapping_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "azure.json"
    flow = "{" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in BASE.items()) + "}"
    path.write_bytes(b"\xef\xbb\xbf" + flow.encode())
    assert load_cloud_config(path, environ={}).config.vnet_name == "aks-vnet"


@pytest.mark.parametrize("key", ["subscriptionId", "subscriptionID", "SUBSCRIPTIONID"])
def test_subscription_key_spellings(tmp_path: Path, key: str) -> None:
    document = with_changes({key: SUB}, drop=("subscriptionId",))
    assert load(tmp_path, document).config.subscription_id == SUB


def test_both_subscription_spellings_with_the_same_value_are_fine(tmp_path: Path) -> None:
    document = with_changes({"subscriptionID": SUB})
    assert load(tmp_path, document).config.subscription_id == SUB


def test_strings_are_trimmed_but_the_certificate_password_is_kept(tmp_path: Path) -> None:
    cert = tmp_path / "sp.pem"
    cert.write_text("not read at load time")
    document = with_changes(
        {
            "cloud": "  azurepubliccloud ",
            "location": "\twesteurope\n",
            "subscriptionId": f"  {SUB}  ",
            "resourceGroup": " egressgw-rg ",
            "gatewayLoadBalancerName": " my-ilb ",
            "aadClientSecret": f"  {SECRET}  ",
            "aadClientCertPath": f" {cert} ",
            "aadClientCertPassword": " pass word ",
        }
    )
    cfg = load(tmp_path, document).config
    assert cfg.cloud == "azurepubliccloud"
    assert (cfg.location, cfg.subscription_id, cfg.resource_group) == (
        "westeurope",
        SUB,
        "egressgw-rg",
    )
    assert cfg.load_balancer_name == "my-ilb"
    assert cfg.aad_client_secret.reveal() == SECRET
    assert cfg.aad_client_cert_path == str(cert)
    assert cfg.aad_client_cert_password.reveal() == " pass word "


def test_explicit_resource_groups_and_names_win_over_defaults(tmp_path: Path) -> None:
    document = with_changes(
        {
            "loadBalancerResourceGroup": "lb-rg",
            "vnetResourceGroup": "net-rg",
            "gatewayLoadBalancerName": "gw-ilb",
            "userAgent": "my-agent/1.0",
        }
    )
    cfg = load(tmp_path, document).config
    assert (cfg.load_balancer_resource_group, cfg.vnet_resource_group) == ("lb-rg", "net-rg")
    assert (cfg.load_balancer_name, cfg.user_agent) == ("gw-ilb", "my-agent/1.0")


def test_rate_limit_write_limits_default_to_read_limits(tmp_path: Path) -> None:
    document = with_changes(
        {
            "cloudProviderRateLimit": True,
            "cloudProviderRateLimitQPS": 6,
            "cloudProviderRateLimitBucket": 20,
        }
    )
    rate = load(tmp_path, document).config.rate_limit
    assert (rate.enabled, rate.qps, rate.bucket, rate.qps_write, rate.bucket_write) == (
        True,
        6.0,
        20,
        6.0,
        20,
    )


def test_null_values_count_as_absent(tmp_path: Path) -> None:
    document = with_changes({"userAgent": None, "gatewayLoadBalancerName": None})
    cfg = load(tmp_path, document).config
    assert (cfg.user_agent, cfg.load_balancer_name) == (DEFAULT_USER_AGENT, "kubeegressgateway-ilb")


def test_unknown_keys_are_ignored_and_reported(tmp_path: Path) -> None:
    # An AKS node's /etc/kubernetes/azure.json carries many keys egressgw does not use.
    document = with_changes(
        {
            "vmType": "vmss",
            "securityGroupName": "aks-agentpool-nsg",
            "tagsMap": {"foo": "bar"},
            "cloudConfigType": "file",
            "auxiliaryTokenSecretURI": "https://vault/secret",
        }
    )
    loaded = load(tmp_path, document)
    assert loaded.config.subscription_id == SUB
    joined = "\n".join(loaded.warnings)
    assert "unknown keys ignored: securityGroupName, tagsMap, vmType" in joined
    assert "auxiliaryTokenSecretURI" in joined and "auxiliaryTokenProvider" in joined
    assert "cloudConfigType" not in joined
    assert all(w.startswith(str(tmp_path)) for w in loaded.warnings)


def test_azure_stack_clients_may_have_non_guid_ids(tmp_path: Path) -> None:
    document = with_changes(
        {
            "cloud": "AzureStackCloud",
            "resourceManagerEndpoint": "https://management.local.azurestack.external",
            "disableAzureStackCloud": True,
            "aadClientId": "egressgw-dev",
        }
    )
    assert resolve_auth(load(tmp_path, document).config, {}).client_id == "egressgw-dev"


@pytest.mark.parametrize("config_type", ["secret", "merge", "Merge"])
def test_secret_based_config_loading_is_not_supported_and_said_so(
    tmp_path: Path, config_type: str
) -> None:
    loaded = load(tmp_path, with_changes({"cloudConfigType": config_type}))
    assert loaded.warnings == (
        f"{tmp_path / 'azure.json'}: cloudConfigType: {config_type} is not supported: egressgw, "
        "like the Go implementation, reads only this file, not a Kubernetes secret",
    )


AKS_RETRY_SETTINGS: dict[str, Any] = {
    "cloudProviderBackoff": True,
    "cloudProviderBackoffRetries": 6,
    "cloudProviderBackoffExponent": 1.5,
    "cloudProviderBackoffDuration": 5,
    "cloudProviderBackoffJitter": 1.0,
    "cloudProviderBackoffMode": "v2",
    "enableMinimumRetryAfter": True,
}


def test_sdk_retry_and_backoff_settings_are_named_in_one_warning_that_says_why(
    tmp_path: Path,
) -> None:
    loaded = load(tmp_path, with_changes(AKS_RETRY_SETTINGS))
    (warning,) = loaded.warnings
    assert warning.startswith(
        f"{tmp_path / 'azure.json'}: cloudProviderBackoff, cloudProviderBackoffRetries, "
        "cloudProviderBackoffDuration, cloudProviderBackoffExponent, cloudProviderBackoffJitter, "
        "cloudProviderBackoffMode, enableMinimumRetryAfter: not supported, ignored: "
    )
    assert "the workflows' retry policies retry" in warning
    assert "Retry-After" in warning


@pytest.mark.parametrize(
    "settings",
    [
        {"cloudProviderBackoff": False},
        {"cloudProviderBackoffRetries": 0, "enableMinimumRetryAfter": False},
        {"cloudProviderBackoffMode": ""},
    ],
)
def test_retry_settings_that_ask_for_nothing_are_not_warned_about(
    tmp_path: Path, settings: dict[str, Any]
) -> None:
    assert load(tmp_path, with_changes(settings)).warnings == ()


def test_only_the_retry_settings_given_are_named(tmp_path: Path) -> None:
    loaded = load(tmp_path, with_changes({"cloudProviderBackoffRetries": 3}))
    (warning,) = loaded.warnings
    assert ": cloudProviderBackoffRetries: not supported, ignored: " in warning


def test_a_network_tenant_is_not_supported_and_said_so(tmp_path: Path) -> None:
    loaded = load(tmp_path, with_changes({"networkResourceTenantID": OTHER_TENANT}))
    (warning,) = loaded.warnings
    assert warning.startswith(
        f"{tmp_path / 'azure.json'}: networkResourceTenantID: not supported: "
    )
    assert OTHER_TENANT in warning
    same = load(tmp_path, with_changes({"networkResourceTenantID": TENANT.upper()}))
    assert same.warnings == ()


def test_the_warnings_are_logged_once_when_the_file_is_loaded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="egressgw.cloud_config"):
        loaded = load(tmp_path, with_changes(AKS_RETRY_SETTINGS))
    logged = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert logged == list(loaded.warnings)


def test_aks_style_file_with_managed_identity_loads(tmp_path: Path) -> None:
    document = with_changes(
        {
            "aadClientId": "msi",
            "aadClientSecret": "msi",
            "useManagedIdentityExtension": True,
            "disableAzureStackCloud": True,
            "cloudProviderBackoff": False,
            "vmType": "vmss",
        }
    )
    cfg = load(tmp_path, document).config
    auth = resolve_auth(cfg, {})
    assert auth.method is AuthMethod.MANAGED_IDENTITY
    assert auth.managed_identity_kind is ManagedIdentityKind.SYSTEM_ASSIGNED


def test_azure_stack_cloud_with_an_endpoint_loads_and_warns_about_api_versions(
    tmp_path: Path,
) -> None:
    document = with_changes(
        {"cloud": "AzureStackCloud", "resourceManagerEndpoint": "https://127.0.0.1:8443"}
    )
    loaded = load(tmp_path, document)
    assert loaded.config.resource_manager_endpoint == "https://127.0.0.1:8443"
    assert any("disableAzureStackCloud" in w for w in loaded.warnings)
    document["disableAzureStackCloud"] = True
    assert load(tmp_path, document).warnings == ()


# --- which credential -------------------------------------------------------------------------


def test_service_principal_secret(tmp_path: Path) -> None:
    auth = resolve_auth(load(tmp_path, BASE).config, {})
    assert auth.method is AuthMethod.CLIENT_SECRET
    assert (auth.tenant_id, auth.client_id, auth.client_secret.reveal()) == (TENANT, CLIENT, SECRET)
    assert auth.additionally_allowed_tenants == ()


def test_service_principal_in_another_network_tenant_may_use_it(tmp_path: Path) -> None:
    document = with_changes({"networkResourceTenantID": OTHER_TENANT})
    auth = resolve_auth(load(tmp_path, document).config, {})
    assert auth.additionally_allowed_tenants == (OTHER_TENANT,)


def test_certificate_when_there_is_no_secret(tmp_path: Path) -> None:
    cert = tmp_path / "sp.pfx"
    cert.write_bytes(b"pkcs12")
    document = with_changes(
        {"aadClientCertPath": str(cert), "aadClientCertPassword": "pw"}, drop=("aadClientSecret",)
    )
    auth = resolve_auth(load(tmp_path, document).config, {})
    assert auth.method is AuthMethod.CLIENT_CERTIFICATE
    assert auth.certificate_path == str(cert)
    assert auth.certificate_password.reveal() == "pw"


def test_secret_wins_over_certificate_as_in_azclient(tmp_path: Path) -> None:
    cert = tmp_path / "sp.pem"
    cert.write_text("x")
    document = with_changes({"aadClientCertPath": str(cert)})
    assert resolve_auth(load(tmp_path, document).config, {}).method is AuthMethod.CLIENT_SECRET


@pytest.mark.parametrize(
    ("identity", "kind"),
    [
        ("", ManagedIdentityKind.SYSTEM_ASSIGNED),
        (CLIENT, ManagedIdentityKind.CLIENT_ID),
        (IDENTITY_RESOURCE_ID, ManagedIdentityKind.RESOURCE_ID),
        (IDENTITY_RESOURCE_ID.lower(), ManagedIdentityKind.RESOURCE_ID),
    ],
)
def test_managed_identity_wins_over_a_secret(
    tmp_path: Path, identity: str, kind: ManagedIdentityKind
) -> None:
    document = with_changes(
        {"useManagedIdentityExtension": True, "userAssignedIdentityID": identity}
    )
    auth = resolve_auth(load(tmp_path, document).config, {})
    assert (auth.method, auth.managed_identity_kind, auth.managed_identity_id) == (
        AuthMethod.MANAGED_IDENTITY,
        kind,
        identity,
    )


def test_workload_identity_from_the_file_wins_over_everything(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("eyJ.fake.jwt")
    document = with_changes(
        {
            "useFederatedWorkloadIdentityExtension": True,
            "aadFederatedTokenFile": str(token),
            "useManagedIdentityExtension": True,
        }
    )
    auth = resolve_auth(load(tmp_path, document).config, {})
    assert (auth.method, auth.token_file, auth.client_id, auth.tenant_id) == (
        AuthMethod.WORKLOAD_IDENTITY,
        str(token),
        CLIENT,
        TENANT,
    )


def test_webhook_variables_turn_on_workload_identity_and_override_ids(tmp_path: Path) -> None:
    # The AKS workload identity webhook injects these; azclient lets them override the file.
    token = tmp_path / "azure-identity-token"
    token.write_text("eyJ.fake.jwt")
    env = {
        "AZURE_FEDERATED_TOKEN_FILE": str(token),
        "AZURE_CLIENT_ID": "0f0f0f0f-1e1e-2d2d-3c3c-4b4b4b4b4b4b",
        "AZURE_TENANT_ID": OTHER_TENANT,
    }
    document = with_changes({}, drop=("aadClientSecret", "aadClientId", "tenantId"))
    cfg = load(tmp_path, document, **env).config
    auth = resolve_auth(cfg, env)
    assert auth.method is AuthMethod.WORKLOAD_IDENTITY
    assert (auth.token_file, auth.client_id, auth.tenant_id) == (
        str(token),
        env["AZURE_CLIENT_ID"],
        OTHER_TENANT,
    )


def test_a_client_secret_from_the_environment_counts(tmp_path: Path) -> None:
    document = with_changes({}, drop=("aadClientSecret",))
    env = {"AZURE_CLIENT_SECRET": "from-env"}
    auth = resolve_auth(load(tmp_path, document, **env).config, env)
    assert (auth.method, auth.client_secret.reveal()) == (AuthMethod.CLIENT_SECRET, "from-env")


def test_managed_identity_across_tenants_with_an_auxiliary_token_provider(tmp_path: Path) -> None:
    document = with_changes(
        {
            "useManagedIdentityExtension": True,
            "networkResourceTenantID": OTHER_TENANT,
            "auxiliaryTokenProvider": {
                "subscriptionID": SUB,
                "resourceGroup": "kv-rg",
                "vaultName": "kv",
                "secretName": "network-token",
            },
        }
    )
    loaded = load(tmp_path, document)
    aux = loaded.config.auxiliary_token_provider
    assert aux is not None and (aux.vault_name, aux.secret_name) == ("kv", "network-token")
    assert any("auxiliaryTokenProvider" in w for w in loaded.warnings)


# --- invalid files ----------------------------------------------------------------------------

INVALID: list[tuple[str, dict[str, Any], tuple[str, ...], str]] = [
    ("no cloud", {}, ("cloud",), "cloud: is empty"),
    (
        "unknown cloud",
        {"cloud": "AzureGermanCloud"},
        (),
        "cloud: 'AzureGermanCloud' is not a known",
    ),
    ("azure stack without endpoint", {"cloud": "AzureStackCloud"}, (), "resourceManagerEndpoint: "),
    (
        "plain http endpoint",
        {"resourceManagerEndpoint": "http://127.0.0.1:8080"},
        (),
        "resourceManagerEndpoint: 'http://127.0.0.1:8080' must be an https URL",
    ),
    ("no location", {}, ("location",), "location: is empty"),
    ("no subscription", {}, ("subscriptionId",), "subscriptionID: is empty"),
    (
        "malformed subscription",
        {"subscriptionId": "my-subscription"},
        (),
        "subscriptionID: 'my-subscription' is not a subscription GUID",
    ),
    (
        "both subscription spellings differ",
        {"subscriptionID": "00000000-0000-0000-0000-000000000001"},
        (),
        "are both set and differ",
    ),
    ("no resource group", {}, ("resourceGroup",), "resourceGroup: is empty"),
    ("no vnet", {}, ("vnetName",), "vnetName: is empty"),
    ("no subnet", {"subnetName": "   "}, (), "subnetName: is empty"),
    (
        "bool as string",
        {"useManagedIdentityExtension": "true"},
        (),
        "useManagedIdentityExtension: must be a boolean (true/false), got a string",
    ),
    ("number as tenant", {"tenantId": 12345}, (), "tenantId: must be a string, got a number"),
    (
        "list as location",
        {"location": ["westeurope"]},
        (),
        "location: must be a string, got a list",
    ),
    (
        "fractional bucket",
        {"cloudProviderRateLimitBucket": 1.5},
        (),
        "cloudProviderRateLimitBucket: must be an integer, got a number",
    ),
    (
        "rate limit without qps",
        {"cloudProviderRateLimit": True, "cloudProviderRateLimitBucket": 5},
        (),
        "cloudProviderRateLimitQPS: must be > 0 when cloudProviderRateLimit is true",
    ),
    (
        "negative write bucket",
        {"cloudProviderRateLimitBucketWrite": -1},
        (),
        "cloudProviderRateLimitBucketWrite: must not be negative",
    ),
    (
        "negative backoff retries",
        {"cloudProviderBackoffRetries": -3},
        (),
        "cloudProviderBackoffRetries: must not be negative",
    ),
    (
        "user identity without managed identity",
        {"userAssignedIdentityID": CLIENT},
        (),
        "userAssignedIdentityID: is set but useManagedIdentityExtension is not true",
    ),
    (
        "malformed user identity",
        {"useManagedIdentityExtension": True, "userAssignedIdentityID": "my-identity"},
        (),
        "userAssignedIdentityID: 'my-identity' is neither a client ID",
    ),
    (
        "malformed identity resource id",
        {
            "useManagedIdentityExtension": True,
            "userAssignedIdentityID": f"/subscriptions/{SUB}/resourceGroups/rg",
        },
        (),
        "userAssignedIdentityID: '/subscriptions/",
    ),
    (
        "missing certificate file",
        {"aadClientCertPath": "/nonexistent/sp.pfx"},
        (),
        "aadClientCertPath: /nonexistent/sp.pfx does not exist",
    ),
    (
        "certificate password without certificate",
        {"aadClientCertPassword": "pw"},
        (),
        "aadClientCertPassword: is set but aadClientCertPath is empty",
    ),
    ("no credential at all", {}, ("aadClientSecret",), "no usable credential"),
    ("secret without client id", {}, ("aadClientId",), "aadClientId: is empty"),
    ("secret without tenant", {}, ("tenantId",), "tenantId: is empty"),
    (
        "client id not a guid",
        {"aadClientId": "my-app"},
        (),
        "aadClientId: 'my-app' (from aadClientId) is not an application GUID",
    ),
    (
        "malformed tenant",
        {"tenantId": "contoso tenant"},
        (),
        "tenantId: 'contoso tenant' is not a tenant ID",
    ),
    (
        "workload identity without token file",
        {"useFederatedWorkloadIdentityExtension": True},
        (),
        "aadFederatedTokenFile: is empty and AZURE_FEDERATED_TOKEN_FILE is unset",
    ),
    (
        "workload identity token file missing",
        {"useFederatedWorkloadIdentityExtension": True, "aadFederatedTokenFile": "/nope/token"},
        (),
        "aadFederatedTokenFile: /nope/token (from aadFederatedTokenFile) does not exist",
    ),
    (
        "invalid load balancer name",
        {"gatewayLoadBalancerName": "-ilb"},
        (),
        "gatewayLoadBalancerName: '-ilb' is not a valid Azure name",
    ),
    (
        "load balancer name ending in a dash",
        {"gatewayLoadBalancerName": "ilb-"},
        (),
        "gatewayLoadBalancerName: 'ilb-' is not a valid Azure name",
    ),
    (
        "invalid resource group name",
        {"loadBalancerResourceGroup": "rg."},
        (),
        "loadBalancerResourceGroup: 'rg.' is not a valid Azure name",
    ),
    (
        "managed identity across tenants without auxiliary provider",
        {"useManagedIdentityExtension": True, "networkResourceTenantID": OTHER_TENANT},
        (),
        "auxiliaryTokenProvider: is required with managed identity",
    ),
    (
        "incomplete auxiliary provider",
        {"auxiliaryTokenProvider": {"subscriptionID": SUB, "resourceGroup": "rg"}},
        (),
        "auxiliaryTokenProvider.vaultName: is empty",
    ),
    (
        "auxiliary provider not an object",
        {"auxiliaryTokenProvider": "https://vault/secret"},
        (),
        "auxiliaryTokenProvider: must be an object, got a string",
    ),
]


@pytest.mark.parametrize(
    ("changes", "drop", "fragment"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_invalid_settings_are_rejected_naming_the_file_and_key(
    tmp_path: Path, changes: dict[str, Any], drop: tuple[str, ...], fragment: str, fmt: str
) -> None:
    path = write(tmp_path, with_changes(changes, drop), fmt=fmt)
    with pytest.raises(CloudConfigError) as caught:
        load_cloud_config(path, environ={})
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert fragment in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the file is empty"),
        ("   \n# only a comment\n", "the file is empty"),
        ('["cloud", "AzurePublicCloud"]', "must hold an object of keys, got a list"),
        ("just a string", "must hold an object of keys, got a string"),
        ('{"cloud": "AzurePublicCloud",, }', "invalid JSON at line 1, column 30"),
        ("cloud: AzurePublicCloud\n  location: [westeurope\n", "invalid YAML at line 2"),
        ('{"cloud": "AzurePublicCloud", 1: "x"}', "keys must be strings"),
    ],
)
def test_malformed_documents_are_rejected(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "azure.json"
    path.write_text(text)
    with pytest.raises(CloudConfigError, match="^" + str(path)) as caught:
        load_cloud_config(path, environ={})
    assert fragment in str(caught.value)


def test_a_missing_file_is_reported_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(CloudConfigError, match=f"^{path}: cannot read the file"):
        load_cloud_config(path, environ={})


def test_a_binary_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "azure.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CloudConfigError, match="is not UTF-8 text"):
        load_cloud_config(path, environ={})


def test_a_webhook_client_id_that_is_not_a_guid_is_named_as_such(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("jwt")
    env = {"AZURE_FEDERATED_TOKEN_FILE": str(token), "AZURE_CLIENT_ID": "not-a-guid"}
    with pytest.raises(CloudConfigError, match="from AZURE_CLIENT_ID"):
        load(tmp_path, BASE, **env)
