"""KubeEmulator: a Kubernetes API server stand-in over HTTPS, persisted in a state directory."""

from __future__ import annotations

import asyncio
import copy
import secrets
import socket
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from sim.kube import kubeconfig
from sim.kube.cluster import Cluster, WriteOptions
from sim.kube.errors import ApiError
from sim.kube.routes import MAX_BODY, Api
from sim.kube.selectors import FieldSelector, LabelSelector
from sim.kube.storage import Storage
from sim.tls import ensure_server_certificate

T = TypeVar("T")
TOKEN_FILE = "kube-token"
CERT_NAME = "kube-apiserver"


class KubeEmulator:
    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        crd_dir: Path | None = None,
        token: str | None = None,
        tls_dir: Path | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.host = host
        self._requested_port = port
        self.crd_dir = crd_dir
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.token = token or self._stored_token()
        # tls_dir: where the CA lives when several servers share one (the dev stack's state dir).
        certificate = ensure_server_certificate(Path(tls_dir or self.state_dir), CERT_NAME)
        self._certificate = certificate
        self.ca_path: Path = certificate.ca_path
        self.cluster = Cluster(Storage(self.state_dir))
        self.api = Api(self.cluster, self.token, lambda: f"{self.host}:{self.port}")
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id: int | None = None
        self._loaded = False

    def _stored_token(self) -> str:
        path = self.state_dir / TOKEN_FILE
        if path.exists():
            stored = path.read_text().strip()
            if stored:
                return stored
        token = secrets.token_urlsafe(32)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(token + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)
        return token

    @property
    def bookmark_interval(self) -> float:
        return self.api.bookmark_interval

    @bookmark_interval.setter
    def bookmark_interval(self, seconds: float) -> None:
        self.api.bookmark_interval = seconds

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self._port}"

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        self.cluster.load()
        self._loaded = True
        self.cluster.seed_namespaces()
        if self.crd_dir is not None:
            for crd in load_crd_manifests(self.crd_dir):
                self.cluster.apply_crd_manifest(crd)
        app = web.Application(client_max_size=MAX_BODY + 1024)
        app.router.add_route("*", "/{tail:.*}", self.api.handle)
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await self._runner.setup()
        sock = socket.socket(
            socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM
        )
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self._port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock, ssl_context=self._certificate.ssl_context())
        await site.start()

    async def stop(self) -> None:
        self.cluster.close_watchers()
        if self._runner is not None:
            await asyncio.sleep(0)  # let watch handlers see the end-of-stream sentinel
            await self._runner.cleanup()
            self._runner = None
        if self._loaded:  # never overwrite the state files with an emulator that did not load them
            self.cluster.flush()
        if self.cluster.storage is not None:
            self.cluster.storage.close()

    def write_kubeconfig(
        self, path: Path, *, context: str = "egressgw-dev", namespace: str | None = None
    ) -> None:
        kubeconfig.write(
            path,
            server=self.url,
            ca_pem=self.ca_path.read_bytes(),
            token=self.token,
            context=context,
            namespace=namespace,
        )

    def compact(self) -> None:
        self._call_sync(self.cluster.compact)

    # --- direct access (same semantics as the HTTP API) ------------------------------------------
    # The emulator may serve from its own thread (so that blocking clients in tests can talk to
    # it); state is only touched on the serving loop, so calls from elsewhere are marshalled.

    def _call_sync(self, fn: Callable[[], T]) -> T:
        if self._loop is None or threading.get_ident() == self._thread_id:
            return fn()

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    async def _on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None or asyncio.get_running_loop() is self._loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return await self._on_loop(self._create(obj))

    def create_sync(self, obj: dict[str, Any]) -> dict[str, Any]:
        """`create` for blocking callers (e.g. tests) in a thread other than the serving one."""
        return self._call_sync(lambda: self._create_now(obj))

    async def _create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self._create_now(obj)

    def _create_now(self, obj: dict[str, Any]) -> dict[str, Any]:
        rt = self.cluster.type_for(obj.get("apiVersion", ""), obj.get("kind", ""))
        namespace = (obj.get("metadata") or {}).get("namespace") or (
            "default" if rt.namespaced else None
        )
        result = self.cluster.create(rt, namespace, obj, WriteOptions())
        return copy.deepcopy(result.obj)

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        return await self._on_loop(self._get(api_version, kind, name, namespace))

    async def _get(
        self, api_version: str, kind: str, name: str, namespace: str | None
    ) -> dict[str, Any] | None:
        rt = self.cluster.type_for(api_version, kind)
        found = self.cluster.find(rt, namespace if rt.namespaced else None, name)
        return None if found is None else copy.deepcopy(found)

    async def update(self, obj: dict[str, Any], *, subresource: str = "") -> dict[str, Any]:
        return await self._on_loop(self._update(obj, subresource))

    async def _update(self, obj: dict[str, Any], subresource: str) -> dict[str, Any]:
        rt = self.cluster.type_for(obj.get("apiVersion", ""), obj.get("kind", ""))
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") if rt.namespaced else None
        result = self.cluster.update(
            rt, namespace, meta.get("name", ""), obj, subresource=subresource
        )
        return copy.deepcopy(result.obj)

    async def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> bool:
        """Delete; False when it was not there. True once deletion started (finalizers may wait)."""
        return await self._on_loop(self._delete(api_version, kind, name, namespace))

    async def _delete(self, api_version: str, kind: str, name: str, namespace: str | None) -> bool:
        rt = self.cluster.type_for(api_version, kind)
        try:
            self.cluster.delete(rt, namespace if rt.namespaced else None, name)
        except ApiError as exc:
            if exc.code == 404:
                return False
            raise
        return True

    async def list_objects(
        self, api_version: str, kind: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        return await self._on_loop(self._list(api_version, kind, namespace))

    async def _list(
        self, api_version: str, kind: str, namespace: str | None
    ) -> list[dict[str, Any]]:
        rt = self.cluster.type_for(api_version, kind)
        result = self.cluster.list_objects(rt, namespace, LabelSelector(), FieldSelector())
        return copy.deepcopy(result.items)


_MANIFEST_CACHE: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _documents(path: Path) -> list[dict[str, Any]]:
    # Parsing YAML dominates start-up; tests start many emulators on the same unchanged files.
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _MANIFEST_CACHE:
        docs = yaml.load_all(path.read_text(), Loader=_LOADER)
        _MANIFEST_CACHE[key] = [d for d in docs if isinstance(d, dict)]
    return copy.deepcopy(_MANIFEST_CACHE[key])


def load_crd_manifests(directory: Path) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition document in *.yaml / *.yml / *.json files of a directory."""
    manifests: list[dict[str, Any]] = []
    if not directory.is_dir():
        return manifests
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml"), *directory.glob("*.json")])
    for path in files:
        for document in _documents(path):
            if document.get("kind") == "CustomResourceDefinition":
                manifests.append(document)
            elif document.get("kind") == "List":
                manifests.extend(
                    item
                    for item in document.get("items") or []
                    if isinstance(item, dict) and item.get("kind") == "CustomResourceDefinition"
                )
    return manifests
