"""The CNI manager's Unix socket: one JSON request per connection (manager_api), answered by
NicService. The socket is mode 0600 in a root-owned directory: only root on the node (the
container runtime running the plugin) can create PodEndpoints through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from opentelemetry import trace

from agent.cni import manager_api, manager_events
from agent.cni.manager_api import ManagerError, NicAddRequest, NicDelRequest, PodRequest
from agent.cni.manager_events import ManagerObserver, Unobserved
from agent.cni.nic_service import NicService

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

# A plugin writes its one line at once; a client that sends nothing is dropped after this.
READ_TIMEOUT_S: Final = 10.0


class ManagerServer:
    def __init__(
        self, service: NicService, socket_path: Path, observer: ManagerObserver | None = None
    ) -> None:
        self._service = service
        self.socket_path = socket_path
        self._observer: ManagerObserver = observer or Unobserved()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        path = self.socket_path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISSOCK(mode):
                raise RuntimeError(f"{path} exists and is not a socket; not replacing it")
            path.unlink()  # a previous manager's
        self._server = await asyncio.start_unix_server(
            self._handle, path=str(path), limit=manager_api.MAX_MESSAGE_BYTES
        )
        path.chmod(0o600)
        log.info("CNI manager listening on %s", path)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                async with asyncio.timeout(READ_TIMEOUT_S):
                    line = await reader.readline()
            except (TimeoutError, ValueError, asyncio.IncompleteReadError):
                reply = manager_api.encode_error(
                    ManagerError(manager_api.INVALID, "no complete request line")
                )
            else:
                reply = await self._answer(line)
            writer.write(reply)
            await writer.drain()
        except (ConnectionError, BrokenPipeError):
            pass  # the plugin went away (e.g. it timed out); nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, BrokenPipeError):
                await writer.wait_closed()

    async def _answer(self, line: bytes) -> bytes:
        """One request line's reply; each request is a span (`cni-manager <method>`, the parent
        of its API calls) and is counted by method and outcome."""
        started = time.monotonic()
        method, outcome = "invalid", manager_events.OK
        with _tracer.start_as_current_span("cni-manager request") as span:
            try:
                method, params = manager_api.decode_request(line)
                span.update_name(f"cni-manager {method}")
                reply = manager_api.encode_result(await self._dispatch(method, params))
            except ManagerError as err:
                outcome = err.kind
                reply = manager_api.encode_error(err)
            except Exception as err:
                log.exception("request failed")
                outcome = manager_api.INTERNAL
                reply = manager_api.encode_error(
                    ManagerError(manager_api.INTERNAL, f"{type(err).__name__}: {err}")
                )
            span.set_attribute("egressgw.cni.outcome", outcome)
        self._observer.request_answered(method, outcome, time.monotonic() - started)
        return reply

    async def _dispatch(self, method: str, params: Mapping[str, Any]) -> Mapping[str, Any]:
        if method == manager_api.POD_RETRIEVE:
            pod = PodRequest.from_json(params).pod
            return (await self._service.pod_retrieve(pod)).to_json()
        if method == manager_api.NIC_ADD:
            return (await self._service.nic_add(NicAddRequest.from_json(params))).to_json()
        if method == manager_api.NIC_CHECK:
            return (await self._service.nic_check(NicAddRequest.from_json(params))).to_json()
        if method == manager_api.NIC_DEL:
            await self._service.nic_del(NicDelRequest.from_json(params))
            return {}
        return {}  # STATUS: answering is the status
