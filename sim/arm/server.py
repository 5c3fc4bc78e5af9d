"""The ARM emulator: an aiohttp HTTPS server that the real azure-mgmt-* and azure-identity clients
talk to with nothing changed but base_url, connection_verify and the credential."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from sim.arm import compute, identity, ids, lro, network
from sim.arm.body import JsonObject, merge
from sim.arm.errors import ArmError, another_operation_in_progress, bad_request, not_found
from sim.arm.faults import FaultRule, Faults, rule_from_json
from sim.arm.ids import ArmPath
from sim.arm.request_log import LoggedRequest, RequestLog
from sim.arm.resource_body import WriteContext
from sim.arm.seed import seed_topology
from sim.arm.store import STATE_FILE, Operation, Resource, Store, Transaction
from sim.tls import ensure_server_certificate
from sim.topology import Topology

log = logging.getLogger(__name__)

API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-(preview|beta|privatepreview|alpha))?$")
MAX_BODY = 4 * 1024 * 1024
DEFAULT_PAGE_SIZE = 100
SAVE_DELAY = 0.05  # seconds; bounds how much a crash can lose
_OPENID = re.compile(r"^/([^/]+)/v2\.0/\.well-known/openid-configuration$")
_TOKEN = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")
_WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE", "POST"})

Prepare = Callable[[WriteContext], Resource]
PREPARE: dict[str, Prepare] = {
    ids.RESOURCE_GROUPS: network.prepare_resource_group,
    ids.VIRTUAL_NETWORKS: network.prepare_vnet,
    ids.SUBNETS: network.prepare_subnet,
    ids.LOAD_BALANCERS: network.prepare_load_balancer,
    ids.PUBLIC_IP_PREFIXES: network.prepare_public_ip_prefix,
    ids.PUBLIC_IP_ADDRESSES: network.prepare_public_ip,
    ids.NETWORK_INTERFACES: network.prepare_nic,
    ids.VMSS: compute.prepare_vmss,
    ids.VMSS_VMS: compute.prepare_vmss_vm,
    ids.VIRTUAL_MACHINES: compute.prepare_vm,
}
# Read-only through ARM: created as a side effect of scale set instances.
READ_ONLY_TYPES = frozenset({ids.VMSS_VM_NICS, ids.VMSS_VM_PUBLIC_IPS})
# Collections that gather records from below a scale set (the network API's VMSS views).
AGGREGATES = {
    "microsoft.compute/virtualmachinescalesets/networkinterfaces": ids.VMSS_VM_NICS,
    "microsoft.compute/virtualmachinescalesets/publicipaddresses": ids.VMSS_VM_PUBLIC_IPS,
}
ACTIONS = {(ids.VMSS, "manualupgrade")}


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
    return _json(exc.body(), exc.status, {"x-ms-failure-cause": "gateway", **exc.headers})


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
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # tls_dir: where the CA lives when several servers share one (the dev stack's state dir).
        self._cert = ensure_server_certificate(Path(tls_dir or self.state_dir), "arm")
        self.ca_path: Path = self._cert.ca_path
        self._host = host
        self._port = port
        self.page_size = page_size
        self._state_path = self.state_dir / STATE_FILE
        self.store = Store.load(self._state_path)
        if latency:
            self.store.latency.update({k: float(v) for k, v in latency.items()})
        self.request_log = RequestLog()
        self.faults = Faults()
        self.issued_tokens: set[str] = set()
        self._runner: web.AppRunner | None = None
        self._save_handle: asyncio.TimerHandle | None = None
        lro.settle(self.store, time.time())

    # Lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
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
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"https://{self._host}:{self._port}"

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
        if replace:
            self.store.latency.clear()
        self.store.latency.update({k: float(v) for k, v in latency.items()})
        self._save()

    def set_provisioning_state(self, resource_id: str, state: str) -> JsonObject:
        resource = self.store.get(resource_id)
        if resource is None:
            raise not_found(resource_id)
        resource.properties["provisioningState"] = state
        self._save()
        return self.render(resource)

    def resource(self, resource_id: str) -> JsonObject | None:
        """The resource as a GET would return it (None when absent)."""
        lro.settle(self.store, time.time())
        found = self.store.get(resource_id)
        return None if found is None else self.render(found)

    def _save(self) -> None:
        """Persist soon: writes that arrive together share one save (stop() flushes)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush()
            return
        if self._save_handle is None:
            self._save_handle = loop.call_later(SAVE_DELAY, self._flush)

    def _flush(self) -> None:
        if self._save_handle is not None:
            self._save_handle.cancel()
            self._save_handle = None
        self.store.save(self._state_path)

    # Dispatch --------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        try:
            if path.startswith("/_emulator/"):
                return await self._control(request)
            if path.startswith("/metadata/endpoints"):
                return _json(identity.metadata_document(self.url, request.query.get("api-version")))
            if _OPENID.match(path) or _TOKEN.match(path):
                return await self._identity(request)
        except ArmError as exc:
            return _error(exc)
        except web.HTTPException as exc:
            return _error(ArmError(exc.status, exc.reason.replace(" ", ""), exc.text or ""))
        status = 500
        resource_type: str | None = None
        try:
            resource_type, response = await self._arm(request)
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
            raise
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
            return _json(identity.openid_configuration(self.url, m.group(1)))
        if request.method != "POST":
            raise ArmError(405, "MethodNotAllowed", "Use POST for the token endpoint.")
        form = {k: str(v) for k, v in (await request.post()).items()}
        try:
            token, body = identity.issue_token(form)
        except identity.TokenError as exc:
            return _json(exc.body(), exc.status)
        self.issued_tokens.add(token)
        return _json(body)

    async def _arm(self, request: web.Request) -> tuple[str | None, web.Response]:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise identity.unauthorized(self.url)
        api_version = request.query.get("api-version")
        if api_version is None:
            raise bad_request(
                "The api-version query parameter (?api-version=) is required for all requests.",
                "MissingApiVersionParameter",
            )
        if not API_VERSION.match(api_version):
            raise bad_request(
                f"The api-version '{api_version[:40]}' is invalid. The supported versions are "
                "of the form YYYY-MM-DD[-preview].",
                "InvalidApiVersionParameter",
            )
        path = ids.parse_path(request.path)
        resource_type = path.resource_type
        method = request.method
        raw = await request.read() if method in ("PUT", "PATCH", "POST") else b""
        if lro.settle(self.store, time.time()):
            self._save()
        rule = self.faults.pick(method, resource_type, lro=method in _WRITE_METHODS)
        if rule is not None and rule.effect == "drop":
            raise _Drop
        if rule is not None and rule.effect != "fail-operation":
            raise rule.error()
        fail = rule.operation_error() if rule is not None else None
        return resource_type, self._route(request, path, method, raw, fail)

    def _route(
        self,
        request: web.Request,
        path: ArmPath,
        method: str,
        raw: bytes,
        fail: JsonObject | None,
    ) -> web.Response:
        types_lower = tuple(t.lower() for t in path.types)
        if len(types_lower) == 2 and types_lower[0] == "locations" and path.resource_group is None:
            if method != "GET" or path.is_collection:
                raise ArmError(405, "MethodNotAllowed", "Operation status is read-only.")
            return self._operation(path, request)
        if method == "GET":
            return self._collection(request, path) if path.is_collection else self._get(path)
        if method == "POST" and path.is_collection:
            return self._action(request, path, raw, fail)
        if path.is_collection:
            raise ArmError(
                405, "MethodNotAllowed", f"The method {method} is not allowed on a collection."
            )
        if method in ("PUT", "PATCH"):
            return self._put(request, path, method, raw, fail)
        if method == "DELETE":
            return self._delete(request, path, fail)
        raise ArmError(405, "MethodNotAllowed", f"The method {method[:10]} is not supported.")

    # Reads -----------------------------------------------------------------------------------

    def render(self, resource: Resource) -> JsonObject:
        body = copy.deepcopy(resource.body)
        body.setdefault("properties", {})
        kind = resource.type
        if kind == ids.VIRTUAL_NETWORKS:
            network.render_vnet(self.store, body, self.render)
        elif kind == ids.SUBNETS:
            network.render_subnet(self.store, body)
        elif kind == ids.LOAD_BALANCERS:
            network.render_load_balancer(self.store, body)
        elif kind == ids.PUBLIC_IP_PREFIXES:
            network.render_public_ip_prefix(self.store, body)
        elif kind in (ids.PUBLIC_IP_ADDRESSES, ids.VMSS_VM_PUBLIC_IPS):
            network.render_public_ip(self.store, body)
        elif kind in (ids.NETWORK_INTERFACES, ids.VMSS_VM_NICS):
            network.render_nic(self.store, body)
        return body

    def _missing(self, path: ArmPath) -> ArmError:
        rg_id = path.resource_group_id
        if rg_id is not None and self.store.get(rg_id) is None:
            return ArmError(
                404,
                "ResourceGroupNotFound",
                f"Resource group '{path.resource_group}' could not be found.",
            )
        parent = path.parent()
        if parent is not None and self.store.get(parent.key) is None:
            return ArmError(
                404,
                "ParentResourceNotFound",
                f"Failed to perform the requested operation on nested resource type "
                f"'{path.types[-1]}' with name '{path.name}'. Parent resource "
                f"'{parent.id}' was not found.",
            )
        return not_found(path.id)

    def _known_type(self, path: ArmPath) -> str:
        canonical = path.canonical_type
        if canonical is None:
            raise ArmError(
                400,
                "InvalidResourceType",
                f"The resource type '{'/'.join(path.types)[:80]}' could not be found in the "
                f"namespace '{path.namespace[:60]}'.",
            )
        return canonical

    def _get(self, path: ArmPath) -> web.Response:
        if path.canonical_type is None:
            return self._get_embedded(path)
        found = self.store.get(path.key)
        if found is None:
            raise self._missing(path)
        body = self.render(found)
        return _json(body, headers={"ETag": str(body.get("etag", ""))})

    def _get_embedded(self, path: ArmPath) -> web.Response:
        parent = path.parent()
        parent_type = parent.canonical_type if parent is not None else None
        children = ids.EMBEDDED_CHILDREN.get(parent_type or "")
        if parent is None or parent_type is None or children is None:
            self._known_type(path)
            raise AssertionError("unreachable")
        key = children.get(path.types[-1].lower())
        if key is None:
            self._known_type(path)
        owner = self.store.get(parent.key)
        if owner is None:
            raise self._missing(path)
        body = self.render(owner)
        for item in body["properties"].get(key, []):
            if str(item.get("name", "")).lower() == path.name.lower():
                return _json(item)
        raise not_found(path.id)

    def _collection(self, request: web.Request, path: ArmPath) -> web.Response:
        items = [self.render(r) for r in self._list(path)]
        token = request.query.get("$skiptoken", "0")
        if not token.isdigit() or int(token) > len(items):
            raise bad_request("The $skiptoken is invalid.", "InvalidSkipToken")
        start = int(token)
        page = items[start : start + self.page_size]
        out: JsonObject = {"value": page}
        if start + self.page_size < len(items):
            version = request.query.get("api-version", "")
            out["nextLink"] = (
                f"{self.url}{path.id}?api-version={version}&$skiptoken={start + self.page_size}"
            )
        return _json(out)

    def _list(self, path: ArmPath) -> list[Resource]:
        type_lower = path.resource_type.lower()
        parent = path.parent()
        if type_lower in AGGREGATES and parent is not None:
            prefix = parent.key + "/"
            found = [
                r for r in self.store.of_type(AGGREGATES[type_lower]) if r.key.startswith(prefix)
            ]
        elif path.canonical_type is not None:
            if parent is not None:
                if self.store.get(parent.key) is None:
                    raise self._missing(path.child("x", "x").parent() or path)
                prefix = parent.key + "/"
            elif path.resource_group is not None:
                if self.store.get(path.resource_group_id or "") is None:
                    raise self._missing(path)
                prefix = (path.resource_group_id or "").lower() + "/"
            else:
                prefix = f"/subscriptions/{path.subscription}/".lower()
            found = [r for r in self.store.of_type(path.canonical_type) if r.key.startswith(prefix)]
        else:
            if parent is not None and ids.EMBEDDED_CHILDREN.get(
                parent.canonical_type or "", {}
            ).get(path.types[-1].lower()):
                owner = self.store.get(parent.key)
                if owner is None:
                    raise self._missing(path)
                key = ids.EMBEDDED_CHILDREN[owner.type][path.types[-1].lower()]
                items = self.render(owner)["properties"].get(key, [])
                return [Resource(str(i["id"]), owner.type, i) for i in items]
            self._known_type(path)
            found = []
        if path.canonical_type == ids.VMSS_VMS:
            return sorted(found, key=lambda r: int(str(r.body.get("instanceId", "0"))))
        return sorted(found, key=lambda r: r.key)

    def _operation(self, path: ArmPath, request: web.Request) -> web.Response:
        op = self.store.operations.get(path.name)
        if op is None:
            raise not_found(path.id)
        now = time.time()
        if path.types[1].lower() == "operationresults":
            if not op.done:
                return web.Response(
                    status=202,
                    headers={
                        "Location": f"{self.url}{op.result_path}?api-version={op.api_version}",
                        "Retry-After": lro.poll_hint(op, now),
                    },
                )
            if op.error is not None:
                raise ArmError(400, str(op.error.get("code")), str(op.error.get("message")))
            if op.method == "DELETE":
                return web.Response(status=204)
            return _json({}) if op.method == "POST" else self._get(ids.parse_path(op.resource_id))
        headers = {} if op.done else {"Retry-After": lro.poll_hint(op, now)}
        return _json(lro.status_body(op, now), headers=headers)

    # Writes ----------------------------------------------------------------------------------

    def _latency(self, method: str, resource_type: str, action: str | None = None) -> float:
        short = ids.short_type(resource_type)
        table = {k.lower(): v for k, v in self.store.latency.items()}
        candidates = []
        if action:
            candidates += [f"{method} {short}/{action}", f"{method} {resource_type}/{action}"]
        candidates += [f"{method} {short}", f"{method} {resource_type}"]
        for key in candidates:
            if key.lower() in table:
                return max(0.0, table[key.lower()])
        return 0.0

    def _check_conflicts(self, key: str) -> None:
        for op in self.store.pending_operations():
            other = op.resource_id.lower()
            if other == key or key.startswith(other + "/") or other.startswith(key + "/"):
                raise another_operation_in_progress(op.resource_id)

    def _check_preconditions(self, request: web.Request, existing: Resource | None) -> None:
        if_match = request.headers.get("If-Match")
        if if_match is not None:
            if existing is None:
                raise ArmError(
                    412, "PreconditionFailed", "If-Match was given but the resource does not exist."
                )
            current = str(existing.body.get("etag", ""))
            if if_match.strip() != "*" and if_match.strip() != current:
                raise ArmError(
                    412,
                    "PreconditionFailed",
                    f"The If-Match value {if_match[:80]} does not match the current ETag "
                    f"{current} of {existing.id}.",
                )
        if_none = request.headers.get("If-None-Match")
        if if_none is not None and if_none.strip() == "*" and existing is not None:
            raise ArmError(412, "PreconditionFailed", f"The resource {existing.id} already exists.")

    def _start_operation(
        self,
        method: str,
        resource: Resource,
        path: ArmPath,
        fail: JsonObject | None,
        action: str | None = None,
        api_version: str = "",
    ) -> Operation:
        location = str(resource.body.get("location") or "global")
        op = Operation(
            id=str(uuid.uuid4()),
            method=method,
            resource_id=resource.id,
            resource_type=resource.type,
            subscription=path.subscription,
            namespace=path.namespace,
            location=location,
            started=time.time(),
            duration=self._latency(method, resource.type, action),
            error=fail,
            action=action,
            api_version=api_version,
        )
        self.store.operations[op.id] = op
        self._forget_old_operations()
        if op.duration <= 0:
            lro.finish(self.store, op)
        return op

    def _forget_old_operations(self) -> None:
        finished = [o for o in self.store.operations.values() if o.done]
        for op in finished[: max(0, len(finished) - 100)]:
            del self.store.operations[op.id]

    def _lro_headers(self, op: Operation, *, location: bool) -> dict[str, str]:
        query = f"?api-version={op.api_version}"
        headers = {"Azure-AsyncOperation": self.url + op.status_path + query}
        if location:
            headers["Location"] = self.url + op.result_path + query
            headers["Retry-After"] = "0" if op.done else lro.poll_hint(op, time.time())
        return headers

    def _parse_body(self, raw: bytes) -> JsonObject:
        try:
            data = json.loads(raw.decode("utf-8")) if raw.strip() else None
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise bad_request(
                f"The request content was invalid and could not be deserialized: {exc}."
            ) from exc
        if not isinstance(data, dict):
            raise bad_request("The request content must be a JSON object.", "InvalidRequestContent")
        return data

    def _put(
        self, request: web.Request, path: ArmPath, method: str, raw: bytes, fail: JsonObject | None
    ) -> web.Response:
        canonical = self._known_type(path)
        if canonical in READ_ONLY_TYPES:
            raise ArmError(
                405, "MethodNotAllowed", f"{canonical} is read-only; change its scale set instead."
            )
        if canonical != ids.RESOURCE_GROUPS:
            if path.resource_group is None:
                raise bad_request("Resources must be created inside a resource group.")
            if self.store.get(path.resource_group_id or "") is None:
                raise self._missing(path)
            parent = path.parent()
            if parent is not None and self.store.get(parent.key) is None:
                raise self._missing(path)
        existing = self.store.get(path.key)
        self._check_preconditions(request, existing)
        body = self._parse_body(raw)
        if method == "PATCH":
            if existing is None:
                raise self._missing(path)
            body = merge(self.render(existing), body)
        if canonical != ids.RESOURCE_GROUPS:
            self._check_conflicts(path.key)
        tx = Transaction(self.store)
        prepared = PREPARE[canonical](WriteContext(tx, path, body, existing))
        if canonical == ids.RESOURCE_GROUPS:
            tx.put(prepared)
            tx.commit()
            self._save()
            rendered = self.render(prepared)
            return _json(rendered, 200 if existing else 201)
        prepared.properties["provisioningState"] = "Updating" if existing else "Creating"
        tx.put(prepared)
        tx.commit()
        op = self._start_operation(
            method, prepared, path, fail, api_version=request.query.get("api-version", "")
        )
        self._save()
        stored = self.store.get(path.key)
        assert stored is not None
        rendered = self.render(stored)
        status = 200 if existing is not None or method == "PATCH" else 201
        headers = {"ETag": str(rendered.get("etag", "")), **self._lro_headers(op, location=False)}
        return _json(rendered, status, headers)

    def _delete(self, request: web.Request, path: ArmPath, fail: JsonObject | None) -> web.Response:
        canonical = self._known_type(path)
        if canonical in READ_ONLY_TYPES:
            raise ArmError(405, "MethodNotAllowed", f"{canonical} cannot be deleted directly.")
        if (
            canonical != ids.RESOURCE_GROUPS
            and self.store.get(path.resource_group_id or "") is None
        ):
            raise self._missing(path)
        existing = self.store.get(path.key)
        self._check_preconditions(request, existing)
        if existing is None:
            return web.Response(status=204)
        self._check_conflicts(existing.key)
        if canonical != ids.RESOURCE_GROUPS:
            network.check_delete(self.store, existing)
        existing.properties["provisioningState"] = "Deleting"
        op = self._start_operation(
            "DELETE", existing, path, fail, api_version=request.query.get("api-version", "")
        )
        self._save()
        return web.Response(status=202, headers=self._lro_headers(op, location=True))

    def _action(
        self, request: web.Request, path: ArmPath, raw: bytes, fail: JsonObject | None
    ) -> web.Response:
        target = path.parent()
        action = path.types[-1].lower()
        if target is None or (target.canonical_type, action) not in ACTIONS:
            raise ArmError(
                400,
                "InvalidResourceType",
                f"The action '{path.types[-1][:40]}' is not supported on "
                f"'{path.resource_type[:80]}'.",
            )
        resource = self.store.get(target.key)
        if resource is None:
            raise self._missing(target)
        self._check_conflicts(resource.key)
        body = self._parse_body(raw) if raw.strip() else {}
        tx = Transaction(self.store)
        compute.manual_upgrade(tx, resource, body)
        tx.commit()
        op = self._start_operation(
            "POST", resource, target, fail, action, request.query.get("api-version", "")
        )
        self._save()
        return web.Response(status=202, headers=self._lro_headers(op, location=True))

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
        return self._parse_body(await request.read())
