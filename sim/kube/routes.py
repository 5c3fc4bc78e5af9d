"""The HTTP face of the emulator: one aiohttp handler that parses, dispatches and encodes."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import yaml
from aiohttp import web

from sim.kube import builtins, discovery, errors, openapi, protobuf, tables
from sim.kube.cluster import Cluster, Event, Watcher, WriteOptions, WriteResult
from sim.kube.errors import ApiError, bad_request
from sim.kube.patching import APPLY, PATCH_TYPES
from sim.kube.paths import ResourcePath, parse_resource_path
from sim.kube.resources import ResourceType
from sim.kube.selectors import (
    FieldSelector,
    LabelSelector,
    parse_field_selector,
    parse_label_selector,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]
MAX_BODY = 3 * 1024 * 1024
_JSON = "application/json"
_TRUE = ("true", "True", "1")
_BODY_TYPES = (_JSON, "application/yaml", protobuf.MEDIA_TYPE)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def json_response(obj: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    headers = {}
    if warnings:
        headers["Warning"] = ", ".join(f"299 - {json.dumps(w)}" for w in warnings)
    return web.Response(body=_dumps(obj), status=status, content_type=_JSON, headers=headers)


def error_response(error: ApiError) -> web.Response:
    return json_response(error.status(), error.code)


def wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    for part in accept.split(","):
        params = {
            p.strip().split("=", 1)[0]: p.strip().split("=", 1)[-1] for p in part.split(";")[1:]
        }
        if params.get("as") == "Table" and params.get("g", "meta.k8s.io") == "meta.k8s.io":
            return True
    return False


def _int_param(query: Mapping[str, str], name: str) -> int:
    raw = query.get(name, "")
    if raw == "":
        return 0
    try:
        value = int(raw)
    except ValueError as exc:
        raise bad_request(f'invalid value for {name}: "{raw}"') from exc
    if value < 0:
        raise bad_request(f"{name}: Invalid value: {value}: must be greater than or equal to 0")
    return value


def _dry_run(request: web.Request) -> bool:
    values = [v for v in request.query.getall("dryRun", []) if v]
    for value in values:
        if value != "All":
            raise bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return bool(values)


class Api:
    """Request handling for a Cluster; `server.KubeEmulator` owns the process-level parts."""

    def __init__(self, cluster: Cluster, token: str, server_address: Callable[[], str]) -> None:
        self.cluster = cluster
        self.token = token
        self.server_address = server_address
        self.bookmark_interval = 10.0
        self._openapi_cache: dict[tuple[int, str], Obj] = {}

    # --- entry point ---------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            if request.path in ("/healthz", "/livez", "/readyz"):
                return web.Response(text="ok")
            self._authenticate(request)
            return await self._dispatch(request)
        except ApiError as error:
            return error_response(error)
        except web.HTTPRequestEntityTooLarge:
            return error_response(errors.too_large())
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # an emulator bug must still answer like an apiserver
            log.exception("internal error serving %s %s", request.method, request.path)
            return error_response(ApiError(500, "InternalError", f"Internal error occurred: {exc}"))

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credential.strip().encode(), self.token.encode()
        ):
            raise errors.unauthorized()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        static = self._static(path)
        if static is not None:
            if request.method != "GET":
                raise errors.method_not_allowed()
            return json_response(static)
        if path == "/_emulator/compact":
            if request.method != "POST":
                raise errors.method_not_allowed()
            self.cluster.compact()
            return json_response({"compactedResourceVersion": str(self.cluster.compacted_rv)})
        parsed = parse_resource_path(path)
        if parsed is None:
            raise errors.path_not_found()
        return await self._resource(request, parsed)

    def _static(self, path: str) -> Obj | None:
        registry = self.cluster.registry
        if path == "/version":
            return discovery.VERSION_INFO
        if path == "/api":
            return discovery.api_versions(self.server_address())
        if path == "/apis":
            return discovery.api_group_list(registry)
        if path == "/api/v1":
            return discovery.resource_list(registry, "", "v1")
        if path == "/openapi/v2":
            return self._cached_openapi("v2", lambda: openapi.v2_document(registry))
        if path == "/openapi/v3":
            return self._cached_openapi("v3", lambda: openapi.v3_index(registry))
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["openapi", "v3"]:
            if parts[2:3] == ["api"] and len(parts) == 4:
                group, version = "", parts[3]
            elif parts[2:3] == ["apis"] and len(parts) == 5:
                group, version = parts[3], parts[4]
            else:
                raise errors.path_not_found()
            document = self._cached_openapi(
                f"v3/{group}/{version}",
                lambda: openapi.v3_group_version(registry, group, version) or {},
            )
            if not document:
                raise errors.path_not_found()
            return document
        if parts and parts[0] == "apis" and len(parts) == 2:
            group_doc = discovery.api_group(registry, parts[1])
            if group_doc is None:
                raise errors.path_not_found()
            return group_doc
        if parts and parts[0] == "apis" and len(parts) == 3:
            listing = discovery.resource_list(registry, parts[1], parts[2])
            if listing is None:
                raise errors.path_not_found()
            return listing
        return None

    def _cached_openapi(self, key: str, build: Callable[[], Obj]) -> Obj:
        cache_key = (self.cluster.registry.generation, key)
        document = self._openapi_cache.get(cache_key)
        if document is None:
            if len(self._openapi_cache) > 64:
                self._openapi_cache.clear()
            document = build()
            self._openapi_cache[cache_key] = document
        return document

    # --- resources -----------------------------------------------------------------------------

    async def _resource(self, request: web.Request, parsed: ResourcePath) -> web.StreamResponse:
        rt = self.cluster.registry.lookup(parsed.group, parsed.version, parsed.plural)
        if rt is None:
            raise errors.path_not_found()
        if parsed.namespace is not None and not rt.namespaced:
            raise errors.path_not_found()
        if rt.namespaced and parsed.namespace is None and parsed.name is not None:
            raise errors.path_not_found()
        if parsed.subresource and parsed.subresource != "status":
            raise errors.path_not_found()
        if parsed.subresource and not rt.status_subresource:
            raise errors.path_not_found()
        method = request.method
        query = request.query
        if parsed.legacy_watch:
            if method != "GET":
                raise errors.method_not_allowed()
            return await self._watch(request, rt, parsed)
        if parsed.name is None:
            if method == "GET":
                if query.get("watch", "") in _TRUE:
                    return await self._watch(request, rt, parsed)
                return self._list(request, rt, parsed)
            if method == "POST":
                return await self._create(request, rt, parsed)
            if method == "DELETE":
                return await self._delete_collection(request, rt, parsed)
            raise errors.method_not_allowed()
        handlers: dict[
            str, Callable[[web.Request, ResourceType, ResourcePath], Awaitable[web.StreamResponse]]
        ] = {
            "GET": self._get,
            "PUT": self._update,
            "PATCH": self._patch,
            "DELETE": self._delete,
        }
        handler = handlers.get(method)
        if handler is None or (parsed.subresource and method == "DELETE"):
            raise errors.method_not_allowed()
        return await handler(request, rt, parsed)

    def _selectors(
        self, rt: ResourceType, query: Mapping[str, str]
    ) -> tuple[LabelSelector, FieldSelector]:
        labels = parse_label_selector(query.get("labelSelector", ""))
        fields = parse_field_selector(
            builtins.translate_field_selector(rt, query.get("fieldSelector", "")), rt.field_labels
        )
        return labels, fields

    def _present(self, request: web.Request, rt: ResourceType, obj: Obj) -> Obj:
        if wants_table(request):
            return tables.table(
                rt,
                [obj],
                resource_version=str(obj.get("metadata", {}).get("resourceVersion", "")),
                include_object=request.query.get("includeObject", ""),
            )
        return obj

    async def _get(
        self, request: web.Request, rt: ResourceType, parsed: ResourcePath
    ) -> web.StreamResponse:
        if request.query.get("watch", "") in _TRUE:
            return await self._watch(request, rt, parsed)
        obj = self.cluster.get(rt, parsed.namespace, parsed.name or "")
        return json_response(self._present(request, rt, obj))

    def _list(
        self, request: web.Request, rt: ResourceType, parsed: ResourcePath
    ) -> web.StreamResponse:
        query = request.query
        labels, fields = self._selectors(rt, query)
        result = self.cluster.list_objects(
            rt,
            parsed.namespace,
            labels,
            fields,
            limit=_int_param(query, "limit"),
            continue_token=query.get("continue", ""),
        )
        if wants_table(request):
            return json_response(
                tables.table(
                    rt,
                    result.items,
                    resource_version=str(result.resource_version),
                    continue_token=result.continue_token,
                    include_object=query.get("includeObject", ""),
                )
            )
        metadata: Obj = {"resourceVersion": str(result.resource_version)}
        if result.continue_token:
            metadata["continue"] = result.continue_token
            metadata["remainingItemCount"] = result.remaining
        return json_response(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": metadata,
                "items": result.items,
            }
        )

    async def _body(self, request: web.Request, *, patch: bool = False) -> Any:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise errors.too_large()
        raw = await request.read()
        if len(raw) > MAX_BODY:
            raise errors.too_large()
        media = request.headers.get("Content-Type", _JSON).split(";")[0].strip().lower() or _JSON
        if patch:
            if media == APPLY or media not in PATCH_TYPES:
                raise errors.unsupported_media_type(media, PATCH_TYPES)
        elif media == protobuf.MEDIA_TYPE:
            return protobuf.decode(raw)
        elif media not in (_JSON, "application/yaml", "*/*"):
            raise errors.unsupported_media_type(media, _BODY_TYPES)
        try:
            text = raw.decode("utf-8")
            if media == "application/yaml":
                return yaml.safe_load(text)
            return json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError, RecursionError) as exc:
            raise bad_request(
                f"couldn't get version/kind; json parse error: {str(exc)[:200]}"
            ) from exc

    @staticmethod
    def _write_options(request: web.Request) -> WriteOptions:
        return WriteOptions(
            dry_run=_dry_run(request),
            field_validation=request.query.get("fieldValidation", ""),
        )

    def _write_response(
        self, request: web.Request, rt: ResourceType, result: WriteResult, status: int
    ) -> web.Response:
        return json_response(self._present(request, rt, result.obj), status, result.warnings)

    async def _create(
        self, request: web.Request, rt: ResourceType, parsed: ResourcePath
    ) -> web.StreamResponse:
        body = await self._body(request)
        result = self.cluster.create(rt, parsed.namespace, body, self._write_options(request))
        return self._write_response(request, rt, result, 201)

    async def _update(
        self, request: web.Request, rt: ResourceType, parsed: ResourcePath
    ) -> web.StreamResponse:
        body = await self._body(request)
        result = self.cluster.update(
            rt,
            parsed.namespace,
            parsed.name or "",
            body,
            self._write_options(request),
            subresource=parsed.subresource,
        )
        return self._write_response(request, rt, result, 200)

    async def _patch(
        self, request: web.Request, rt: ResourceType, parsed: ResourcePath
    ) -> web.StreamResponse:
        body = await self._body(request, patch=True)
        result = self.cluster.patch(
            rt,
            parsed.namespace,
            parsed.name or "",
            request.headers.get("Content-Type", ""),
            body,
            self._write_options(request),
            subresource=parsed.subresource,
        )
        return self._write_response(request, rt, result, 200)

    async def _delete_options(self, request: web.Request) -> tuple[str, bool, Obj]:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            if len(raw) > MAX_BODY:
                raise errors.too_large()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise bad_request(f"couldn't decode DeleteOptions: {str(exc)[:200]}") from exc
        if body is not None and not isinstance(body, dict):
            raise bad_request("couldn't decode DeleteOptions: body must be an object")
        options: Obj = body or {}
        query = request.query
        propagation = query.get("propagationPolicy", "") or options.get("propagationPolicy") or ""
        orphan = query.get("orphanDependents", "") or options.get("orphanDependents")
        if not propagation and orphan in (True, "true"):
            propagation = "Orphan"
        if not isinstance(propagation, str):
            raise bad_request("propagationPolicy must be a string")
        dry_run = _dry_run(request) or options.get("dryRun") == ["All"]
        preconditions = options.get("preconditions") or {}
        if not isinstance(preconditions, dict):
            raise bad_request("preconditions must be an object")
        return propagation, dry_run, preconditions

    async def _delete(
        self, request: web.Request, rt: ResourceType, parsed: ResourcePath
    ) -> web.StreamResponse:
        propagation, dry_run, preconditions = await self._delete_options(request)
        obj, removed = self.cluster.delete(
            rt,
            parsed.namespace,
            parsed.name or "",
            propagation=propagation,
            dry_run=dry_run,
            preconditions=preconditions,
        )
        if removed:
            meta = obj.get("metadata", {})
            return json_response(
                errors.success_status(
                    meta.get("name", ""), rt.group, rt.plural, meta.get("uid", "")
                )
            )
        return json_response(obj)

    async def _delete_collection(
        self, request: web.Request, rt: ResourceType, parsed: ResourcePath
    ) -> web.StreamResponse:
        propagation, dry_run, _ = await self._delete_options(request)
        labels, fields = self._selectors(rt, request.query)
        items = self.cluster.delete_collection(
            rt, parsed.namespace, labels, fields, propagation=propagation, dry_run=dry_run
        )
        return json_response(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.cluster.rv)},
                "items": items,
            }
        )

    # --- watch ---------------------------------------------------------------------------------

    async def _watch(
        self, request: web.Request, rt: ResourceType, parsed: ResourcePath
    ) -> web.StreamResponse:
        query = request.query
        labels, fields = self._selectors(rt, query)
        if parsed.name is not None:
            # A watch on one object is a watch with a metadata.name field selector.
            fields = FieldSelector(
                (
                    *fields.requirements,
                    *parse_field_selector(f"metadata.name={parsed.name}", ()).requirements,
                )
            )
        timeout = _int_param(query, "timeoutSeconds")
        bookmarks = query.get("allowWatchBookmarks", "") in _TRUE
        send_initial = query.get("sendInitialEvents", "") in _TRUE
        resource_version = query.get("resourceVersion", "")
        as_table = wants_table(request)
        initial: list[Event]
        watcher: Watcher | None = None
        error: ApiError | None = None
        try:
            initial, watcher = self.cluster.watch(
                rt, parsed.namespace, "" if send_initial else resource_version, labels, fields
            )
        except ApiError as exc:
            if exc.code != 410:
                raise
            initial, error = [], exc
        response = web.StreamResponse(
            status=200, headers={"Content-Type": _JSON, "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        headers_sent = False

        async def send(event_type: str, obj: Obj) -> None:
            nonlocal headers_sent
            if as_table and event_type in ("ADDED", "MODIFIED", "DELETED"):
                obj = tables.table(
                    rt,
                    [obj],
                    resource_version=str(obj.get("metadata", {}).get("resourceVersion", "")),
                    include_object=query.get("includeObject", ""),
                    headers=not headers_sent,
                )
                headers_sent = True
            await response.write(_dumps({"type": event_type, "object": obj}) + b"\n")

        def bookmark(initial_end: bool = False) -> Obj:
            meta: Obj = {"resourceVersion": str(self.cluster.rv)}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}

        try:
            if error is not None:
                await send("ERROR", error.status())
                return response
            assert watcher is not None
            for event in initial:
                translated = watcher.translate(event)
                if translated is not None:
                    await send(translated[0], self.cluster.present(rt, translated[1]))
            if send_initial and bookmarks:
                await send("BOOKMARK", bookmark(initial_end=True))
            await self._stream(watcher, rt, send, bookmark, timeout, bookmarks)
        except (ConnectionResetError, RuntimeError) as exc:  # aiohttp: writing to a closed stream
            log.debug("watch client went away: %s", exc)
        finally:
            if watcher is not None:
                self.cluster.unwatch(watcher)
        return response

    async def _stream(
        self,
        watcher: Watcher,
        rt: ResourceType,
        send: Callable[[str, Obj], Awaitable[None]],
        bookmark: Callable[[], Obj],
        timeout: int,
        bookmarks: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        while True:
            wait: float | None = None
            if deadline is not None:
                wait = deadline - loop.time()
                if wait <= 0:
                    if bookmarks and watcher.queue.empty():
                        await send("BOOKMARK", bookmark())
                    return
            if bookmarks:
                wait = self.bookmark_interval if wait is None else min(wait, self.bookmark_interval)
            try:
                event = await asyncio.wait_for(watcher.queue.get(), wait)
            except TimeoutError:
                if bookmarks and (deadline is None or deadline - loop.time() > 0):
                    await send("BOOKMARK", bookmark())
                continue
            if event is None:
                return
            translated = watcher.translate(event)
            if translated is not None:
                await send(translated[0], self.cluster.present(rt, translated[1]))
