"""list_then_watch over kubernetes_asyncio against the real API server: a watch resumed across
server timeouts, from the resourceVersion bookmarks carry; a relist on 410 Gone after an etcd
compaction; and a watch that lives through an API server restart.

The compaction and restart tests run on the restartable control plane
(tests/fixtures/cluster.py): doing either to the session's shared one would break every other
test's watches. Its API server keeps no watch cache for Secrets, so a Secret watch meets the
compaction at once; a restarted API server starts its watch cache afresh and answers 410 to the
resourceVersions from before, as any cluster does during an upgrade.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest_asyncio
from kubernetes_asyncio.client import ApiClient, CoreV1Api, CustomObjectsApi

from contracts import kube_names
from kubeclient.kube_source import KubeListWatch
from kubeclient.list_watch import Listing, RawObject, WatchEvent, WatchSettings, list_then_watch
from tests.fixtures.cluster import Cluster, KubeObjects, Restartable
from tests.fixtures.kube_proxy import KubeProxy
from tests.fixtures.waiting import wait_for
from watchers.secret_watcher import metadata_only

G, V, P = kube_names.API_GROUP, kube_names.API_VERSION, kube_names.SGC_PLURAL
QUICK = WatchSettings(timeout_seconds=1, backoff_initial=0.05, backoff_max=0.5)
SELECTOR = "egressgw.test/watched=yes"


class CountingSource:
    """A real source, counting how often it listed."""

    def __init__(self, inner: KubeListWatch) -> None:
        self.inner = inner
        self.lists = 0

    async def list(self) -> Listing:
        listing = await self.inner.list()
        self.lists += 1
        return listing

    def watch(self, resource_version: str, timeout_seconds: int) -> AsyncGenerator[RawObject, None]:
        return self.inner.watch(resource_version, timeout_seconds)


def sgc_source(api: ApiClient, namespace: str, label_selector: str = "") -> CountingSource:
    """Configurations of one namespace (the session's cluster holds other tests' too)."""
    custom = CustomObjectsApi(api)
    return CountingSource(
        KubeListWatch(
            custom.list_namespaced_custom_object, G, V, namespace, P, label_selector=label_selector
        )
    )


def sgc(name: str, namespace: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": kube_names.GROUP_VERSION,
        "kind": kube_names.SGC_KIND,
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"gatewayNodepoolName": "gwpool", "provisionPublicIps": True},
    }


def secret(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"egressgw.test/watched": "yes"},
        },
        "stringData": {"k": "v"},
    }


def seen(event: WatchEvent) -> tuple[str, str, bool]:
    return (event.type, event.object["metadata"]["name"], event.synthetic)


async def next_event(stream: AsyncGenerator[WatchEvent, None]) -> tuple[str, str, bool]:
    return seen(await asyncio.wait_for(anext(stream), 30))


@pytest_asyncio.fixture
async def proxied_admin(kube_proxy: KubeProxy, kube_cluster: Cluster) -> AsyncIterator[ApiClient]:
    """The admin's client through the request-logging proxy (it forwards as the admin)."""
    async with kube_proxy.client_for(kube_cluster.admin_kubeconfig) as api:
        yield api


async def test_watch_resumes_from_the_last_resource_version_across_server_timeouts(
    kube: KubeObjects, kube_namespace: str, kube_api: ApiClient
) -> None:
    await kube.create(sgc("a", kube_namespace))
    source = sgc_source(kube_api, kube_namespace)
    stream = list_then_watch(source, QUICK)
    try:
        assert await next_event(stream) == ("ADDED", "a", True)
        await kube.create(sgc("b", kube_namespace))
        assert await next_event(stream) == ("ADDED", "b", False)
        await asyncio.sleep(2.5)  # let two 1-second watches end at the server and be resumed
        await kube.delete(kube_names.GROUP_VERSION, kube_names.SGC_KIND, "a", kube_namespace)
        # Exactly the one new change: nothing replayed, nothing relisted.
        assert await next_event(stream) == ("DELETED", "a", False)
        assert source.lists == 1
    finally:
        await stream.aclose()


def watch_resource_versions(proxy: KubeProxy, path: str) -> list[int]:
    return [
        int(parse_qs(r.query)["resourceVersion"][0])
        for r in proxy.sent("GET", path)
        if parse_qs(r.query).get("watch", [""])[0].lower() == "true"
    ]


async def test_a_quiet_watch_resumes_from_the_bookmark_not_from_its_last_event(
    kube: KubeObjects, kube_namespace: str, kube_proxy: KubeProxy, proxied_admin: ApiClient
) -> None:
    """Nothing happens to the watched objects (one label) while others of their kind change: the
    API server's bookmark (2 s before the watch's 3 s timeout) carries the newer resourceVersion,
    and the next watch starts there, so that a resume never reaches far back into history."""
    watched = {"egressgw.test/watched": "yes"}
    await kube.create(sgc("a", kube_namespace, watched))
    path = f"*/namespaces/{kube_namespace}/{P}"
    source = sgc_source(proxied_admin, kube_namespace, SELECTOR)
    stream = list_then_watch(
        source, WatchSettings(timeout_seconds=3, backoff_initial=0.05, backoff_max=0.5)
    )
    reader: asyncio.Task[Any] | None = None
    try:
        assert await next_event(stream) == ("ADDED", "a", True)
        reader = asyncio.create_task(next_event(stream))  # keeps the generator watching

        def watches() -> list[int]:
            return watch_resource_versions(kube_proxy, path)

        async def watching(count: int) -> bool:
            return len(watches()) >= count

        await wait_for(lambda: watching(1), 20, "the first watch")
        other = await kube.create(sgc("other", kube_namespace))  # not watched
        moved_to = int(other["metadata"]["resourceVersion"])
        await wait_for(lambda: watching(2), 20, "the watch to time out and resume")
        first, second = watches()[:2]
        assert first < moved_to <= second
        assert not reader.done()  # no event: the bookmark alone moved it on
        assert source.lists == 1
    finally:
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        await stream.aclose()


async def test_compacted_history_relists_and_reports_deletions_missed_meanwhile(
    restartable: Restartable,
) -> None:
    kube, namespace = restartable.kube, restartable.namespace
    core = CoreV1Api(restartable.api)
    # As the key Secret watcher watches them (watchers/secret_watcher.py): one namespace, by label.
    source = CountingSource(
        KubeListWatch(
            core.list_namespaced_secret, namespace, label_selector=SELECTOR, keep=metadata_only
        )
    )
    await kube.create(secret("a", namespace))
    stream = list_then_watch(source, QUICK)
    try:
        # Paused right after the listing: no watch is open while the world changes.
        assert await next_event(stream) == ("ADDED", "a", True)
        await kube.create(secret("b", namespace))
        await kube.delete("v1", "Secret", "a", namespace)
        await restartable.cluster.control_plane.compact_etcd()
        # The listing's resourceVersion is compacted away: 410 Gone, and a relist.
        assert await next_event(stream) == ("DELETED", "a", True)
        assert await next_event(stream) == ("ADDED", "b", True)
        assert source.lists == 2
        await kube.create(secret("c", namespace))
        assert await next_event(stream) == ("ADDED", "c", False)
    finally:
        await stream.aclose()


async def test_watch_survives_an_api_server_restart(restartable: Restartable) -> None:
    kube, namespace = restartable.kube, restartable.namespace
    await kube.create(sgc("a", namespace))
    events: asyncio.Queue[tuple[str, str, bool]] = asyncio.Queue()
    source = sgc_source(restartable.api, namespace)

    async def consume() -> None:
        async for event in list_then_watch(source, QUICK):
            events.put_nowait(seen(event))

    consumer = asyncio.create_task(consume())
    try:
        assert await asyncio.wait_for(events.get(), 30) == ("ADDED", "a", True)
        await kube.create(sgc("b", namespace))
        assert await asyncio.wait_for(events.get(), 30) == ("ADDED", "b", False)
        await restartable.cluster.control_plane.restart_api_server()
        await retrying(
            lambda: kube.delete(kube_names.GROUP_VERSION, kube_names.SGC_KIND, "a", namespace)
        )
        await retrying(lambda: kube.create(sgc("c", namespace)))
        got: list[tuple[str, str, bool]] = []
        while not {("DELETED", "a"), ("ADDED", "c")} <= {(k, n) for k, n, _ in got}:
            got.append(await asyncio.wait_for(events.get(), 60))
        # Whether the watch resumed or relisted (a restarted API server's fresh watch cache
        # answers 410 to the old resourceVersion), each change made since arrives once; a relist
        # may only re-announce, once, what still existed when it listed.
        reannounced = [
            n for k, n, synthetic in got if synthetic and k == "ADDED" and n in ("a", "b")
        ]
        changes = [(k, n) for k, n, synthetic in got if not (synthetic and n in reannounced)]
        assert sorted(changes) == [("ADDED", "c"), ("DELETED", "a")], got
        assert len(reannounced) == len(set(reannounced)), got
        state = {"a", "b"}
        for kind, name, _ in got:
            (state.discard if kind == "DELETED" else state.add)(name)
        assert state == {"b", "c"}, got
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)


async def retrying(call: Callable[[], Any], attempts: int = 5) -> Any:
    """The first requests after a restart may meet a connection the server closed."""
    for attempt in range(attempts):
        try:
            return await call()
        except (OSError, aiohttp.ClientError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5)
    return None
