"""The identity side of the emulator: the cloud metadata document and a Microsoft Entra
(v2.0) token endpoint that azure-identity's ClientSecretCredential and certificate/assertion
credentials accept."""

from __future__ import annotations

import secrets
import time
from typing import Any

from sim.arm.api_versions import API_VERSION_SHAPE
from sim.arm.errors import ArmError

# /metadata/endpoints answers a list of clouds from api-version 2019-05-01 on (what azclient,
# the Azure CLI and the other SDKs ask for); older versions (e.g. go-autorest's 2015-01-01, the
# Azure Stack tools' 1.0) get the single legacy object.
LIST_FROM = "2019-05-01"
LEGACY_VERSIONS = ("1.0",)
AUDIENCES = ["https://management.core.windows.net/", "https://management.azure.com/"]
TOKEN_LIFETIME = 3599


def metadata_document(base_url: str, api_version: str | None) -> Any:
    """The `/metadata/endpoints` answer in the shape ARM gives for `api_version`."""
    if not api_version:
        raise ArmError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    login = base_url + "/"
    if api_version in LEGACY_VERSIONS or (
        API_VERSION_SHAPE.match(api_version) and api_version < LIST_FROM
    ):
        return {
            "galleryEndpoint": base_url + "/",
            "graphEndpoint": base_url + "/",
            "portalEndpoint": base_url + "/",
            "authentication": {"loginEndpoint": login, "audiences": AUDIENCES},
        }
    if api_version != "latest" and not API_VERSION_SHAPE.match(api_version):
        raise ArmError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{api_version[:40]}' is invalid. Use a date such as "
            f"'{LIST_FROM}' or 'latest'.",
        )
    cloud = {
        "name": "AzureCloud",
        "portal": base_url,
        "resourceManager": base_url + "/",
        "authentication": {
            "loginEndpoint": login,
            "audiences": AUDIENCES,
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "graph": base_url + "/",
        "graphAudience": base_url + "/",
        "microsoftGraphResourceId": base_url + "/",
        "activeDirectoryDataLake": base_url + "/",
        "batch": base_url + "/",
        "media": base_url,
        "sqlManagement": base_url + "/",
        "vmImageAliasDoc": base_url + "/",
        "suffixes": {
            "acrLoginServer": "azurecr.io",
            "keyVaultDns": "vault.azure.net",
            "mhsmDns": "managedhsm.azure.net",
            "sqlServerHostname": "database.windows.net",
            "storage": "core.windows.net",
            "storageSyncEndpointSuffix": "afs.azure.net",
        },
    }
    return [cloud]


def openid_configuration(base_url: str, tenant: str) -> dict[str, Any]:
    issuer = f"{base_url}/{tenant}/v2.0"
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{base_url}/{tenant}/oauth2/v2.0/authorize",
        "token_endpoint": f"{base_url}/{tenant}/oauth2/v2.0/token",
        "device_authorization_endpoint": f"{base_url}/{tenant}/oauth2/v2.0/devicecode",
        "end_session_endpoint": f"{base_url}/{tenant}/oauth2/v2.0/logout",
        "jwks_uri": f"{base_url}/{tenant}/discovery/v2.0/keys",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "tenant_region_scope": None,
        "cloud_instance_name": "emulator",
    }


class TokenError(Exception):
    """An OAuth error response (status 400/401 with error/error_description)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "error_description": self.description,
            "error_codes": [7000215 if self.error == "invalid_client" else 900144],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        }


def issue_token(form: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """Check a client-credentials request and return (token, response body)."""
    if form.get("grant_type") != "client_credentials":
        raise TokenError(
            400,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        )
    if not form.get("client_id"):
        raise TokenError(400, "invalid_request", "AADSTS900144: 'client_id' is missing.")
    if not form.get("scope"):
        raise TokenError(400, "invalid_request", "AADSTS900144: 'scope' is missing.")
    if not (form.get("client_secret") or form.get("client_assertion")):
        raise TokenError(
            401,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided (no client_secret or client_assertion).",
        )
    token = "emu." + secrets.token_urlsafe(24)
    return token, {
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME,
        "ext_expires_in": TOKEN_LIFETIME,
        "access_token": token,
    }


def unauthorized(base_url: str) -> ArmError:
    return ArmError(
        401,
        "AuthenticationFailed",
        "Authentication failed. The 'Authorization' header is missing.",
        headers={
            "WWW-Authenticate": (
                f'Bearer authorization_uri="{base_url}/common", error="invalid_token", '
                'error_description="The authentication failed because of missing '
                "'Authorization' header.\""
            )
        },
    )
