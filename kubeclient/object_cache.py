"""What a list+watch has seen of one kind of object, by namespace: an informer's cache, so that
code in the same process reads what the watch already brought instead of listing again.

`CachingSource` wraps a ListWatchSource: every listing replaces the cache's content (the listing
is the truth at its resourceVersion, deletions missed while nobody watched included), and the
consumer of the events applies each one (`ObjectCache.apply`) before it acts on it. So whatever
the consumer does after an event (e.g. signal a workflow) happens after the cache holds that
event. Until its first listing the cache is not `synced` and readers go to the API server.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Mapping

from kubeclient.list_watch import Listing, ListWatchSource, RawObject, WatchEvent, object_key


def _namespace(obj: RawObject) -> str:
    metadata = obj.get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    return namespace if isinstance(namespace, str) else ""


class ObjectCache:
    def __init__(self) -> None:
        self._by_namespace: dict[str, dict[str, RawObject]] = {}
        self.synced = False

    def replace(self, items: Iterable[RawObject]) -> None:
        """A listing: the cache holds exactly these from now on."""
        by_namespace: dict[str, dict[str, RawObject]] = {}
        for obj in items:
            by_namespace.setdefault(_namespace(obj), {})[object_key(obj)] = obj
        self._by_namespace = by_namespace
        self.synced = True

    def apply(self, event: WatchEvent) -> None:
        namespace = _namespace(event.object)
        key = object_key(event.object)
        if event.type == "DELETED":
            objects = self._by_namespace.get(namespace)
            if objects is not None:
                objects.pop(key, None)
                if not objects:
                    del self._by_namespace[namespace]
        else:
            self._by_namespace.setdefault(namespace, {})[key] = event.object

    def objects(self, namespace: str) -> list[RawObject]:
        return list(self._by_namespace.get(namespace, {}).values())

    def __len__(self) -> int:
        return sum(len(objects) for objects in self._by_namespace.values())


class CachingSource:
    """A ListWatchSource whose listings also fill `cache`."""

    def __init__(self, inner: ListWatchSource, cache: ObjectCache) -> None:
        self._inner = inner
        self._cache = cache

    async def list(self) -> Listing:
        listing = await self._inner.list()
        self._cache.replace(listing.items)
        return listing

    def watch(self, resource_version: str, timeout_seconds: int) -> AsyncGenerator[RawObject, None]:
        return self._inner.watch(resource_version, timeout_seconds)
