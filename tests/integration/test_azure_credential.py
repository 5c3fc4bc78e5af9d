"""Real tokens for every credential kind a cloud config can describe, from real azure-identity
aio credentials (as the controller uses them) against the IMDS stand-in and the ARM emulator's
AAD endpoints; and the `resourceManagerEndpoint` path end to end, down to azure-mgmt-* aio
clients listing resources."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.mgmt.network.models import LoadBalancer

from egressgw.azure_cloud import AZURE_PUBLIC_CLOUD, CloudEnvironment, CloudEnvironmentError
from egressgw.azure_credential import (
    azure_clients_from_config,
    build_async_credential,
    make_management_clients,
    resolve_cloud_environment,
)
from egressgw.cloud_config import AuthMethod, CloudConfig, CloudConfigError, load_cloud_config
from sim.arm.server import ArmEmulator
from sim.imds import ImdsEmulator, ManagedIdentity
from sim.tls import ensure_server_certificate
from sim.topology import Topology
from tests.fixtures.arm import CLIENT_SECRET
from tests.fixtures.identity import ClientCertificate

WriteConfig = Callable[..., Path]


async def fetch_token(
    config: CloudConfig, cloud: CloudEnvironment, *, verify: bool | str = True
) -> AccessToken:
    """One token through the aio credential, the way the controller uses it."""
    arm = build_async_credential(config, cloud, connection_verify=verify)
    async with arm.credential:
        return await arm.credential.get_token(*arm.credential_scopes)


# --- managed identity against the IMDS stand-in -----------------------------------------------


def managed_identity_config(
    write_cloud_config: WriteConfig, arm_topology: Topology, identity: str = ""
) -> CloudConfig:
    document: dict[str, Any] = {
        "cloud": "AzurePublicCloud",
        "tenantId": arm_topology.tenant_id,
        "subscriptionId": arm_topology.subscription_id,
        "useManagedIdentityExtension": True,
        "userAssignedIdentityID": identity,
        "location": arm_topology.location,
        "resourceGroup": arm_topology.resource_group,
        "vnetName": arm_topology.vnet_name,
        "subnetName": arm_topology.gateway_subnet_name,
    }
    return load_cloud_config(write_cloud_config(document)).config


def claims(token: str) -> dict[str, Any]:
    import base64

    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


@pytest.mark.parametrize("select", ["system", "client-id", "resource-id"])
async def test_managed_identity_gets_the_selected_identitys_token(
    imds: ImdsEmulator,
    write_cloud_config: WriteConfig,
    arm_topology: Topology,
    select: str,
) -> None:
    user = imds.user_identities[1]  # not the first, so "any user identity" would not pass
    wanted: ManagedIdentity | None = {
        "system": imds.system_identity,
        "client-id": user,
        "resource-id": user,
    }[select]
    assert wanted is not None
    identity = {"system": "", "client-id": user.client_id, "resource-id": user.resource_id}[select]
    config = managed_identity_config(write_cloud_config, arm_topology, identity)

    token = await fetch_token(config, AZURE_PUBLIC_CLOUD)

    assert claims(token.token)["oid"] == wanted.object_id
    request = imds.token_requests[-1]
    assert request.identity == wanted
    assert request.resource == "https://management.core.windows.net"
    if select == "resource-id":
        assert request.msi_res_id == user.resource_id  # IMDS's own parameter name


async def test_an_identity_the_vm_does_not_have_is_reported(
    imds: ImdsEmulator, write_cloud_config: WriteConfig, arm_topology: Topology
) -> None:
    config = managed_identity_config(
        write_cloud_config, arm_topology, "0badc0de-0000-4000-8000-000000000000"
    )
    with pytest.raises(ClientAuthenticationError):
        await fetch_token(config, AZURE_PUBLIC_CLOUD)
    assert imds.token_requests[-1].identity is None


# --- service principal and workload identity against the ARM emulator's AAD endpoints ---------


async def emulator_cloud(config: CloudConfig, emulator: ArmEmulator) -> CloudEnvironment:
    return await resolve_cloud_environment(config, connection_verify=str(emulator.ca_path))


async def test_service_principal_secret(
    clean_azure_env: pytest.MonkeyPatch,
    arm_emulator: ArmEmulator,
    arm_cloud_config: dict[str, Any],
    write_cloud_config: WriteConfig,
) -> None:
    config = load_cloud_config(write_cloud_config(arm_cloud_config)).config
    cloud = await emulator_cloud(config, arm_emulator)
    token = await fetch_token(config, cloud, verify=str(arm_emulator.ca_path))
    assert token.token in arm_emulator.issued_tokens


@pytest.mark.parametrize("form", ["pem", "pfx-with-password"])
async def test_service_principal_certificate(
    clean_azure_env: pytest.MonkeyPatch,
    arm_emulator: ArmEmulator,
    arm_cloud_config: dict[str, Any],
    write_cloud_config: WriteConfig,
    client_certificate: ClientCertificate,
    form: str,
) -> None:
    document = {k: v for k, v in arm_cloud_config.items() if k != "aadClientSecret"}
    if form == "pem":
        document["aadClientCertPath"] = str(client_certificate.pem_path)
    else:
        document["aadClientCertPath"] = str(client_certificate.pfx_path)
        document["aadClientCertPassword"] = client_certificate.pfx_password
    config = load_cloud_config(write_cloud_config(document)).config
    cloud = await emulator_cloud(config, arm_emulator)
    token = await fetch_token(config, cloud, verify=str(arm_emulator.ca_path))
    assert token.token in arm_emulator.issued_tokens


async def test_a_wrong_certificate_password_is_a_config_error_without_the_password(
    clean_azure_env: pytest.MonkeyPatch,
    arm_emulator: ArmEmulator,
    arm_cloud_config: dict[str, Any],
    write_cloud_config: WriteConfig,
    client_certificate: ClientCertificate,
) -> None:
    document = {k: v for k, v in arm_cloud_config.items() if k != "aadClientSecret"}
    document["aadClientCertPath"] = str(client_certificate.pfx_path)
    document["aadClientCertPassword"] = "Wrong-Guess-42"
    path = write_cloud_config(document)
    config = load_cloud_config(path).config
    cloud = await emulator_cloud(config, arm_emulator)
    with pytest.raises(CloudConfigError) as caught:
        await fetch_token(config, cloud, verify=str(arm_emulator.ca_path))
    message = str(caught.value)
    assert message.startswith(f"{path}: aadClientCertPath: cannot load")
    assert "Wrong-Guess-42" not in message


@pytest.mark.parametrize("via", ["config", "webhook-env"])
async def test_workload_identity(
    clean_azure_env: pytest.MonkeyPatch,
    tmp_path: Path,
    arm_emulator: ArmEmulator,
    arm_cloud_config: dict[str, Any],
    write_cloud_config: WriteConfig,
    via: str,
) -> None:
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2ln")
    document = {k: v for k, v in arm_cloud_config.items() if k != "aadClientSecret"}
    if via == "config":
        document["useFederatedWorkloadIdentityExtension"] = True
        document["aadFederatedTokenFile"] = str(token_file)
    else:
        clean_azure_env.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    config = load_cloud_config(write_cloud_config(document)).config
    cloud = await emulator_cloud(config, arm_emulator)
    arm = build_async_credential(config, cloud, connection_verify=str(arm_emulator.ca_path))
    await arm.credential.close()
    assert arm.auth.method is AuthMethod.WORKLOAD_IDENTITY
    token = await fetch_token(config, cloud, verify=str(arm_emulator.ca_path))
    assert token.token in arm_emulator.issued_tokens


# --- resourceManagerEndpoint end to end -------------------------------------------------------

LB_NAME = "kubeegressgateway-ilb"


def internal_lb(config: CloudConfig, subnet_id: str) -> LoadBalancer:
    return LoadBalancer(
        {
            "location": config.location,
            "sku": {"name": "Standard", "tier": "Regional"},
            "properties": {
                "frontendIPConfigurations": [
                    {"name": "fe", "properties": {"subnet": {"id": subnet_id}}}
                ],
                "backendAddressPools": [{"name": "pool"}],
            },
        }
    )


async def test_endpoint_override_end_to_end_with_a_service_principal(
    clean_azure_env: pytest.MonkeyPatch,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
    arm_cloud_config: dict[str, Any],
    write_cloud_config: WriteConfig,
) -> None:
    ca = str(arm_emulator.ca_path)
    config = load_cloud_config(write_cloud_config(arm_cloud_config)).config

    cloud = await resolve_cloud_environment(config, connection_verify=ca)
    assert cloud.resource_manager_url == arm_emulator.url
    assert cloud.authority_host == arm_emulator.url
    assert not cloud.well_known_authority

    arm = build_async_credential(config, cloud, connection_verify=ca)
    async with (
        arm.credential,
        make_management_clients(config, arm, connection_verify=ca, polling_interval=0) as clients,
    ):
        subnet = await clients.network.subnets.get(
            config.vnet_resource_group, config.vnet_name, config.subnet_name
        )
        poller = await clients.network.load_balancers.begin_create_or_update(
            config.load_balancer_resource_group,
            config.load_balancer_name,
            internal_lb(config, str(subnet.id)),
        )
        created = await poller.result()
        assert created.frontend_ip_configurations[0].private_ip_address
        names = [
            lb.name
            async for lb in clients.network.load_balancers.list(config.load_balancer_resource_group)
        ]
        assert names == [LB_NAME]
        scale_sets = [
            s.name
            async for s in clients.compute.virtual_machine_scale_sets.list(config.resource_group)
        ]
        assert arm_topology.vmss_pools[0].vmss_name in scale_sets


async def test_endpoint_override_end_to_end_with_a_managed_identity(
    imds: ImdsEmulator,
    arm_emulator: ArmEmulator,
    arm_cloud_config: dict[str, Any],
    write_cloud_config: WriteConfig,
) -> None:
    ca = str(arm_emulator.ca_path)
    document = {
        k: v for k, v in arm_cloud_config.items() if k not in ("aadClientId", "aadClientSecret")
    }
    document["useManagedIdentityExtension"] = True
    document["userAssignedIdentityID"] = imds.user_identities[0].client_id
    config = load_cloud_config(write_cloud_config(document)).config
    cloud = await resolve_cloud_environment(config, connection_verify=ca)
    arm = build_async_credential(config, cloud, connection_verify=ca)
    async with (
        arm.credential,
        make_management_clients(config, arm, connection_verify=ca, polling_interval=0) as clients,
    ):
        names = [
            lb.name
            async for lb in clients.network.load_balancers.list(config.load_balancer_resource_group)
        ]
    assert names == []
    # The token was asked for the audience the emulator's metadata announced.
    assert imds.token_requests[-1].resource == cloud.audience.rstrip("/")
    assert imds.token_requests[-1].identity == imds.user_identities[0]


async def test_an_untrusted_endpoint_certificate_fails_the_metadata_lookup(
    clean_azure_env: pytest.MonkeyPatch,
    arm_emulator: ArmEmulator,
    arm_cloud_config: dict[str, Any],
    write_cloud_config: WriteConfig,
) -> None:
    config = load_cloud_config(write_cloud_config(arm_cloud_config)).config
    with pytest.raises(CloudEnvironmentError, match="certificate verify failed") as caught:
        await resolve_cloud_environment(config)  # system trust store only
    assert f"{arm_emulator.url}/metadata/endpoints" in str(caught.value)


async def test_the_whole_flow_logs_no_secret(
    clean_azure_env: pytest.MonkeyPatch,
    arm_emulator: ArmEmulator,
    arm_cloud_config: dict[str, Any],
    write_cloud_config: WriteConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        config = load_cloud_config(write_cloud_config(arm_cloud_config)).config
        cloud = await emulator_cloud(config, arm_emulator)
        token = await fetch_token(config, cloud, verify=str(arm_emulator.ca_path))
    assert "Azure credential: service principal secret" in caplog.text
    assert CLIENT_SECRET not in caplog.text
    assert token.token in arm_emulator.issued_tokens


async def test_azure_stack_environment_file_instead_of_an_endpoint(
    clean_azure_env: pytest.MonkeyPatch,
    tmp_path: Path,
    arm_emulator: ArmEmulator,
    arm_cloud_config: dict[str, Any],
    write_cloud_config: WriteConfig,
) -> None:
    environment_file = tmp_path / "azurestack.json"
    environment_file.write_text(
        json.dumps(
            {
                "name": "AzureStackCloud",
                "activeDirectoryEndpoint": arm_emulator.url + "/",
                "resourceManagerEndpoint": arm_emulator.url + "/",
                "tokenAudience": "https://management.core.windows.net/",
            }
        )
    )
    clean_azure_env.setenv("AZURE_ENVIRONMENT_FILEPATH", str(environment_file))
    document = {k: v for k, v in arm_cloud_config.items() if k != "resourceManagerEndpoint"}
    config = load_cloud_config(write_cloud_config(document)).config
    ca = str(arm_emulator.ca_path)
    cloud = await resolve_cloud_environment(config, connection_verify=ca)
    assert (cloud.resource_manager_url, cloud.authority_host) == (
        arm_emulator.url,
        arm_emulator.url,
    )
    arm = build_async_credential(config, cloud, connection_verify=ca)
    async with (
        arm.credential,
        make_management_clients(config, arm, connection_verify=ca, polling_interval=0) as clients,
    ):
        vnet = await clients.network.virtual_networks.get(
            config.vnet_resource_group, config.vnet_name
        )
    assert vnet.name == config.vnet_name


async def test_one_step_clients_from_the_config_file(
    clean_azure_env: pytest.MonkeyPatch,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
    arm_cloud_config: dict[str, Any],
    write_cloud_config: WriteConfig,
) -> None:
    config = load_cloud_config(write_cloud_config(arm_cloud_config)).config
    async with azure_clients_from_config(
        config, connection_verify=str(arm_emulator.ca_path), polling_interval=0
    ) as (network, compute):
        vnets = [v.name async for v in network.virtual_networks.list(config.vnet_resource_group)]
        vms = [v.name async for v in compute.virtual_machines.list(config.resource_group)]
    assert vnets == [arm_topology.vnet_name]
    assert arm_topology.vm_pools[0].vm_name(0) in vms


async def test_clients_send_the_configured_user_agent_and_token(
    imds: ImdsEmulator,
    tmp_path: Path,
    write_cloud_config: WriteConfig,
    arm_topology: Topology,
) -> None:
    # A bare TLS endpoint that records what arrives: the ARM emulator does not log headers.
    seen: list[dict[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({"value": []})

    app = web.Application()
    app.router.add_get("/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    cert = ensure_server_certificate(tmp_path / "tls", "recorder")
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=cert.ssl_context())
    await site.start()
    try:
        port = runner.addresses[0][1]
        document: dict[str, Any] = {
            "cloud": "AzurePublicCloud",
            "subscriptionId": arm_topology.subscription_id,
            "useManagedIdentityExtension": True,
            "userAgent": "my-company-egress/2.1",
            "location": arm_topology.location,
            "resourceGroup": arm_topology.resource_group,
            "vnetName": arm_topology.vnet_name,
            "subnetName": arm_topology.gateway_subnet_name,
        }
        config = load_cloud_config(write_cloud_config(document)).config
        cloud = dataclasses.replace(
            AZURE_PUBLIC_CLOUD, resource_manager_url=f"https://127.0.0.1:{port}"
        )
        arm = build_async_credential(config, cloud)
        async with (
            arm.credential,
            make_management_clients(config, arm, connection_verify=str(cert.ca_path)) as clients,
        ):
            assert [lb async for lb in clients.network.load_balancers.list("rg")] == []
    finally:
        await runner.cleanup()
    assert seen[0]["User-Agent"] == "my-company-egress/2.1"
    assert seen[0]["Authorization"].startswith("Bearer ")
    system = imds.system_identity
    assert system is not None
    assert claims(seen[0]["Authorization"][7:])["oid"] == system.object_id
