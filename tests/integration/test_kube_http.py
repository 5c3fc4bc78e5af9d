"""Raw HTTP details the official clients do not exercise: legacy watch paths, tables, discovery."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator

import aiohttp
import pytest

from sim.kube.server import KubeEmulator

WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@pytest.fixture
async def http(widgets: KubeEmulator) -> AsyncIterator[aiohttp.ClientSession]:
    context = ssl.create_default_context(cafile=str(widgets.ca_path))
    headers = {"Authorization": f"Bearer {widgets.token}"}
    connector = aiohttp.TCPConnector(ssl=context)
    async with aiohttp.ClientSession(widgets.url, headers=headers, connector=connector) as session:
        yield session


def _widget(name: str) -> dict[str, object]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": 1},
    }


async def test_legacy_watch_path_and_watch_as_table(http: aiohttp.ClientSession) -> None:
    async with http.post(WIDGETS, json=_widget("a")) as created:
        assert created.status == 201
    legacy = "/apis/example.com/v1/watch/namespaces/default/widgets?timeoutSeconds=1"
    async with http.get(legacy) as response:
        events = [json.loads(line) for line in (await response.text()).splitlines() if line]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a")]
    async with http.get(
        f"{WIDGETS}?watch=1&timeoutSeconds=1", headers={"Accept": TABLE}
    ) as response:
        tables = [json.loads(line) for line in (await response.text()).splitlines() if line]
    assert tables[0]["object"]["kind"] == "Table"
    assert [c["name"] for c in tables[0]["object"]["columnDefinitions"]] == [
        "Name",
        "Size",
        "Ready",
        "Age",
    ]
    assert tables[0]["object"]["rows"][0]["cells"][:2] == ["a", 1]


async def test_table_list_with_object_and_status_conditions(http: aiohttp.ClientSession) -> None:
    async with http.post(WIDGETS, json=_widget("t")):
        pass
    status = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    headers = {"Content-Type": "application/merge-patch+json"}
    async with http.patch(
        f"{WIDGETS}/t/status", data=json.dumps(status), headers=headers
    ) as patched:
        assert patched.status == 200
    async with http.get(f"{WIDGETS}?includeObject=Object", headers={"Accept": TABLE}) as response:
        table = await response.json()
    row = table["rows"][0]
    assert row["cells"][:3] == ["t", 1, "True"]
    assert row["object"]["status"]["conditions"][0]["type"] == "Ready"


async def test_discovery_and_openapi_documents(http: aiohttp.ClientSession) -> None:
    async with http.get("/apis/example.com/v1") as response:
        resources = (await response.json())["resources"]
    assert {r["name"] for r in resources} == {"widgets", "widgets/status"}
    widget = next(r for r in resources if r["name"] == "widgets")
    assert widget["shortNames"] == ["wd"] and widget["namespaced"] and "watch" in widget["verbs"]
    async with http.get("/openapi/v3") as response:
        index = await response.json()
    url = index["paths"]["apis/example.com/v1"]["serverRelativeURL"]
    async with http.get(url) as response:
        document = await response.json()
    schema = document["components"]["schemas"]["com.example.v1.Widget"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "example.com", "version": "v1", "kind": "Widget"}
    ]
    assert schema["properties"]["spec"]["required"] == ["size"]
    patch = document["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"]
    assert any(p["name"] == "fieldValidation" for p in patch["parameters"])
    async with http.get("/openapi/v2") as response:
        assert "com.example.v1.Widget" in (await response.json())["definitions"]
    aggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    async with http.get("/apis", headers={"Accept": f"{aggregated},application/json"}) as response:
        groups = {g["name"] for g in (await response.json())["groups"]}
    assert {"example.com", "apiextensions.k8s.io", "coordination.k8s.io"} <= groups


async def test_streaming_list_ends_initial_events_with_a_bookmark(
    http: aiohttp.ClientSession,
) -> None:
    async with http.post(WIDGETS, json=_widget("s")):
        pass
    query = (
        "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        "&allowWatchBookmarks=true&timeoutSeconds=1"
    )
    async with http.get(f"{WIDGETS}?{query}") as response:
        events = [json.loads(line) for line in (await response.text()).splitlines() if line]
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "s"
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_compact_control_endpoint(http: aiohttp.ClientSession) -> None:
    async with http.get(WIDGETS) as listed:
        start = (await listed.json())["metadata"]["resourceVersion"]
    async with http.post(WIDGETS, json=_widget("c")):
        pass
    async with http.post("/_emulator/compact") as compacted:
        assert compacted.status == 200
    async with http.get(
        f"{WIDGETS}?watch=true&resourceVersion={start}&timeoutSeconds=1"
    ) as response:
        events = [json.loads(line) for line in (await response.text()).splitlines() if line]
    assert events == [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": events[0]["object"]["message"],
                "reason": "Expired",
                "code": 410,
            },
        }
    ]
    assert events[0]["object"]["message"].startswith("too old resource version")
