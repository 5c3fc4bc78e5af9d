"""list_then_watch over kubernetes_asyncio against the emulator: resume, 410 relist, restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import kubernetes_asyncio
import pytest_asyncio
from kubernetes_asyncio.client import ApiClient, CustomObjectsApi

from contracts import kube_names
from kubeclient.kube_source import KubeListWatch
from kubeclient.list_watch import Listing, RawObject, WatchEvent, WatchSettings, list_then_watch
from sim.kube.server import KubeEmulator
from tests.fixtures.kube import ServingThread, project_crd_dir

G, V, P = kube_names.API_GROUP, kube_names.API_VERSION, kube_names.SGC_PLURAL
QUICK = WatchSettings(timeout_seconds=1, backoff_initial=0.05, backoff_max=0.5)


@pytest_asyncio.fixture
async def aio_api(kubeconfig_path: Path) -> AsyncIterator[ApiClient]:
    api = await kubernetes_asyncio.config.new_client_from_config(config_file=str(kubeconfig_path))
    async with api:
        yield api


class CountingSource:
    """The real source, counting how often it had to list."""

    def __init__(self, api: ApiClient) -> None:
        self.inner = KubeListWatch(CustomObjectsApi(api).list_cluster_custom_object, G, V, P)
        self.lists = 0

    async def list(self) -> Listing:
        self.lists += 1
        return await self.inner.list()

    def watch(self, resource_version: str, timeout_seconds: int) -> AsyncGenerator[RawObject, None]:
        return self.inner.watch(resource_version, timeout_seconds)


def sgc(name: str, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": kube_names.GROUP_VERSION,
        "kind": kube_names.SGC_KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"gatewayNodepoolName": "gwpool", "provisionPublicIps": True},
    }


def seen(event: WatchEvent) -> tuple[str, str, bool]:
    return (event.type, event.object["metadata"]["name"], event.synthetic)


async def next_event(stream: AsyncGenerator[WatchEvent, None]) -> tuple[str, str, bool]:
    return seen(await asyncio.wait_for(anext(stream), 15))


async def test_watch_resumes_from_the_last_resource_version_across_server_timeouts(
    kube_emulator: KubeEmulator, aio_api: ApiClient
) -> None:
    kube_emulator.bookmark_interval = 0.3
    await kube_emulator.create(sgc("a"))
    source = CountingSource(aio_api)
    stream = list_then_watch(source, QUICK)
    try:
        assert await next_event(stream) == ("ADDED", "a", True)
        await kube_emulator.create(sgc("b"))
        assert await next_event(stream) == ("ADDED", "b", False)
        await asyncio.sleep(2.5)  # let two 1-second watches end at the server and be resumed
        await kube_emulator.delete(kube_names.GROUP_VERSION, kube_names.SGC_KIND, "a", "default")
        # Exactly the one new change: nothing replayed, nothing relisted.
        assert await next_event(stream) == ("DELETED", "a", False)
        assert source.lists == 1
    finally:
        await stream.aclose()


async def test_compacted_history_relists_and_reports_deletions_missed_meanwhile(
    kube_emulator: KubeEmulator, aio_api: ApiClient
) -> None:
    await kube_emulator.create(sgc("a"))
    source = CountingSource(aio_api)
    stream = list_then_watch(source, QUICK)
    try:
        # Paused right after the listing: no watch is open while the world changes.
        assert await next_event(stream) == ("ADDED", "a", True)
        await kube_emulator.create(sgc("b"))
        await kube_emulator.delete(kube_names.GROUP_VERSION, kube_names.SGC_KIND, "a", "default")
        kube_emulator.compact()  # the listing's resourceVersion is now too old: 410 Gone
        assert await next_event(stream) == ("DELETED", "a", True)
        assert await next_event(stream) == ("ADDED", "b", True)
        assert source.lists == 2
        await kube_emulator.create(sgc("c"))
        assert await next_event(stream) == ("ADDED", "c", False)
    finally:
        await stream.aclose()


async def test_watch_survives_an_api_server_restart(tmp_path: Path) -> None:
    state = tmp_path / "kube-state"
    serving = ServingThread(KubeEmulator(state, crd_dir=project_crd_dir()))
    emulator = serving.start()
    port = emulator.port
    kubeconfig = tmp_path / "kubeconfig"
    emulator.write_kubeconfig(kubeconfig, namespace="default")
    await emulator.create(sgc("a"))
    api = await kubernetes_asyncio.config.new_client_from_config(config_file=str(kubeconfig))
    events: asyncio.Queue[tuple[str, str, bool]] = asyncio.Queue()

    async def consume() -> None:
        async for event in list_then_watch(CountingSource(api), QUICK):
            events.put_nowait(seen(event))

    consumer = asyncio.create_task(consume())
    try:
        assert await asyncio.wait_for(events.get(), 15) == ("ADDED", "a", True)
        await emulator.create(sgc("b"))
        assert await asyncio.wait_for(events.get(), 15) == ("ADDED", "b", False)
        serving.stop()
        serving = ServingThread(KubeEmulator(state, port=port, crd_dir=project_crd_dir()))
        emulator = serving.start()
        await emulator.delete(kube_names.GROUP_VERSION, kube_names.SGC_KIND, "a", "default")
        await emulator.create(sgc("c"))
        got: list[tuple[str, str, bool]] = []
        while not {("DELETED", "a"), ("ADDED", "c")} <= {(k, n) for k, n, _ in got}:
            got.append(await asyncio.wait_for(events.get(), 30))
        # Whether the watch resumed or relisted, the changes made while the client was cut off
        # arrive once each; a relist may only re-announce b, which it still has.
        changes = [(k, n) for k, n, synthetic in got if (k, n) != ("ADDED", "b") or not synthetic]
        assert sorted(changes) == [("ADDED", "c"), ("DELETED", "a")], got
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        await api.close()
        serving.stop()
