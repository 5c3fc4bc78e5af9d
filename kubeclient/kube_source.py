"""A ListWatchSource over kubernetes_asyncio: one list function of the generated client (e.g.
`CoreV1Api.list_node`) with fixed arguments and selectors, read as raw JSON.

Responses are read unparsed (`_preload_content=False`) so that objects stay plain JSON, watch
lines of any size are handled, and HTTP failures are classified here, once: 410 becomes the ERROR
event the core relists on, a failed connection or a 5xx/429 becomes SourceUnavailable.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, Final

import aiohttp

from kubeclient.errors import TRANSPORT_ERRORS, ApiErrorKind, http_failure, status_message
from kubeclient.list_watch import Listing, RawObject, SourceUnavailable

_CONNECT_TIMEOUT: Final = 10.0
# A watch stream is silent between events; the read timeout only has to catch a dead connection.
_READ_MARGIN: Final = 30.0

ObjectFilter = Callable[[RawObject], RawObject]


def _status_error(status: int, body: bytes) -> dict[str, Any]:
    """A watch ERROR line for an HTTP error status (the core decides what it means)."""
    return {
        "type": "ERROR",
        "object": {"kind": "Status", "code": status, "message": status_message(body)},
    }


class KubeListWatch:
    def __init__(
        self,
        list_call: Callable[..., Awaitable[Any]],
        *args: Any,
        label_selector: str = "",
        field_selector: str = "",
        keep: ObjectFilter | None = None,
    ) -> None:
        """`keep` trims each object before it is handed on (e.g. drops a Secret's data)."""
        self._list_call = list_call
        self._args = args
        self._selectors: dict[str, str] = {}
        if label_selector:
            self._selectors["label_selector"] = label_selector
        if field_selector:
            self._selectors["field_selector"] = field_selector
        self._keep = keep

    def _trim(self, obj: RawObject) -> RawObject:
        return obj if self._keep is None else self._keep(obj)

    async def list(self) -> Listing:
        try:
            response = await self._list_call(
                *self._args,
                **self._selectors,
                _preload_content=False,
                _request_timeout=aiohttp.ClientTimeout(
                    total=_CONNECT_TIMEOUT + _READ_MARGIN, connect=_CONNECT_TIMEOUT
                ),
            )
            try:
                body = await response.read()
            finally:
                response.release()
        except TRANSPORT_ERRORS as exc:
            raise SourceUnavailable(f"list failed: {type(exc).__name__}: {exc}") from None
        if response.status != 200:
            failure = http_failure(response.status, body)
            if failure.kind is ApiErrorKind.UNAVAILABLE:
                raise SourceUnavailable(f"list failed: HTTP {failure.status}: {failure.message}")
            # Forbidden, resource not served: retried with backoff too (RBAC or CRDs get fixed),
            # but with the server's reason in the log.
            raise SourceUnavailable(f"list refused: HTTP {failure.status}: {failure.message}")
        parsed = json.loads(body)
        items = parsed.get("items") or []
        metadata = parsed.get("metadata") or {}
        return Listing(
            items=tuple(self._trim(item) for item in items if isinstance(item, Mapping)),
            resource_version=str(metadata.get("resourceVersion") or ""),
        )

    async def watch(
        self, resource_version: str, timeout_seconds: int
    ) -> AsyncGenerator[RawObject, None]:
        try:
            response = await self._list_call(
                *self._args,
                **self._selectors,
                watch=True,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=timeout_seconds,
                _preload_content=False,
                _request_timeout=aiohttp.ClientTimeout(
                    connect=_CONNECT_TIMEOUT, sock_read=timeout_seconds + _READ_MARGIN
                ),
            )
        except TRANSPORT_ERRORS as exc:
            raise SourceUnavailable(f"watch failed: {type(exc).__name__}: {exc}") from None
        try:
            if response.status != 200:
                yield _status_error(response.status, await response.read())
                return
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw_line in lines:
                    if raw_line.strip():
                        yield self._event(json.loads(raw_line))
        except TRANSPORT_ERRORS as exc:
            raise SourceUnavailable(f"watch interrupted: {type(exc).__name__}: {exc}") from None
        except ValueError as exc:  # a torn line: the connection broke mid-event
            raise SourceUnavailable(f"watch stream unreadable: {exc}") from None
        finally:
            # close, not release: an unfinished watch must not go back to the connection pool.
            response.close()

    def _event(self, raw: Any) -> RawObject:
        if not isinstance(raw, Mapping):
            return {
                "type": "ERROR",
                "object": {"code": 0, "message": "watch line is not an object"},
            }
        obj = raw.get("object")
        if raw.get("type") in ("ADDED", "MODIFIED", "DELETED") and isinstance(obj, Mapping):
            return {"type": raw["type"], "object": self._trim(obj)}
        return raw
