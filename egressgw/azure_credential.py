"""The Azure credential and ARM clients a cloud config describes.

`resolve_auth` (in cloud_config) decides which credential; this module builds it with
azure-identity's aio credentials, pointed at the cloud's login endpoint, and returns it with the
ARM base URL and token scopes to use. A CA bundle for private endpoints (the dev stack's ca.pem) is
a parameter, since the cloud config has no such key.

`azure_clients_from_config` does it all in one step for callers that just want the aio network
and compute clients; `make_management_clients` builds them from an existing credential.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.pipeline.policies import AsyncHTTPPolicy, UserAgentPolicy
from azure.core.rest import AsyncHttpResponse, HttpRequest
from azure.identity.aio import (
    CertificateCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient

from activities.azure.rate_limit import ArmRateLimitPolicy, arm_rate_limit_policy
from egressgw.arm_transport import arm_transport
from egressgw.azure_cloud import (
    AZURE_PUBLIC_CLOUD,
    ENVIRONMENT_FILE_VARIABLE,
    CloudEnvironment,
    CloudEnvironmentError,
    apply_environment_file,
    fetch_cloud_environment,
    is_azure_stack,
    named_cloud,
)
from egressgw.cloud_config import (
    AuthMethod,
    CloudConfig,
    CloudConfigError,
    ManagedIdentityKind,
    ResolvedAuth,
    resolve_auth,
)

_log = logging.getLogger(__name__)

# `True` verifies against the system trust store; a path names a CA bundle file.
ConnectionVerify = bool | str


@dataclass(frozen=True)
class ArmCredential:
    """An aio credential plus where and for what audience to use it."""

    credential: AsyncTokenCredential
    auth: ResolvedAuth
    cloud: CloudEnvironment

    @property
    def base_url(self) -> str:
        return self.cloud.resource_manager_url

    @property
    def credential_scopes(self) -> tuple[str, ...]:
        return self.cloud.credential_scopes


def _named_environment(config: CloudConfig) -> CloudEnvironment:
    # Azure Stack without an endpoint starts from the public cloud, as in azclient, and relies on
    # AZURE_ENVIRONMENT_FILEPATH (validation insists on one or the other).
    return named_cloud(config.cloud) or AZURE_PUBLIC_CLOUD


def _with_environment_file(
    config: CloudConfig, environment: CloudEnvironment, environ: Mapping[str, str] | None
) -> CloudEnvironment:
    env = os.environ if environ is None else environ
    path = env.get(ENVIRONMENT_FILE_VARIABLE, "").strip()
    if not path or not is_azure_stack(config.cloud):
        return environment
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CloudEnvironmentError(
            f"cannot read {ENVIRONMENT_FILE_VARIABLE} file {path}: {err}"
        ) from None
    return apply_environment_file(environment, document, path)


async def resolve_cloud_environment(
    config: CloudConfig,
    *,
    connection_verify: ConnectionVerify = True,
    environ: Mapping[str, str] | None = None,
) -> CloudEnvironment:
    """The named cloud, or what `resourceManagerEndpoint`'s metadata says, then (Azure Stack
    only) AZURE_ENVIRONMENT_FILEPATH's overrides: azclient's order."""
    if config.resource_manager_endpoint:
        environment = await fetch_cloud_environment(
            config.resource_manager_endpoint, config.cloud, connection_verify=connection_verify
        )
    else:
        environment = _named_environment(config)
    return _with_environment_file(config, environment, environ)


# identity_config key for a user-assigned identity's resource ID. The aio credential sends the key
# as the IMDS query parameter verbatim, so it must be IMDS's own name (checked against sim.imds:
# with "resource_id", which the sync credential maps through MSAL, the aio credential silently
# got the system-assigned identity).
_RESOURCE_ID_KEY = "msi_res_id"


def _aad_options(
    auth: ResolvedAuth, cloud: CloudEnvironment, connection_verify: ConnectionVerify
) -> dict[str, Any]:
    options: dict[str, Any] = {
        "authority": cloud.authority_host,
        # MSAL validates unknown authorities against login.microsoftonline.com; Azure Stack and
        # local stand-ins are not in its list.
        "disable_instance_discovery": not cloud.well_known_authority,
    }
    if auth.additionally_allowed_tenants:
        options["additionally_allowed_tenants"] = list(auth.additionally_allowed_tenants)
    if connection_verify is not True:
        options["connection_verify"] = connection_verify
    return options


def _managed_identity_options(auth: ResolvedAuth) -> dict[str, Any]:
    if auth.managed_identity_kind is ManagedIdentityKind.CLIENT_ID:
        return {"client_id": auth.managed_identity_id}
    if auth.managed_identity_kind is ManagedIdentityKind.RESOURCE_ID:
        return {"identity_config": {_RESOURCE_ID_KEY: auth.managed_identity_id}}
    return {}


def _construct(
    config: CloudConfig,
    auth: ResolvedAuth,
    cloud: CloudEnvironment,
    connection_verify: ConnectionVerify,
) -> AsyncTokenCredential:
    if auth.method is AuthMethod.MANAGED_IDENTITY:
        # IMDS is plain http on the node: no authority, no CA bundle.
        return ManagedIdentityCredential(**_managed_identity_options(auth))
    options = _aad_options(auth, cloud, connection_verify)
    if auth.method is AuthMethod.WORKLOAD_IDENTITY:
        return WorkloadIdentityCredential(
            tenant_id=auth.tenant_id,
            client_id=auth.client_id,
            token_file_path=auth.token_file,
            **options,
        )
    if auth.method is AuthMethod.CLIENT_SECRET:
        return ClientSecretCredential(
            auth.tenant_id, auth.client_id, auth.client_secret.reveal(), **options
        )
    try:
        # azclient sends the chain too (SendCertificateChain), which SNI-based apps need.
        return CertificateCredential(
            auth.tenant_id,
            auth.client_id,
            certificate_path=auth.certificate_path,
            password=auth.certificate_password.reveal() or None,
            send_certificate_chain=True,
            **options,
        )
    except (ValueError, TypeError, OSError) as err:
        # The library's messages name the format problem, never the password.
        raise CloudConfigError(
            config.source,
            "aadClientCertPath",
            f"cannot load {auth.certificate_path} as a PEM or PKCS#12 certificate with an RSA "
            f"key (wrong aadClientCertPassword?): {type(err).__name__}: {err}",
        ) from None


def _announce(auth: ResolvedAuth, cloud: CloudEnvironment) -> None:
    _log.info(
        "Azure credential: %s; ARM %s, login %s",
        auth.describe(),
        cloud.resource_manager_url,
        cloud.authority_host,
    )


def build_async_credential(
    config: CloudConfig,
    cloud: CloudEnvironment,
    *,
    connection_verify: ConnectionVerify = True,
    environ: Mapping[str, str] | None = None,
) -> ArmCredential:
    """An azure.identity.aio credential for `config` (precedence: see resolve_auth); close it
    with `await ….close()`."""
    auth = resolve_auth(config, environ)
    credential = _construct(config, auth, cloud, connection_verify)
    _announce(auth, cloud)
    return ArmCredential(credential=credential, auth=auth, cloud=cloud)


@dataclass
class ManagementClients:
    """The aio ARM clients activities use. Closing them leaves the credential open."""

    network: NetworkManagementClient
    compute: ComputeManagementClient

    def __iter__(self) -> Iterator[Any]:
        # `network, compute = clients` reads well at call sites.
        return iter((self.network, self.compute))

    async def close(self) -> None:
        await self.network.close()
        await self.compute.close()

    async def __aenter__(self) -> ManagementClients:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _rate_limit_policy(config: CloudConfig) -> ArmRateLimitPolicy | None:
    limits = config.rate_limit
    if not limits.enabled:
        return None
    _log.info(
        "ARM rate limit (cloudProviderRateLimit): reads %g/s with bursts of %d, writes %g/s "
        "with bursts of %d, for this process",
        limits.qps,
        limits.bucket,
        limits.qps_write,
        limits.bucket_write,
    )
    return arm_rate_limit_policy(limits.qps, limits.bucket, limits.qps_write, limits.bucket_write)


def make_management_clients(
    config: CloudConfig,
    arm: ArmCredential,
    *,
    connection_verify: ConnectionVerify = True,
    polling_interval: float | None = None,
    retry_total: int | None = None,
    observers: Sequence[AsyncHTTPPolicy[HttpRequest, AsyncHttpResponse]] = (),
) -> ManagementClients:
    """Network and compute aio clients for the config's subscription, cloud and user agent.

    `observers` are pipeline policies that see every request sent, after the rate limit (the
    controller's ARM metrics, egressgw/arm_metrics.py).

    `polling_interval` overrides the SDK's 30 s wait between long-running-operation polls when
    ARM sends no Retry-After (tests and the dev stack pass 0). `retry_total=0` turns the SDK's
    own retries off, so that activities see Azure's 429/5xx and Temporal retries them. The
    transport (egressgw/arm_transport.py) never sends a write twice on its own either.

    With `cloudProviderRateLimit: true` both clients share one rate limit policy (its read and
    write token buckets, activities/azure/rate_limit.py), so the limit holds for the process.
    """
    rate_limit = _rate_limit_policy(config)

    def options() -> dict[str, Any]:
        chosen: dict[str, Any] = {
            "base_url": arm.base_url,
            "credential_scopes": list(arm.credential_scopes),
            # azclient replaces the User-Agent with the configured one rather than prefixing
            # it; `user_agent=` would only prefix the SDK's own (checked against a recorder).
            "user_agent_policy": UserAgentPolicy(base_user_agent=config.user_agent),
            "transport": arm_transport(connection_verify),
        }
        if connection_verify is not True:
            chosen["connection_verify"] = connection_verify
        if polling_interval is not None:
            chosen["polling_interval"] = polling_interval
        if retry_total is not None:
            chosen["retry_total"] = retry_total
        per_retry = [*([rate_limit] if rate_limit is not None else []), *observers]
        if per_retry:
            # After the retry policy, so that every request sent takes a token (and is seen).
            chosen["per_retry_policies"] = per_retry
        return chosen

    return ManagementClients(
        network=NetworkManagementClient(arm.credential, config.subscription_id, **options()),
        compute=ComputeManagementClient(arm.credential, config.subscription_id, **options()),
    )


@asynccontextmanager
async def azure_clients_from_config(
    config: CloudConfig,
    *,
    connection_verify: ConnectionVerify = True,
    polling_interval: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> AsyncIterator[ManagementClients]:
    """Everything in one step: resolve the cloud, build the aio credential, open the clients;
    close them all on exit. `async with azure_clients_from_config(cfg) as (network, compute):`"""
    cloud = await resolve_cloud_environment(
        config, connection_verify=connection_verify, environ=environ
    )
    arm = build_async_credential(
        config, cloud, connection_verify=connection_verify, environ=environ
    )
    async with arm.credential:
        clients = make_management_clients(
            config, arm, connection_verify=connection_verify, polling_interval=polling_interval
        )
        async with clients:
            yield clients
