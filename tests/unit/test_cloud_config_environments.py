"""Cloud names and `/metadata/endpoints` documents: which ARM URL, login host and scope a config
ends up with. Plus: the sample configs shipped in deploy/samples load as they are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from egressgw.azure_cloud import (
    AZURE_CHINA_CLOUD,
    AZURE_PUBLIC_CLOUD,
    AZURE_US_GOVERNMENT_CLOUD,
    CloudEnvironmentError,
    apply_environment_file,
    metadata_url,
    named_cloud,
    parse_metadata_endpoints,
)
from egressgw.cloud_config import (
    AuthMethod,
    CloudConfigError,
    load_cloud_config,
    parse_cloud_config,
    resolve_auth,
)

SAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "samples"


@pytest.mark.parametrize(
    ("name", "environment"),
    [
        ("AzurePublicCloud", AZURE_PUBLIC_CLOUD),
        ("azurecloud", AZURE_PUBLIC_CLOUD),
        ("AZURECHINACLOUD", AZURE_CHINA_CLOUD),
        ("AzureUSGovernment", AZURE_US_GOVERNMENT_CLOUD),
        (" AzureUSGovernmentCloud ", AZURE_US_GOVERNMENT_CLOUD),
    ],
)
def test_named_clouds_are_case_insensitive(name: str, environment: object) -> None:
    assert named_cloud(name) is environment


def test_unknown_and_azure_stack_names_have_no_builtin_environment() -> None:
    assert named_cloud("AzureStackCloud") is None
    assert named_cloud("AzureGermanCloud") is None


@pytest.mark.parametrize(
    ("environment", "arm", "login", "scope"),
    [
        (
            AZURE_PUBLIC_CLOUD,
            "https://management.azure.com",
            "https://login.microsoftonline.com",
            "https://management.core.windows.net/.default",
        ),
        (
            AZURE_CHINA_CLOUD,
            "https://management.chinacloudapi.cn",
            "https://login.chinacloudapi.cn",
            "https://management.core.chinacloudapi.cn/.default",
        ),
        (
            AZURE_US_GOVERNMENT_CLOUD,
            "https://management.usgovcloudapi.net",
            "https://login.microsoftonline.us",
            "https://management.core.usgovcloudapi.net/.default",
        ),
    ],
)
def test_builtin_endpoints(environment: Any, arm: str, login: str, scope: str) -> None:
    assert environment.resource_manager_url == arm
    assert environment.authority_host == login
    assert environment.credential_scopes == (scope,)
    assert environment.well_known_authority


def test_metadata_url_uses_azclients_api_version() -> None:
    assert (
        metadata_url("https://127.0.0.1:8443/")
        == "https://127.0.0.1:8443/metadata/endpoints?api-version=2019-05-01"
    )


def cloud(name: str, arm: str | None, login: str | None, audience: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "authentication": {"audiences": [audience, "https://other/"], "identityProvider": "AAD"},
    }
    if arm is not None:
        entry["resourceManager"] = arm
    if login is not None:
        entry["authentication"]["loginEndpoint"] = login
    return entry


EMULATOR = "https://127.0.0.1:8443"


def test_a_single_cloud_document_describes_the_endpoint() -> None:
    document = cloud("AzureCloud", EMULATOR + "/", EMULATOR, "https://management.core.windows.net/")
    env = parse_metadata_endpoints(document, "AzureStackCloud", EMULATOR)
    assert env.resource_manager_url == EMULATOR
    assert env.authority_host == EMULATOR
    assert env.credential_scopes == ("https://management.core.windows.net/.default",)
    assert not env.well_known_authority  # so MSAL skips instance discovery


def test_a_list_is_searched_by_cloud_name_with_public_cloud_aliases() -> None:
    document = [
        cloud(
            "AzureChinaCloud",
            "https://management.chinacloudapi.cn/",
            "https://login.chinacloudapi.cn/",
            "https://management.core.chinacloudapi.cn/",
        ),
        cloud(
            "AzureCloud",
            "https://management.azure.com/",
            "https://login.microsoftonline.com/",
            "https://management.core.windows.net/",
        ),
    ]
    env = parse_metadata_endpoints(document, "AzurePublicCloud", "https://management.azure.com")
    assert env.resource_manager_url == "https://management.azure.com"
    assert env.authority_host == "https://login.microsoftonline.com"
    assert env.well_known_authority
    china = parse_metadata_endpoints(document, "azurechinacloud", "https://management.azure.com")
    assert china.authority_host == "https://login.chinacloudapi.cn"


def test_a_list_without_the_name_is_searched_by_endpoint() -> None:
    document = [
        cloud("Other", "https://elsewhere/", "https://login.elsewhere", "https://aud1/"),
        cloud("AzureCloud", EMULATOR, EMULATOR, "https://aud2/"),
    ]
    env = parse_metadata_endpoints(document, "AzureStackCloud", EMULATOR + "/")
    assert env.audience == "https://aud2/"


def test_azure_stack_metadata_without_resource_manager_uses_the_endpoint() -> None:
    document = [cloud("AzureStackCloud", None, "https://adfs.local.azurestack.external/", "a")]
    env = parse_metadata_endpoints(document, "AzureStackCloud", "https://management.local/")
    assert env.resource_manager_url == "https://management.local"


def test_a_missing_login_endpoint_keeps_the_named_clouds_authority() -> None:
    document = cloud("AzureCloud", "https://management.azure.com/", None, "https://aud/")
    env = parse_metadata_endpoints(document, "AzurePublicCloud", "https://management.azure.com")
    assert env.authority_host == AZURE_PUBLIC_CLOUD.authority_host


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ("a string", "neither a cloud object nor a list"),
        ([], "lists no cloud"),
        (
            [
                cloud("A", "https://a/", "https://a", "x"),
                cloud("B", "https://b/", "https://b", "y"),
            ],
            "lists clouds A, B; none matches cloud 'AzureStackCloud'",
        ),
        ({"name": "X", "resourceManager": EMULATOR}, "no authentication section"),
        ({"name": "X", "authentication": {"audiences": []}}, "lists no token audience"),
        (cloud("X", "http://127.0.0.1:8080/", EMULATOR, "a"), "resourceManager"),
        (cloud("X", EMULATOR, "http://login.local", "a"), "loginEndpoint 'http://login.local'"),
        (cloud("X", EMULATOR, None, "a"), "has no authentication.loginEndpoint"),
    ],
)
def test_unusable_metadata_is_rejected(document: object, fragment: str) -> None:
    with pytest.raises(CloudEnvironmentError) as caught:
        parse_metadata_endpoints(document, "AzureStackCloud", EMULATOR)
    assert fragment in str(caught.value)
    assert EMULATOR in str(caught.value)


@pytest.mark.parametrize(
    ("sample", "method"),
    [
        ("azure-config-managed-identity.yaml", AuthMethod.MANAGED_IDENTITY),
        ("azure-config-service-principal.yaml", AuthMethod.CLIENT_SECRET),
        ("azure-config-workload-identity.yaml", AuthMethod.WORKLOAD_IDENTITY),
    ],
)
def test_shipped_samples_load(tmp_path: Path, sample: str, method: AuthMethod) -> None:
    token = tmp_path / "azure-identity-token"
    token.write_text("eyJ.fake.jwt")
    # What the workload identity webhook would inject; ignored by the other two samples' modes.
    env = (
        {"AZURE_FEDERATED_TOKEN_FILE": str(token)} if method is AuthMethod.WORKLOAD_IDENTITY else {}
    )
    loaded = load_cloud_config(SAMPLES / sample, environ=env)
    assert loaded.warnings == ()
    assert resolve_auth(loaded.config, env).method is method
    assert loaded.config.load_balancer_name == "kubeegressgateway-ilb"
    assert loaded.config.load_balancer_resource_group == loaded.config.resource_group


def test_an_environment_file_overrides_login_and_arm_together() -> None:
    document = {
        "activeDirectoryEndpoint": "https://adfs.local.azurestack.external/",
        "resourceManagerEndpoint": "https://management.local.azurestack.external/",
        "tokenAudience": "https://management.adfs.azurestack.local/abc",
    }
    env = apply_environment_file(AZURE_PUBLIC_CLOUD, document, "/etc/azurestack.json")
    assert env.authority_host == "https://adfs.local.azurestack.external"
    assert env.resource_manager_url == "https://management.local.azurestack.external"
    assert env.credential_scopes == ("https://management.adfs.azurestack.local/abc/.default",)
    assert not env.well_known_authority


def test_an_environment_file_needs_both_arm_keys_to_move_arm() -> None:
    document = {"resourceManagerEndpoint": "https://management.local/"}
    env = apply_environment_file(AZURE_PUBLIC_CLOUD, document, "/etc/azurestack.json")
    assert env == AZURE_PUBLIC_CLOUD


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        (["not", "an", "object"], "is not a JSON object"),
        ({"activeDirectoryEndpoint": 42}, "activeDirectoryEndpoint must be a string"),
        ({"activeDirectoryEndpoint": "http://adfs.local"}, "is not an https URL"),
    ],
)
def test_a_bad_environment_file_is_rejected_naming_it(document: object, fragment: str) -> None:
    with pytest.raises(CloudEnvironmentError) as caught:
        apply_environment_file(AZURE_PUBLIC_CLOUD, document, "/e.json")
    assert "AZURE_ENVIRONMENT_FILEPATH file /e.json" in str(caught.value)
    assert fragment in str(caught.value)


def test_azure_stack_without_endpoint_is_fine_with_an_environment_file(tmp_path: Path) -> None:
    text = json.dumps(
        {
            "cloud": "AzureStackCloud",
            "disableAzureStackCloud": True,
            "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "subscriptionId": "9e2f1a3c-4b5d-4e6f-8a7b-1c2d3e4f5a6b",
            "useManagedIdentityExtension": True,
            "location": "local",
            "resourceGroup": "rg",
            "vnetName": "vnet",
            "subnetName": "subnet",
        }
    )
    env = {"AZURE_ENVIRONMENT_FILEPATH": str(tmp_path / "env.json")}
    assert parse_cloud_config(text, "azure.json", environ=env).config.cloud == "AzureStackCloud"
    with pytest.raises(CloudConfigError, match="resourceManagerEndpoint: is empty"):
        parse_cloud_config(text, "azure.json", environ={})
