"""The watch cache (kubeclient/object_cache.py): a listing is the whole truth, events follow."""

from __future__ import annotations

from typing import Any

from kubeclient.list_watch import WatchEvent
from kubeclient.object_cache import ObjectCache


def endpoint(namespace: str, name: str, ip: str = "10.244.1.7/32") -> dict[str, Any]:
    return {
        "kind": "PodEndpoint",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"podIpAddress": ip},
    }


def names(cache: ObjectCache, namespace: str) -> list[str]:
    return sorted(obj["metadata"]["name"] for obj in cache.objects(namespace))


def test_events_change_the_namespace_they_name() -> None:
    cache = ObjectCache()
    assert not cache.synced
    cache.replace([endpoint("team-a", "web-0"), endpoint("team-b", "api-0")])
    assert cache.synced

    cache.apply(WatchEvent("ADDED", endpoint("team-a", "web-1")))
    cache.apply(WatchEvent("MODIFIED", endpoint("team-a", "web-0", "10.244.1.9/32")))
    cache.apply(WatchEvent("DELETED", endpoint("team-b", "api-0")))

    assert names(cache, "team-a") == ["web-0", "web-1"]
    assert names(cache, "team-b") == []
    (web0,) = [o for o in cache.objects("team-a") if o["metadata"]["name"] == "web-0"]
    assert web0["spec"]["podIpAddress"] == "10.244.1.9/32"
    assert len(cache) == 2


def test_a_listing_drops_what_it_no_longer_has() -> None:
    cache = ObjectCache()
    cache.replace([endpoint("team-a", "web-0"), endpoint("team-a", "web-1")])
    cache.replace([endpoint("team-a", "web-1")])  # web-0 was deleted while nobody watched
    assert names(cache, "team-a") == ["web-1"]
    cache.apply(WatchEvent("DELETED", endpoint("team-a", "gone-already")))
    assert names(cache, "team-a") == ["web-1"]
