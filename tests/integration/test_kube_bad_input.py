"""A few hundred malformed requests get apiserver-like 4xx Status answers and harm nothing."""

from __future__ import annotations

import io
import json
import random
import ssl
from collections import Counter
from typing import Any

import aiohttp

from sim.kube.server import KubeEmulator

WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
ALLOWED = {400, 404, 405, 409, 410, 413, 415, 422}

GOOD_WIDGET = {
    "apiVersion": "example.com/v1",
    "kind": "Widget",
    "metadata": {"name": "keep", "labels": {"a": "b"}},
    "spec": {"size": 2, "tags": ["x"]},
}


def _bad_bodies(rng: random.Random) -> list[bytes]:
    bodies = [
        b"",
        b"{",
        b"[]",
        b"null",
        b"42",
        b'"x"',
        b'{"metadata": ',
        b"\xff\xfe\x00",
        b"{}" * 3,
    ]
    wrong_types: list[Any] = [
        {**GOOD_WIDGET, "metadata": "nope"},
        {**GOOD_WIDGET, "metadata": {"name": "t1", "labels": ["a"]}},
        {**GOOD_WIDGET, "metadata": {"name": "t2", "labels": {"a": 1}}},
        {**GOOD_WIDGET, "metadata": {"name": "Bad_Name"}},
        {**GOOD_WIDGET, "metadata": {"name": "t3", "finalizers": "x"}},
        {**GOOD_WIDGET, "metadata": {"name": "t4"}, "spec": {"size": "big"}},
        {**GOOD_WIDGET, "metadata": {"name": "t5"}, "spec": {"size": -1}},
        {**GOOD_WIDGET, "metadata": {"name": "t6"}, "spec": {"size": 1, "mode": "warp"}},
        {**GOOD_WIDGET, "metadata": {"name": "t7"}, "spec": {"size": 1, "tags": "x"}},
        {**GOOD_WIDGET, "metadata": {"name": "t8"}, "spec": {"size": 1, "tags": ["waytoolongtag"]}},
        {**GOOD_WIDGET, "metadata": {"name": "t9"}, "spec": {}},
        {**GOOD_WIDGET, "metadata": {"name": "t10"}, "spec": "text"},
        {**GOOD_WIDGET, "kind": "Gadget", "metadata": {"name": "t11"}},
        {**GOOD_WIDGET, "apiVersion": "example.com/v9", "metadata": {"name": "t12"}},
        {"metadata": {"name": "t13"}, "spec": {"size": 1}},
        {**GOOD_WIDGET, "metadata": {"name": "t14", "namespace": "other"}},
        {**GOOD_WIDGET, "metadata": {"name": "keep"}},
        {**GOOD_WIDGET, "metadata": {"name": "t15"}, "spec": {"size": 2**70}},
        {**GOOD_WIDGET, "metadata": {"name": "t16"}, "spec": {"size": 1, "cidr": 2**70}},
    ]
    bodies += [json.dumps(b).encode() for b in wrong_types]
    for _ in range(40):
        raw = bytearray(json.dumps(GOOD_WIDGET).encode())
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        bodies.append(bytes(raw))
    deep = "[" * 5000 + "1" + "]" * 5000
    head = '{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "deep"}, '
    bodies.append(f'{head}"spec": {{"size": 1, "tags": {deep}}}}}'.encode())
    return bodies


def _json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except (ValueError, RecursionError):
        return False


def _requests(rng: random.Random) -> list[tuple[str, str, dict[str, str], bytes]]:
    json_headers = {"Content-Type": "application/json"}
    out: list[tuple[str, str, dict[str, str], bytes]] = []
    for body in _bad_bodies(rng):
        out.append(("POST", WIDGETS, json_headers, body))
        out.append(("PUT", f"{WIDGETS}/keep", json_headers, body))
        if not _json_object(body):
            out.append(("POST", CONFIGMAPS, json_headers, body))
    for path in [
        "/apis/nope/v1/things",
        "/api/v2/pods",
        f"{WIDGETS}/keep/status/extra",
        f"{WIDGETS}/keep/scale",
        "/apis/example.com/v1/widgets/keep",
        "/api/v1/namespaces/default/nodes",
        "/openapi/v3/apis/nope/v1",
        "/apis/example.org",
        "/" + "x/" * 50,
    ]:
        out.append(("GET", path, {}, b""))
    for selector in [
        "a in (",
        "a notin b",
        "!",
        "a=b=c",
        "=x",
        "a,,b",
        "a in (b c)",
        "@@",
        "a=" + "x" * 70,
    ]:
        out.append(("GET", f"{WIDGETS}?labelSelector={selector}", {}, b""))
    for selector in ["spec.size=1", "metadata.name", "a==b==c", "status.phase=Running"]:
        out.append(("GET", f"{WIDGETS}?fieldSelector={selector}", {}, b""))
    for query in [
        "limit=abc",
        "limit=-5",
        "continue=garbage",
        "timeoutSeconds=x&watch=true",
        "dryRun=Some",
    ]:
        out.append(
            ("GET" if "dryRun" not in query else "POST", f"{WIDGETS}?{query}", json_headers, b"{}")
        )
    out.append(
        ("POST", f"{WIDGETS}?fieldValidation=Bogus", json_headers, json.dumps(GOOD_WIDGET).encode())
    )
    patches: list[tuple[str, Any]] = [
        ("application/json-patch+json", {"op": "add"}),
        ("application/json-patch+json", [{"op": "explode", "path": "/spec"}]),
        ("application/json-patch+json", [{"op": "remove", "path": "/spec/missing"}]),
        ("application/json-patch+json", [{"op": "test", "path": "/spec/size", "value": 99}]),
        ("application/json-patch+json", [{"op": "replace", "path": "/spec/size", "value": "str"}]),
        ("application/json-patch+json", [{"op": "replace", "path": "", "value": []}]),
        ("application/json-patch+json", [42]),
        ("application/merge-patch+json", [1, 2]),
        ("application/merge-patch+json", {"spec": {"size": {"nested": True}}}),
        ("application/merge-patch+json", {"metadata": {"name": "renamed"}}),
        ("application/merge-patch+json", {"metadata": {"resourceVersion": "1"}}),
        ("application/merge-patch+json", {"apiVersion": "v1"}),
        ("application/apply-patch+yaml", {"spec": {"size": 1}}),
        ("text/plain", {"spec": {"size": 1}}),
        ("application/xml", {"spec": {"size": 1}}),
    ]
    for content_type, patch in patches:
        out.append(
            ("PATCH", f"{WIDGETS}/keep", {"Content-Type": content_type}, json.dumps(patch).encode())
        )
        out.append(
            (
                "PATCH",
                f"{WIDGETS}/absent",
                {"Content-Type": content_type},
                json.dumps(patch).encode(),
            )
        )
    for content_type in ["text/plain", "application/xml", "application/vnd.kubernetes.protobuf"]:
        out.append(
            ("POST", WIDGETS, {"Content-Type": content_type}, json.dumps(GOOD_WIDGET).encode())
        )
    for method, path in [
        ("POST", f"{WIDGETS}/keep"),
        ("PUT", WIDGETS),
        ("PATCH", WIDGETS),
        ("DELETE", "/version"),
    ]:
        out.append((method, path, json_headers, b"{}"))
    out.append(("DELETE", f"{WIDGETS}/keep", json_headers, b'{"propagationPolicy": "Sideways"}'))
    out.append(("DELETE", f"{WIDGETS}/keep", json_headers, b'{"preconditions": {"uid": "other"}}'))
    out.append(("DELETE", f"{WIDGETS}/keep", json_headers, b"[not json"))
    out.append(("POST", WIDGETS, json_headers, b"{" + b" " * (4 * 1024 * 1024) + b"}"))
    rng.shuffle(out)
    return out


async def test_malformed_requests_get_4xx_and_change_nothing(widgets: KubeEmulator) -> None:
    rng = random.Random(20261126)
    context = ssl.create_default_context(cafile=str(widgets.ca_path))
    headers = {"Authorization": f"Bearer {widgets.token}"}
    async with aiohttp.ClientSession(
        widgets.url, headers=headers, connector=aiohttp.TCPConnector(ssl=context)
    ) as http:
        async with http.post(WIDGETS, json=GOOD_WIDGET) as created:
            assert created.status == 201
            before = await created.json()
        requests = _requests(rng)
        assert len(requests) >= 200
        codes: Counter[int] = Counter()
        for method, path, extra, body in requests:
            async with http.request(method, path, headers=extra, data=io.BytesIO(body)) as response:
                codes[response.status] += 1
                assert response.status in ALLOWED, (method, path, body[:200], await response.text())
                status = await response.json()
                assert status["kind"] == "Status" and status["code"] == response.status
                assert status["status"] == "Failure" and status["message"] and status["reason"]
        assert {400, 404, 405, 409, 413, 415, 422} <= set(codes), codes

        async with http.get(f"{WIDGETS}/keep") as after:
            assert await after.json() == before
        good = {**GOOD_WIDGET, "metadata": {"name": "still-works"}}
        async with http.post(WIDGETS, json=good) as created_again:
            assert created_again.status == 201
        async with http.get("/api/v1/namespaces") as listed:
            assert listed.status == 200
