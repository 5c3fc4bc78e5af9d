"""The ARM emulator: an aiohttp HTTPS server that the real azure-mgmt-* and azure-identity clients
talk to with nothing changed but base_url, connection_verify and the credential."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from aiohttp import web

from sim.arm import api_versions, identity, ids, lro
from sim.arm.api import ArmApi, ArmRequest, ArmResponse
from sim.arm.body import JsonObject
from sim.arm.errors import ArmError, bad_request, not_found
from sim.arm.faults import DROPS, FaultRule, Faults, rule_from_json
from sim.arm.request_log import LoggedRequest, RequestLog
from sim.arm.seed import seed_topology
from sim.arm.store import STATE_FILE, Store, Transaction
from sim.tls import DEFAULT_HOSTS, ensure_server_certificate
from sim.topology import Topology

# The URL the current request reached the emulator by, when that is one of its certificate's
# names: links it hands out (operation status, the identity documents) then work from wherever
# the client is, e.g. a pod of the dev stack's node network (egressgw/dev/service_front.py).
_REQUEST_BASE: ContextVar[str | None] = ContextVar("arm_request_base", default=None)

log = logging.getLogger(__name__)

MAX_BODY = 4 * 1024 * 1024
DEFAULT_PAGE_SIZE = 100
SAVE_DELAY = 0.05  # seconds; bounds how much a crash can lose
_OPENID = re.compile(r"^/([^/]+)/v2\.0/\.well-known/openid-configuration$")
_TOKEN = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")
_WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE", "POST"})


class _Drop(Exception):
    """Close the connection without answering (fault injection)."""


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=dict(headers or {}),
    )


def _error(exc: ArmError) -> web.Response:
    return _json(exc.body(), exc.status, exc.headers)


def _resource_type(path: str) -> str | None:
    try:
        return ids.parse_path(path).resource_type
    except ArmError:
        return None


def _response(answer: ArmResponse) -> web.Response:
    if answer.body is None:
        return web.Response(status=answer.status, headers=answer.headers)
    return _json(answer.body, answer.status, answer.headers)


class ArmEmulator:
    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: Mapping[str, float] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        tls_dir: Path | None = None,
        tls_hosts: tuple[str, ...] = DEFAULT_HOSTS,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # tls_dir: where the CA lives when several servers share one (the dev stack's state dir).
        # tls_hosts: the names clients dial it by (the dev stack adds its services address).
        self._cert = ensure_server_certificate(Path(tls_dir or self.state_dir), "arm", tls_hosts)
        self.ca_path: Path = self._cert.ca_path
        self._host = host
        self._port = port
        self._tls_hosts = frozenset(tls_hosts)
        self._state_path = self.state_dir / STATE_FILE
        self.store = Store.load(self._state_path)
        if latency:
            self.store.latency.update({k: float(v) for k, v in latency.items()})
        self.request_log = RequestLog()
        self.faults = Faults()
        self.issued_tokens: set[str] = set()
        self._runner: web.AppRunner | None = None
        self._save_handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.api = ArmApi(self.store, self._base_url, self._save, page_size)
        lro.settle(self.store, time.time())

    # Lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self._host, self._port, ssl_context=self._cert.ssl_context()
        )
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None)
        assert sockets
        self._port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._flush()

    @property
    def page_size(self) -> int:
        """Items per LIST page; larger collections answer with a nextLink."""
        return self.api.page_size

    @page_size.setter
    def page_size(self, value: int) -> None:
        self.api.page_size = value

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"https://{self._host}:{self._port}"

    def _base_url(self) -> str:
        return _REQUEST_BASE.get() or self.url

    def _reached_as(self, request: web.Request) -> str | None:
        host = request.url.host or ""
        return f"https://{request.host}" if host in self._tls_hosts else None

    # In-process controls ---------------------------------------------------------------------

    def seed(self, topology: Topology) -> None:
        """Create the topology's resources that are missing (idempotent)."""
        tx = Transaction(self.store)
        seed_topology(tx, topology)
        if tx.changed:
            tx.commit()
            self._save()

    def set_latency(self, latency: Mapping[str, float], *, replace: bool = False) -> None:
        """Operation durations keyed like "PUT loadBalancers" (method + resource type)."""
        table = {} if replace else dict(self.store.latency)
        table.update({k: float(v) for k, v in latency.items()})
        self.store.latency = (
            table  # swapped whole: requests on another thread never see it half-done
        )
        self._save()

    def set_provisioning_state(self, resource_id: str, state: str) -> JsonObject:
        resource = self.store.get(resource_id)
        if resource is None:
            raise not_found(resource_id)
        resource.properties["provisioningState"] = state
        self._save()
        return self.api.render(resource)

    def resource(self, resource_id: str) -> JsonObject | None:
        """The resource as a GET would return it (None when absent)."""
        lro.settle(self.store, time.time())
        found = self.store.get(resource_id)
        return None if found is None else self.api.render(found)

    def _save(self) -> None:
        """Persist soon: writes that arrive together share one save (stop() flushes).

        Called from another thread (in-process controls while the server runs elsewhere), the
        save is handed to the server's loop so that it never races a request being served.
        """
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        served_by = self._loop if self._runner is not None else None
        if served_by is not None and current is not served_by:
            served_by.call_soon_threadsafe(self._save)
            return
        if current is None:
            self._flush()
        elif self._save_handle is None:
            self._save_handle = current.call_later(SAVE_DELAY, self._flush)

    def _flush(self) -> None:
        if self._save_handle is not None:
            self._save_handle.cancel()
            self._save_handle = None
        self.store.save(self._state_path)

    # Dispatch --------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token = _REQUEST_BASE.set(self._reached_as(request))
        try:
            return await self._dispatch(request)
        finally:
            _REQUEST_BASE.reset(token)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        try:
            if path.startswith("/_emulator/"):
                return await self._control(request)
            if path.startswith("/metadata/endpoints"):
                return _json(
                    identity.metadata_document(self._base_url(), request.query.get("api-version"))
                )
            if _OPENID.match(path) or _TOKEN.match(path):
                return await self._identity(request)
        except ArmError as exc:
            return _error(exc)
        except web.HTTPException as exc:
            return _error(ArmError(exc.status, exc.reason.replace(" ", ""), exc.text or ""))
        status = 500
        resource_type = _resource_type(path)
        try:
            response = await self._arm(request)
            status = response.status
            return response
        except ArmError as exc:
            status = exc.status
            return _error(exc)
        except web.HTTPException as exc:
            status = exc.status
            return _error(ArmError(exc.status, exc.reason.replace(" ", ""), exc.text or ""))
        except _Drop:
            status = 0
            transport = request.transport
            if transport is not None:
                transport.abort()
            # Nothing reaches the client: the connection is already gone.
            return web.Response(status=499)
        except Exception:
            log.exception("arm emulator: unexpected error on %s %s", request.method, path)
            return _error(ArmError(500, "InternalServerError", "Unexpected emulator error."))
        finally:
            self.request_log.record(
                LoggedRequest(
                    method=request.method,
                    path=path,
                    resource_type=resource_type,
                    api_version=request.query.get("api-version"),
                    status=status,
                    if_match=request.headers.get("If-Match"),
                    timestamp=time.time(),
                )
            )

    async def _identity(self, request: web.Request) -> web.Response:
        if request.method == "GET" and (m := _OPENID.match(request.path)):
            return _json(identity.openid_configuration(self._base_url(), m.group(1)))
        if request.method != "POST":
            raise ArmError(405, "MethodNotAllowed", "Use POST for the token endpoint.")
        form = {k: str(v) for k, v in (await request.post()).items()}
        try:
            token, body = identity.issue_token(form)
        except identity.TokenError as exc:
            return _json(exc.body(), exc.status)
        self.issued_tokens.add(token)
        return _json(body)

    async def _arm(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise identity.unauthorized(self._base_url())
        api_version = request.query.get("api-version")
        if api_version is None:
            raise bad_request(
                "The api-version query parameter (?api-version=) is required for all requests.",
                "MissingApiVersionParameter",
            )
        path = ids.parse_path(request.path)
        resource_type = path.resource_type
        method = request.method
        raw = await request.read() if method in ("PUT", "PATCH", "POST") else b""
        if lro.settle(self.store, time.time()):
            self._save()
        # ARM checks the version before any provider sees the request (faults included).
        api_versions.check(resource_type, api_version, self.api.location_of(path))
        rule = self.faults.pick(method, resource_type, lro=method in _WRITE_METHODS)
        if rule is not None and rule.effect == "drop":
            raise _Drop
        if rule is not None and rule.effect not in DROPS and rule.effect != "fail-operation":
            raise rule.error()
        fail = (
            rule.operation_error()
            if rule is not None and rule.effect != "drop-after-accept"
            else None
        )
        answer = self.api.handle(
            ArmRequest(method, path, request.query, request.headers, raw), fail
        )
        if rule is not None and rule.effect == "drop-after-accept":
            # The write is done (its operation runs); only its answer is lost.
            raise _Drop
        return _response(answer)

    # Control API -----------------------------------------------------------------------------

    async def _control(self, request: web.Request) -> web.Response:
        parts = [p for p in request.path.split("/") if p][1:]
        method = request.method
        if parts == ["health"]:
            return _json({"status": "ok"})
        if parts and parts[0] == "faults":
            if len(parts) == 1 and method == "GET":
                return _json({"value": [r.to_json() for r in self.faults.rules]})
            if len(parts) == 1 and method == "POST":
                rule: FaultRule = rule_from_json(await self._control_json(request))
                self.faults.add(rule)
                return _json(rule.to_json(), 201)
            if len(parts) == 1 and method == "DELETE":
                self.faults.clear()
                return web.Response(status=204)
            if len(parts) == 2 and method == "DELETE":
                if not self.faults.remove(parts[1]):
                    raise not_found(parts[1])
                return web.Response(status=204)
        if parts == ["requests"]:
            if method == "GET":
                return _json({"value": [e.to_json() for e in self.request_log.entries]})
            if method == "DELETE":
                self.request_log.clear()
                return web.Response(status=204)
        if parts == ["latency"]:
            if method == "GET":
                return _json(dict(self.store.latency))
            if method in ("PUT", "PATCH"):
                data = await self._control_json(request)
                if not all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in data.values()
                ):
                    raise bad_request("Latency values must be numbers of seconds.")
                self.set_latency(data, replace=method == "PUT")
                return _json(dict(self.store.latency))
        if parts == ["provisioning-state"] and method == "POST":
            data = await self._control_json(request)
            resource_id, state = data.get("resourceId"), data.get("provisioningState")
            if not isinstance(resource_id, str) or not isinstance(state, str):
                raise bad_request("Give resourceId and provisioningState as strings.")
            return _json(self.set_provisioning_state(resource_id, state))
        raise ArmError(404, "NotFound", f"No emulator control endpoint {request.path[:100]}.")

    async def _control_json(self, request: web.Request) -> JsonObject:
        return ArmApi.parse_body(await request.read())
