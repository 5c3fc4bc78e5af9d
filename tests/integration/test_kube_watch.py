"""Watch semantics through the sync `kubernetes` and the `kubernetes_asyncio` clients."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import kubernetes_asyncio
import pytest
from kubernetes import client, watch
from kubernetes.client import ApiClient, ApiException

from sim.kube.server import KubeEmulator

G, V, P = "example.com", "v1", "widgets"


def widget(name: str, size: int = 1, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"size": size},
    }


@pytest.fixture
def custom(widgets: KubeEmulator, kube_api_client: ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api_client)


def collect(custom: client.CustomObjectsApi, **kwargs: Any) -> list[tuple[str, str, str]]:
    """(type, name, resourceVersion) for every event until the server ends the stream."""
    events = []
    for event in watch.Watch().stream(
        custom.list_namespaced_custom_object, G, V, "default", P, **kwargs
    ):
        obj = event["object"]
        events.append(
            (event["type"], obj["metadata"].get("name", ""), obj["metadata"]["resourceVersion"])
        )
    return events


def test_watch_from_resource_version_replays_history(custom: client.CustomObjectsApi) -> None:
    listed = custom.list_namespaced_custom_object(G, V, "default", P)
    start = listed["metadata"]["resourceVersion"]
    custom.create_namespaced_custom_object(G, V, "default", P, widget("a"))
    custom.patch_namespaced_custom_object(G, V, "default", P, "a", {"spec": {"size": 2}})
    custom.delete_namespaced_custom_object(G, V, "default", P, "a")
    events = collect(custom, resource_version=start, timeout_seconds=1)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    versions = [int(rv) for _, _, rv in events]
    assert versions == sorted(versions) and versions[0] > int(start)


def test_watch_without_version_sends_synthetic_added(custom: client.CustomObjectsApi) -> None:
    custom.create_namespaced_custom_object(G, V, "default", P, widget("x"))
    custom.create_namespaced_custom_object(G, V, "default", P, widget("y"))
    events = collect(custom, timeout_seconds=1)
    assert sorted((t, n) for t, n, _ in events) == [("ADDED", "x"), ("ADDED", "y")]


def test_live_events_and_selector_transitions(custom: client.CustomObjectsApi) -> None:
    custom.create_namespaced_custom_object(G, V, "default", P, widget("t", labels={"app": "web"}))
    start = custom.list_namespaced_custom_object(G, V, "default", P)["metadata"]["resourceVersion"]
    seen: list[tuple[str, str]] = []
    stream = watch.Watch()

    def consume() -> None:
        for event in stream.stream(
            custom.list_namespaced_custom_object,
            G,
            V,
            "default",
            P,
            label_selector="app=web",
            resource_version=start,
            timeout_seconds=3,
        ):
            seen.append((event["type"], event["object"]["metadata"]["name"]))
            if len(seen) == 3:
                stream.stop()

    consumer = threading.Thread(target=consume)
    consumer.start()
    custom.patch_namespaced_custom_object(
        G, V, "default", P, "t", {"metadata": {"labels": {"app": "db"}}}
    )
    custom.patch_namespaced_custom_object(
        G, V, "default", P, "t", {"metadata": {"labels": {"app": "web"}}}
    )
    custom.patch_namespaced_custom_object(G, V, "default", P, "t", {"spec": {"size": 9}})
    consumer.join(timeout=10)
    assert seen == [("DELETED", "t"), ("ADDED", "t"), ("MODIFIED", "t")]


def test_compacted_history_gives_410(
    widgets: KubeEmulator, custom: client.CustomObjectsApi
) -> None:
    start = custom.list_namespaced_custom_object(G, V, "default", P)["metadata"]["resourceVersion"]
    custom.create_namespaced_custom_object(G, V, "default", P, widget("c"))
    widgets.compact()
    with pytest.raises(ApiException) as info:
        collect(custom, resource_version=start, timeout_seconds=1)
    assert info.value.status == 410


def test_bookmarks_carry_the_current_resource_version(
    widgets: KubeEmulator, kube_api_client: ApiClient
) -> None:
    widgets.bookmark_interval = 0.2
    custom = client.CustomObjectsApi(kube_api_client)
    custom.create_namespaced_custom_object(G, V, "default", P, widget("b"))
    current = custom.list_namespaced_custom_object(G, V, "default", P)["metadata"][
        "resourceVersion"
    ]
    response = custom.list_namespaced_custom_object(
        G,
        V,
        "default",
        P,
        watch=True,
        allow_watch_bookmarks=True,
        timeout_seconds=1,
        resource_version=current,
        _preload_content=False,
    )
    lines = [line for line in response.read().decode().splitlines() if line]
    types = [json.loads(line)["type"] for line in lines]
    assert types and set(types) == {"BOOKMARK"} and len(types) >= 2, types
    last = json.loads(lines[-1])["object"]
    assert last["metadata"]["resourceVersion"] == current and last["kind"] == "Widget"


async def test_asyncio_client_patch_and_watch(widgets: KubeEmulator, kubeconfig_path: Path) -> None:
    api = await kubernetes_asyncio.config.new_client_from_config(config_file=str(kubeconfig_path))
    async with api:
        custom = kubernetes_asyncio.client.CustomObjectsApi(api)
        created = await custom.create_namespaced_custom_object(G, V, "default", P, widget("aio"))
        start = created["metadata"]["resourceVersion"]
        patched = await custom.patch_namespaced_custom_object(
            G,
            V,
            "default",
            P,
            "aio",
            {"spec": {"size": 4}},
            _content_type="application/merge-patch+json",
        )
        assert patched["spec"]["size"] == 4
        with pytest.raises(kubernetes_asyncio.client.ApiException) as info:
            # The asyncio client sends a dict as json-patch by default; the apiserver refuses that.
            await custom.patch_namespaced_custom_object(
                G, V, "default", P, "aio", {"spec": {"size": 5}}
            )
        assert info.value.status in (400, 422)
        seen = []
        stream = kubernetes_asyncio.watch.Watch()
        async for event in stream.stream(
            custom.list_namespaced_custom_object,
            G,
            V,
            "default",
            P,
            resource_version=start,
            timeout_seconds=1,
        ):
            seen.append((event["type"], event["object"]["spec"]["size"]))
        await stream.close()
        assert seen == [("MODIFIED", 4)]
