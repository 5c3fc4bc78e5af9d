"""The identity side of the emulator: the cloud metadata document and a Microsoft Entra
(v2.0) token endpoint that azure-identity's ClientSecretCredential and certificate/assertion
credentials accept."""

from __future__ import annotations

import secrets
import time
from typing import Any

from sim.arm.errors import ArmError

# From api-version 2022-09-01 the metadata endpoint returns a list of clouds.
_LIST_FROM = "2022-09-01"
AUDIENCES = ["https://management.core.windows.net/", "https://management.azure.com/"]
TOKEN_LIFETIME = 3599


def metadata_document(base_url: str, api_version: str | None) -> Any:
    cloud = {
        "name": "AzureCloud",
        "portal": base_url,
        "resourceManager": base_url + "/",
        "authentication": {
            "loginEndpoint": base_url,
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
    if api_version is not None and api_version >= _LIST_FROM:
        return [cloud]
    return cloud


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
