"""The suite's clients of one running dev stack: its API server (as the admin), Temporal, the
ARM emulator's control API (faults, request log) and the Azure inventory. Every wait tolerates
the part it talks to being down for a while: the suite kills them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import config as kube_config
from kubernetes_asyncio.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException
from temporalio.client import Client

from contracts import kube_names, resource_names
from egressgw.dev.azure_inventory import resource_inventory

G, V, P = kube_names.API_GROUP, kube_names.API_VERSION, kube_names.SGC_PLURAL
SGC_NAMESPACE = "egressgw-demo"
SECRET_NAMESPACE = "egressgw-system"
# What a part being down looks like from here.
TRANSIENT = (ApiException, aiohttp.ClientError, OSError, asyncio.TimeoutError, RuntimeError)


async def poll(check: Callable[[], Awaitable[bool]], timeout: float, every: float = 0.5) -> bool:
    """True as soon as `check` is; False after `timeout` (a failing check counts as False)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(*TRANSIENT):
            if await check():
                return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(every)


def is_ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return status.get("observedGeneration") == obj["metadata"].get("generation") and any(
        c.get("type") == kube_names.CONDITION_READY and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


@dataclass
class ChaosSession:
    state_dir: Path
    api: ApiClient
    arm_url: str
    http: aiohttp.ClientSession
    temporal_address: str
    _temporal: Client | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, state_dir: Path) -> AsyncIterator[ChaosSession]:
        endpoints = json.loads((state_dir / "endpoints.json").read_text())
        api = await kube_config.new_client_from_config(config_file=str(state_dir / "kubeconfig"))
        tls = ssl.create_default_context(cafile=str(state_dir / "ca.pem"))
        async with api, aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as http:
            yield cls(state_dir, api, endpoints["arm_url"], http, endpoints["temporal_address"])

    # --- Temporal (reconnected after a restart of the server) -------------------------------

    async def temporal(self) -> Client:
        if self._temporal is None:
            self._temporal = await Client.connect(self.temporal_address)
        return self._temporal

    # --- StaticGatewayConfigurations ---------------------------------------------------------

    def _objects(self) -> CustomObjectsApi:
        return CustomObjectsApi(self.api)

    async def get(self, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await self._objects().get_namespaced_custom_object(
                G, V, SGC_NAMESPACE, P, name
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return found

    async def create(self, name: str, spec: dict[str, Any]) -> str:
        """Create, with kubectl's strict field validation; the new object's UID."""
        body = {
            "apiVersion": kube_names.GROUP_VERSION,
            "kind": kube_names.SGC_KIND,
            "metadata": {"name": name, "namespace": SGC_NAMESPACE},
            "spec": spec,
        }
        created: dict[str, Any] = await self._objects().create_namespaced_custom_object(
            G, V, SGC_NAMESPACE, P, body, field_validation="Strict"
        )
        return str(created["metadata"]["uid"])

    async def replace_spec(self, name: str, spec: dict[str, Any]) -> None:
        await self._objects().patch_namespaced_custom_object(
            G, V, SGC_NAMESPACE, P, name, [{"op": "replace", "path": "/spec", "value": spec}]
        )

    async def delete(self, name: str) -> None:
        with contextlib.suppress(ApiException):
            await self._objects().delete_namespaced_custom_object(G, V, SGC_NAMESPACE, P, name)

    async def drop_finalizers(self, name: str) -> None:
        """For a configuration the suite gives up on: let the API server forget it."""
        with contextlib.suppress(ApiException):
            await self._objects().patch_namespaced_custom_object(
                G, V, SGC_NAMESPACE, P, name, {"metadata": {"finalizers": None}}
            )

    async def wait_ready(self, name: str, timeout: float) -> bool:
        async def ready() -> bool:
            obj = await self.get(name)
            return obj is not None and is_ready(obj)

        return await poll(ready, timeout)

    async def wait_condition(self, name: str, timeout: float) -> bool:
        """Until the controller has said something about the object: a condition, not Ready."""

        async def marked() -> bool:
            obj = await self.get(name)
            conditions = ((obj or {}).get("status") or {}).get("conditions") or []
            return any(
                c.get("type") == kube_names.CONDITION_READY and c.get("status") == "False"
                for c in conditions
            )

        return await poll(marked, timeout)

    async def wait_gone(self, name: str, timeout: float) -> bool:
        async def gone() -> bool:
            return await self.get(name) is None

        return await poll(gone, timeout)

    async def gateway_private_key(self, uid: str) -> str | None:
        """The configuration's WireGuard private key, from its Secret (for the secrets scan)."""
        import base64

        try:
            secret = await CoreV1Api(self.api).read_namespaced_secret(
                resource_names.gateway_secret_name(uid), SECRET_NAMESPACE
            )
        except ApiException:
            return None
        data = secret.data or {}
        value = data.get(kube_names.SECRET_PRIVATE_KEY)
        return base64.b64decode(value).decode() if value else None

    # --- Azure ------------------------------------------------------------------------------

    async def inventory(self) -> list[str]:
        return await resource_inventory(self.state_dir / "azure.json", self.state_dir / "ca.pem")

    async def _control(self, method: str, path: str, body: object | None = None) -> Any:
        async with self.http.request(method, f"{self.arm_url}/_emulator/{path}", json=body) as r:
            r.raise_for_status()
            return await r.json() if r.content_type == "application/json" else None

    async def add_fault(self, rule: dict[str, Any]) -> None:
        await self._control("POST", "faults", rule)

    async def clear_faults(self) -> None:
        await self._control("DELETE", "faults")

    async def requests(self) -> list[dict[str, Any]]:
        document: dict[str, list[dict[str, Any]]] = await self._control("GET", "requests")
        return document["value"]

    async def clear_requests(self) -> None:
        await self._control("DELETE", "requests")
