"""Managed identity the App Service way (IDENTITY_ENDPOINT + IDENTITY_HEADER), from the IMDS
stand-in, through azure-identity's own ManagedIdentityCredential: it picks that protocol from the
two variables alone, as every Azure SDK does."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import ManagedIdentityCredential

from sim.imds import APP_SERVICE_TOKEN_PATH, ImdsEmulator

SCOPE = "https://management.azure.com/.default"


async def test_system_assigned_token_the_app_service_way(
    imds: ImdsEmulator, clean_azure_env: pytest.MonkeyPatch
) -> None:
    clean_azure_env.delenv("AZURE_POD_IDENTITY_AUTHORITY_HOST")
    for name, value in imds.app_service_environment().items():
        clean_azure_env.setenv(name, value)

    async with ManagedIdentityCredential() as credential:
        token = await credential.get_token(SCOPE)

    (request,) = imds.token_requests
    assert request.protocol == "app-service"
    assert request.resource == "https://management.azure.com"
    assert request.identity is imds.system_identity
    assert token.token.count(".") == 2 and token.expires_on > 0


async def test_user_assigned_by_client_id(
    imds: ImdsEmulator, clean_azure_env: pytest.MonkeyPatch
) -> None:
    clean_azure_env.delenv("AZURE_POD_IDENTITY_AUTHORITY_HOST")
    for name, value in imds.app_service_environment().items():
        clean_azure_env.setenv(name, value)
    wanted = imds.user_identities[1]

    async with ManagedIdentityCredential(client_id=wanted.client_id) as credential:
        await credential.get_token(SCOPE)

    assert [r.identity for r in imds.token_requests] == [wanted]


async def test_a_wrong_identity_header_gets_no_token(
    imds: ImdsEmulator, clean_azure_env: pytest.MonkeyPatch
) -> None:
    clean_azure_env.delenv("AZURE_POD_IDENTITY_AUTHORITY_HOST")
    clean_azure_env.setenv("IDENTITY_ENDPOINT", imds.url + APP_SERVICE_TOKEN_PATH)
    clean_azure_env.setenv("IDENTITY_HEADER", "not-the-secret")

    async with ManagedIdentityCredential() as credential:
        with pytest.raises(ClientAuthenticationError):
            await credential.get_token(SCOPE)

    assert imds.token_requests == []
