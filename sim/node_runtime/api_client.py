"""The node runtime's client of the Kubernetes API: plain JSON over aiohttp with the node's client
certificate from its kubeconfig.

The error classes are drawn here, at the top, and `error_for_status` is the one place that reads
an HTTP status; callers catch `NotFound`, `Conflict`, `Gone`, ... and never look at codes.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import yaml

Json = dict[str, Any]
MERGE_PATCH: Final = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH: Final = "application/strategic-merge-patch+json"


class ApiError(Exception):
    """The API server answered with an error status (or a watch ERROR event)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    """409: an optimistic-concurrency conflict or AlreadyExists."""


class Gone(ApiError):
    """410: the resourceVersion a watch resumes from was compacted; relist."""


class Forbidden(ApiError):
    pass


class Invalid(ApiError):
    """422 (or 400): the object was refused as invalid."""


class Unavailable(ApiError):
    """Transient: 429, 5xx, or the connection failed."""


def error_for_status(status: int, body: Any) -> ApiError:
    """The error class for an HTTP status and its Status body (or a watch ERROR event's)."""
    reason = str(body.get("reason", "")) if isinstance(body, dict) else ""
    message = str(body.get("message", body)) if isinstance(body, dict) else str(body)[:500]
    if status == 404:
        return NotFound(status, reason or "NotFound", message)
    if status == 409:
        return Conflict(status, reason or "Conflict", message)
    if status == 410:
        return Gone(status, reason or "Gone", message)
    if status in (401, 403):
        return Forbidden(status, reason or "Forbidden", message)
    if status in (400, 422):
        return Invalid(status, reason or "Invalid", message)
    if status == 429 or status >= 500:
        return Unavailable(status, reason or "Unavailable", message)
    return ApiError(status, reason or "Error", message)


@dataclass(frozen=True)
class Kubeconfig:
    server: str
    ca: Path
    client_cert: Path
    client_key: Path

    @property
    def host(self) -> str:
        return urlsplit(self.server).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.server).port or 443


def load_kubeconfig(path: Path, scratch: Path) -> Kubeconfig:
    """The current context's server and certificate files; inline `*-data` fields are written
    under `scratch` (mode 0600) since ssl wants files."""
    config = yaml.safe_load(path.read_text())
    contexts = {c["name"]: c["context"] for c in config.get("contexts", [])}
    context = contexts[config["current-context"]]
    cluster = {c["name"]: c["cluster"] for c in config["clusters"]}[context["cluster"]]
    user = {u["name"]: u["user"] for u in config["users"]}[context["user"]]

    def file_of(entry: Mapping[str, Any], field: str, name: str) -> Path:
        if field in entry:
            return Path(entry[field])
        data = entry.get(f"{field}-data")
        if data is None:
            raise ValueError(f"{path}: no {field} or {field}-data")
        scratch.mkdir(parents=True, exist_ok=True)
        target = scratch / name
        target.write_bytes(base64.b64decode(data))
        target.chmod(0o600)
        return target

    return Kubeconfig(
        server=str(cluster["server"]).rstrip("/"),
        ca=file_of(cluster, "certificate-authority", "ca.pem"),
        client_cert=file_of(user, "client-certificate", "client.crt"),
        client_key=file_of(user, "client-key", "client.key"),
    )


class ApiClient:
    """JSON requests to one API server. Connection failures surface as `Unavailable`."""

    def __init__(
        self, kubeconfig: Kubeconfig, *, user_agent: str = "egressgw-node-runtime"
    ) -> None:
        self.kubeconfig = kubeconfig
        ctx = ssl.create_default_context(cafile=str(kubeconfig.ca))
        ctx.load_cert_chain(str(kubeconfig.client_cert), str(kubeconfig.client_key))
        self._ssl = ctx
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ApiClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl, limit=32),
            headers={"User-Agent": self._user_agent, "Accept": "application/json"},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use ApiClient as an async context manager"
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> Json:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else {}
        try:
            async with self.session.request(
                method,
                self.kubeconfig.server + path,
                data=data,
                params=params,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                text = await response.text()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            raise Unavailable(0, "ConnectionFailed", f"{method} {path}: {err!r}") from err
        try:
            payload: Any = json.loads(text) if text else {}
        except ValueError:
            payload = text
        if status >= 400:
            raise error_for_status(status, payload)
        return payload if isinstance(payload, dict) else {}

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Json:
        return await self.request("GET", path, params=params)

    async def create(self, path: str, body: Json) -> Json:
        return await self.request("POST", path, body=body)

    async def replace(self, path: str, body: Json) -> Json:
        return await self.request("PUT", path, body=body)

    async def patch(self, path: str, body: Json, content_type: str = MERGE_PATCH) -> Json:
        return await self.request("PATCH", path, body=body, content_type=content_type)

    async def delete(self, path: str, body: Json | None = None) -> Json:
        return await self.request("DELETE", path, body=body)

    async def watch(self, path: str, params: Mapping[str, str]) -> AsyncIterator[Json]:
        """The events of one watch request, until the server ends it. An ERROR event is raised
        as its error (410 → Gone)."""
        query = {**params, "watch": "true"}
        try:
            async with self.session.get(
                self.kubeconfig.server + path,
                params=query,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None),
            ) as response:
                if response.status >= 400:
                    text = await response.text()
                    try:
                        raise error_for_status(response.status, json.loads(text))
                    except ValueError:
                        raise error_for_status(response.status, text) from None
                buffer = b""
                async for chunk in response.content.iter_any():
                    buffer += chunk
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        if not line.strip():
                            continue
                        event: Json = json.loads(line)
                        if event.get("type") == "ERROR":
                            status = event.get("object", {})
                            raise error_for_status(int(status.get("code", 500)), status)
                        yield event
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            raise Unavailable(0, "ConnectionFailed", f"watch {path}: {err!r}") from err
