"""The identity endpoints and ARM's request checks (bearer token, api-version)."""

from __future__ import annotations

import datetime
import json
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from azure.identity import CertificateCredential, ClientSecretCredential, WorkloadIdentityCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential
from azure.mgmt.network import NetworkManagementClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from sim.arm.server import ArmEmulator
from sim.topology import Topology

SCOPE = "https://management.azure.com/.default"


def test_client_secret_credential_gets_a_token_the_sdk_uses(
    arm_credential: ClientSecretCredential,
    arm_emulator: ArmEmulator,
    network_client: Callable[..., NetworkManagementClient],
    arm_topology: Topology,
) -> None:
    token = arm_credential.get_token(SCOPE)
    assert token.token in arm_emulator.issued_tokens
    assert token.expires_on > 0
    network_client().virtual_networks.get(arm_topology.resource_group, arm_topology.vnet_name)
    assert arm_emulator.request_log.count("GET", "virtualNetworks") == 1


async def test_async_credential_gets_a_token(
    arm_async_credential: AsyncClientSecretCredential, arm_emulator: ArmEmulator
) -> None:
    token = await arm_async_credential.get_token(SCOPE)
    assert token.token in arm_emulator.issued_tokens


@pytest.fixture
def tls(arm_emulator: ArmEmulator) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(arm_emulator.ca_path))


async def _metadata(arm_emulator: ArmEmulator, tls: ssl.SSLContext, query: str) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{arm_emulator.url}/metadata/endpoints{query}", ssl=tls) as resp,
    ):
        return resp.status, await resp.json()


@pytest.mark.parametrize("version", ["2019-05-01", "2022-09-01", "latest"])
async def test_metadata_lists_clouds_from_2019_05_01_on(
    arm_emulator: ArmEmulator, tls: ssl.SSLContext, version: str
) -> None:
    status, clouds = await _metadata(arm_emulator, tls, f"?api-version={version}")
    assert status == 200
    assert isinstance(clouds, list)
    (cloud,) = clouds
    assert cloud["name"] == "AzureCloud"
    assert cloud["resourceManager"] == arm_emulator.url + "/"
    assert cloud["authentication"]["loginEndpoint"] == arm_emulator.url + "/"
    assert "https://management.azure.com/" in cloud["authentication"]["audiences"]


@pytest.mark.parametrize("version", ["2015-01-01", "1.0"])
async def test_metadata_answers_older_versions_with_the_legacy_object(
    arm_emulator: ArmEmulator, tls: ssl.SSLContext, version: str
) -> None:
    status, legacy = await _metadata(arm_emulator, tls, f"?api-version={version}")
    assert status == 200
    assert isinstance(legacy, dict)
    assert legacy["authentication"]["loginEndpoint"] == arm_emulator.url + "/"
    assert legacy["authentication"]["audiences"][0] == "https://management.core.windows.net/"
    assert {"galleryEndpoint", "graphEndpoint", "portalEndpoint"} <= set(legacy)
    assert "resourceManager" not in legacy  # clients take the endpoint they asked


@pytest.mark.parametrize(
    ("query", "code"),
    [("", "MissingApiVersionParameter"), ("?api-version=someday", "InvalidApiVersionParameter")],
)
async def test_metadata_refuses_a_missing_or_malformed_version(
    arm_emulator: ArmEmulator, tls: ssl.SSLContext, query: str, code: str
) -> None:
    status, body = await _metadata(arm_emulator, tls, query)
    assert (status, body["error"]["code"]) == (400, code)


async def test_links_name_the_address_a_client_reached_it_by(
    arm_emulator: ArmEmulator, tls: ssl.SSLContext
) -> None:
    """A client that reaches the emulator by another of its certificate's names (a dev pod by
    the services address) is sent on by that name, not by the one the emulator listens on."""
    other = arm_emulator.url.replace("127.0.0.1", "localhost")
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{other}/metadata/endpoints?api-version=2022-09-01", ssl=tls
        ) as resp:
            (cloud,) = await resp.json()
        # A name outside the certificate is not echoed back.
        async with session.get(
            f"{arm_emulator.url}/metadata/endpoints?api-version=2022-09-01",
            ssl=tls,
            headers={"Host": "evil.example:1"},
        ) as resp:
            (spoofed,) = await resp.json()
    assert cloud["authentication"]["loginEndpoint"].rstrip("/") == other
    assert cloud["resourceManager"] == other + "/"
    assert spoofed["authentication"]["loginEndpoint"].rstrip("/") == arm_emulator.url


async def test_token_endpoint_refuses_requests_without_a_secret(
    arm_emulator: ArmEmulator, tls: ssl.SSLContext, arm_topology: Topology
) -> None:
    url = f"{arm_emulator.url}/{arm_topology.tenant_id}/oauth2/v2.0/token"
    async with aiohttp.ClientSession() as session:
        async with session.post(
            url,
            data={"grant_type": "client_credentials", "client_id": "x", "scope": SCOPE},
            ssl=tls,
        ) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"] == "invalid_client"
        async with session.post(
            url,
            data={
                "grant_type": "client_credentials",
                "client_id": "x",
                "scope": SCOPE,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": "header.payload.signature",
            },
            ssl=tls,
        ) as resp:
            assert resp.status == 200
            body = await resp.json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"] in arm_emulator.issued_tokens


async def test_arm_requires_bearer_token_and_api_version(
    arm_emulator: ArmEmulator, tls: ssl.SSLContext, arm_topology: Topology
) -> None:
    url = f"{arm_emulator.url}{arm_topology.resource_group_id}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}?api-version=2021-04-01", ssl=tls) as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Bearer ")
            assert (await resp.json())["error"]["code"] == "AuthenticationFailed"
        headers = {"Authorization": "Bearer t"}
        async with session.get(url, headers=headers, ssl=tls) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["code"] == "MissingApiVersionParameter"
        async with session.get(f"{url}?api-version=2021-04-01", headers=headers, ssl=tls) as resp:
            assert resp.status == 200
            assert json.loads(await resp.text())["name"] == arm_topology.resource_group
    assert [e.api_version for e in arm_emulator.request_log.entries] == [
        "2021-04-01",
        None,
        "2021-04-01",
    ]


def _certificate_pem(path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # MSAL signs RS256
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "egressgw test client")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(key_pem + cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_certificate_and_workload_identity_credentials_get_tokens(
    arm_emulator: ArmEmulator, arm_topology: Topology, tmp_path: Path
) -> None:
    common: dict[str, Any] = {
        "authority": f"127.0.0.1:{arm_emulator.port}",
        "disable_instance_discovery": True,
        "connection_verify": str(arm_emulator.ca_path),
    }
    with CertificateCredential(
        arm_topology.tenant_id,
        "client-with-certificate",
        certificate_path=str(_certificate_pem(tmp_path / "client.pem")),
        **common,
    ) as cert_cred:
        assert cert_cred.get_token(SCOPE).token in arm_emulator.issued_tokens
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2ln")
    with WorkloadIdentityCredential(
        tenant_id=arm_topology.tenant_id,
        client_id="workload-client",
        token_file_path=str(token_file),
        **common,
    ) as wi_cred:
        assert wi_cred.get_token(SCOPE).token in arm_emulator.issued_tokens
