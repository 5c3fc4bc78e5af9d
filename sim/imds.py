"""A stand-in for the Azure Instance Metadata Service (IMDS) of one VM, over plain HTTP.

Serves what egressgw uses: managed identity tokens (`/metadata/identity/oauth2/token`, the
endpoint azure-identity's ManagedIdentityCredential calls; point it here with
AZURE_POD_IDENTITY_AUTHORITY_HOST), the instance document (`/metadata/instance`, read by the
gateway agent to learn its VMSS, resource group, tags and subnet) and the load balancer document
(`/metadata/loadbalancer`). Like the real service it insists on `Metadata: true` and an
api-version, and answers 400 "Identity not found" for an identity the VM does not have (which
azure-identity turns into CredentialUnavailableError; a 404 would make it retry for seconds).

The same identities are also served the App Service / Functions way (`/msi/token`, what every
Azure SDK's ManagedIdentityCredential uses when IDENTITY_ENDPOINT and IDENTITY_HEADER are set
and IDENTITY_SERVER_THUMBPRINT is not): api-version 2019-08-01, the secret in the
`X-IDENTITY-HEADER` header, the identity chosen by `client_id`, `object_id`/`principal_id` or
`mi_res_id`, and `expires_on` in epoch seconds. `app_service_environment()` gives the two
variables.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN_PATH = "/metadata/identity/oauth2/token"
APP_SERVICE_TOKEN_PATH = "/msi/token"
APP_SERVICE_API_VERSION = "2019-08-01"
INSTANCE_PATH = "/metadata/instance"
LOAD_BALANCER_PATH = "/metadata/loadbalancer"
TOKEN_LIFETIME_SECONDS = 3600


@dataclass(frozen=True)
class ManagedIdentity:
    """An identity assigned to the VM; user-assigned ones are selected by any of the three IDs."""

    client_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    object_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    resource_id: str = ""  # empty for the system-assigned identity


@dataclass(frozen=True)
class LoadBalancerFrontend:
    frontend_ip_address: str
    private_ip_address: str


@dataclass(frozen=True)
class InstanceMetadata:
    computer_name: str
    name: str = ""  # the VM (or VMSS instance) name; defaults to computer_name
    vm_scale_set_name: str = ""
    resource_group_name: str = ""
    subscription_id: str = ""
    location: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    private_ip_address: str = ""
    subnet_address: str = ""  # e.g. "10.224.0.0"
    subnet_prefix: str = ""  # e.g. "16"
    mac_address: str = "000D3A000000"
    vm_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    load_balancer_frontends: tuple[LoadBalancerFrontend, ...] = ()

    def document(self) -> dict[str, Any]:
        """The `/metadata/instance` JSON, shaped like api-version 2021-10-01's."""
        name = self.name or self.computer_name
        if self.vm_scale_set_name:
            kind = "virtualMachineScaleSets"
            resource_id = (
                f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group_name}"
                f"/providers/Microsoft.Compute/{kind}/{self.vm_scale_set_name}"
                f"/virtualMachines/{name.rsplit('_', 1)[-1]}"
            )
        else:
            resource_id = (
                f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group_name}"
                f"/providers/Microsoft.Compute/virtualMachines/{name}"
            )
        ipv4_addresses = (
            [{"privateIpAddress": self.private_ip_address, "publicIpAddress": ""}]
            if self.private_ip_address
            else []
        )
        subnets = (
            [{"address": self.subnet_address, "prefix": self.subnet_prefix}]
            if self.subnet_address
            else []
        )
        return {
            "compute": {
                "azEnvironment": "AzurePublicCloud",
                "location": self.location,
                "name": name,
                "osProfile": {"computerName": self.computer_name},
                "osType": "Linux",
                "resourceGroupName": self.resource_group_name,
                "resourceId": resource_id,
                "subscriptionId": self.subscription_id,
                "tags": ";".join(f"{k}:{v}" for k, v in self.tags.items()),
                "tagsList": [{"name": k, "value": v} for k, v in self.tags.items()],
                "vmId": self.vm_id,
                "vmScaleSetName": self.vm_scale_set_name,
            },
            "network": {
                "interface": [
                    {
                        "ipv4": {"ipAddress": ipv4_addresses, "subnet": subnets},
                        "ipv6": {"ipAddress": []},
                        "macAddress": self.mac_address,
                    }
                ]
            },
        }

    def load_balancer_document(self) -> dict[str, Any]:
        return {
            "loadbalancer": {
                "publicIpAddresses": [
                    {
                        "frontendIpAddress": f.frontend_ip_address,
                        "privateIpAddress": f.private_ip_address,
                    }
                    for f in self.load_balancer_frontends
                ],
                "inboundRules": [],
                "outboundRules": [],
            }
        }


@dataclass(frozen=True)
class TokenRequest:
    """One token request as the emulator saw it, for tests to assert on."""

    resource: str
    client_id: str
    object_id: str
    msi_res_id: str
    identity: ManagedIdentity | None  # who got the token; None if refused
    protocol: str = "imds"  # or "app-service" (IDENTITY_ENDPOINT/IDENTITY_HEADER)


def _b64url(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


def _walk(document: Any, path: str) -> Any:
    """Follow `/compute/osProfile/computerName`-style sub-paths, as IMDS allows."""
    node = document
    for part in [p for p in path.split("/") if p]:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(path)
    return node


class ImdsEmulator:
    """One VM's IMDS. `start()` binds `host:port` (0 picks a free port); `url` is its base URL."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        instance: InstanceMetadata | None = None,
        system_identity: ManagedIdentity | None = None,
        user_identities: Sequence[ManagedIdentity] = (),
        tenant_id: str = "72f988bf-86f1-41af-91ab-2d7cd011db47",
        system_assigned: bool = True,
        identity_header: str | None = None,
    ) -> None:
        self._host = host
        # The App Service secret (IDENTITY_HEADER); never logged, compared in constant time.
        self.identity_header = identity_header or secrets.token_urlsafe(24)
        self._port = port
        self.instance = instance or InstanceMetadata(computer_name="vm000000")
        self.system_identity: ManagedIdentity | None = (
            (system_identity or ManagedIdentity()) if system_assigned else None
        )
        self.user_identities: list[ManagedIdentity] = list(user_identities)
        self.tenant_id = tenant_id
        self.token_requests: list[TokenRequest] = []
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None

    @property
    def url(self) -> str:
        if self._bound_port is None:
            raise RuntimeError("ImdsEmulator is not started")
        return f"http://{self._host}:{self._bound_port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(TOKEN_PATH, self._token)
        app.router.add_get(APP_SERVICE_TOKEN_PATH, self._app_service_token)
        app.router.add_get(INSTANCE_PATH, self._instance)
        app.router.add_get(INSTANCE_PATH + "/{path:.*}", self._instance)
        app.router.add_get(LOAD_BALANCER_PATH, self._load_balancer)
        return app

    def app_service_environment(self) -> dict[str, str]:
        """IDENTITY_ENDPOINT and IDENTITY_HEADER for a client that should get its tokens the
        App Service way from this emulator."""
        return {
            "IDENTITY_ENDPOINT": self.url + APP_SERVICE_TOKEN_PATH,
            "IDENTITY_HEADER": self.identity_header,
        }

    async def start(self) -> None:
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        await site.start()
        self._runner = runner
        server = site._server  # aiohttp exposes the bound port only here
        sockets = getattr(server, "sockets", None) or []
        self._bound_port = int(sockets[0].getsockname()[1]) if sockets else self._port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ImdsEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- handlers -------------------------------------------------------------------------

    @staticmethod
    def _precheck(request: web.Request) -> web.Response | None:
        if request.headers.get("Metadata", "").lower() != "true":
            return _error(400, "invalid_request", "Required metadata header not specified")
        if not request.query.get("api-version"):
            return _error(400, "invalid_request", "Required api-version parameter not specified")
        return None

    def _select_identity(self, query: Mapping[str, str]) -> ManagedIdentity | None:
        client_id = query.get("client_id", "").lower()
        object_id = query.get("object_id", "").lower()
        object_id = object_id or query.get("principal_id", "").lower()
        res_id = (query.get("msi_res_id") or query.get("mi_res_id") or "").lower()
        if not (client_id or object_id or res_id):
            return self.system_identity
        for identity in self.user_identities:
            if (
                (client_id and identity.client_id.lower() == client_id)
                or (object_id and identity.object_id.lower() == object_id)
                or (res_id and identity.resource_id.lower() == res_id)
            ):
                return identity
        return None

    def _issue(self, identity: ManagedIdentity, resource: str) -> dict[str, str]:
        now = int(time.time())
        expires_on = now + TOKEN_LIFETIME_SECONDS
        claims = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": expires_on,
            "appid": identity.client_id,
            "oid": identity.object_id,
            "sub": identity.object_id,
            "tid": self.tenant_id,
            "xms_mirid": identity.resource_id or self.instance.document()["compute"]["resourceId"],
        }
        # Shaped like a JWT so that an ARM stand-in can read the caller; not signed.
        token = f"{_b64url({'alg': 'none', 'typ': 'JWT'})}.{_b64url(claims)}."
        return {
            "access_token": token,
            "client_id": identity.client_id,
            "expires_in": str(TOKEN_LIFETIME_SECONDS),
            "expires_on": str(expires_on),
            "ext_expires_in": str(TOKEN_LIFETIME_SECONDS),
            "not_before": str(now),
            "resource": resource,
            "token_type": "Bearer",
        }

    async def _token(self, request: web.Request) -> web.Response:
        refused = self._precheck(request)
        if refused is not None:
            return refused
        query = request.query
        resource = query.get("resource", "")
        if not resource:
            return _error(400, "invalid_request", "Required audience parameter not specified")
        identity = self._select_identity(query)
        self.token_requests.append(
            TokenRequest(
                resource=resource,
                client_id=query.get("client_id", ""),
                object_id=query.get("object_id", ""),
                msi_res_id=query.get("msi_res_id") or query.get("mi_res_id") or "",
                identity=identity,
            )
        )
        if identity is None:
            return _error(400, "invalid_request", "Identity not found")
        return web.json_response(self._issue(identity, resource))

    async def _app_service_token(self, request: web.Request) -> web.Response:
        sent = request.headers.get("X-IDENTITY-HEADER", "")
        if not sent or not hmac.compare_digest(sent.encode(), self.identity_header.encode()):
            return _error(
                401, "invalid_request", "The X-IDENTITY-HEADER header is missing or wrong"
            )
        query = request.query
        version = query.get("api-version", "")
        if version != APP_SERVICE_API_VERSION:
            return _error(
                400,
                "invalid_request",
                f"api-version {version[:20]!r} is not supported; use {APP_SERVICE_API_VERSION}",
            )
        resource = query.get("resource", "")
        if not resource:
            return _error(400, "invalid_request", "Required resource parameter not specified")
        identity = self._select_identity(query)
        self.token_requests.append(
            TokenRequest(
                resource=resource,
                client_id=query.get("client_id", ""),
                object_id=query.get("object_id") or query.get("principal_id") or "",
                msi_res_id=query.get("mi_res_id") or query.get("msi_res_id") or "",
                identity=identity,
                protocol="app-service",
            )
        )
        if identity is None:
            return _error(400, "invalid_request", "Identity not found")
        issued = self._issue(identity, resource)
        return web.json_response(
            {
                "access_token": issued["access_token"],
                "expires_on": issued["expires_on"],
                "resource": resource,
                "token_type": "Bearer",
                "client_id": identity.client_id,
            }
        )

    async def _instance(self, request: web.Request) -> web.Response:
        refused = self._precheck(request)
        if refused is not None:
            return refused
        try:
            node = _walk(self.instance.document(), request.match_info.get("path", ""))
        except KeyError:
            return _error(404, "not_found", "Path not found")
        if request.query.get("format") == "text" and not isinstance(node, dict | list):
            return web.Response(text=str(node), content_type="text/plain")
        return web.json_response(node)

    async def _load_balancer(self, request: web.Request) -> web.Response:
        refused = self._precheck(request)
        if refused is not None:
            return refused
        return web.json_response(self.instance.load_balancer_document())
