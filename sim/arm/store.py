"""The emulator's records: resources by lower-cased ID, running operations, and their file.

Writes go through a `Transaction` so that a request either applies completely or not at all; the
whole state is saved atomically (temp file + rename) after every change.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sim.arm.body import JsonObject

STATE_FILE = "arm-state.json"


def new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


@dataclass
class Resource:
    id: str  # the casing its creator used
    type: str  # canonical type (sim.arm.ids constants)
    body: JsonObject  # stored JSON, computed fields excluded
    internal: JsonObject = field(default_factory=dict)  # emulator bookkeeping, never served

    @property
    def key(self) -> str:
        return self.id.lower()

    @property
    def properties(self) -> JsonObject:
        props = self.body.setdefault("properties", {})
        assert isinstance(props, dict)
        return props

    @property
    def provisioning_state(self) -> str:
        return str(self.properties.get("provisioningState", "Succeeded"))


@dataclass
class Operation:
    """A long-running operation: done once `started + duration` has passed."""

    id: str
    method: str
    resource_id: str
    resource_type: str
    subscription: str
    namespace: str
    location: str
    started: float
    duration: float
    error: JsonObject | None = None  # set when the operation is to fail
    done: bool = False
    action: str | None = None
    api_version: str = ""

    @property
    def deadline(self) -> float:
        return self.started + self.duration

    @property
    def status_path(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/providers/{self.namespace}/locations/"
            f"{self.location}/operations/{self.id}"
        )

    @property
    def result_path(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/providers/{self.namespace}/locations/"
            f"{self.location}/operationResults/{self.id}"
        )


class ResourceView(Protocol):
    def get(self, key: str) -> Resource | None: ...

    def of_type(self, type_: str) -> list[Resource]: ...


class Store:
    def __init__(self) -> None:
        self._resources: dict[str, Resource] = {}
        self._by_type: dict[str, dict[str, Resource]] = {}
        self.operations: dict[str, Operation] = {}
        self.latency: dict[str, float] = {}

    def get(self, key: str) -> Resource | None:
        return self._resources.get(key.lower())

    def of_type(self, type_: str) -> list[Resource]:
        return list(self._by_type.get(type_, {}).values())

    def __iter__(self) -> Iterator[Resource]:
        return iter(list(self._resources.values()))

    def put(self, resource: Resource) -> None:
        old = self._resources.get(resource.key)
        if old is not None and old.type != resource.type:
            self._by_type[old.type].pop(old.key, None)
        self._resources[resource.key] = resource
        self._by_type.setdefault(resource.type, {})[resource.key] = resource

    def delete(self, key: str) -> None:
        old = self._resources.pop(key.lower(), None)
        if old is not None:
            self._by_type[old.type].pop(old.key, None)

    def pending_operations(self) -> list[Operation]:
        return [op for op in self.operations.values() if not op.done]

    # Persistence -----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        # Shallow dicts: json.dumps walks the bodies itself, no deep copy needed.
        return {
            "resources": [
                {"id": r.id, "type": r.type, "body": r.body, "internal": r.internal}
                for r in self._resources.values()
            ],
            "operations": [dict(vars(o)) for o in self.operations.values()],
            "latency": self.latency,
        }

    def save(self, path: Path) -> None:
        """Write the whole state atomically (temp file, then rename over the old one)."""
        data = json.dumps(self.to_json(), separators=(",", ":"))
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(data)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Store:
        store = cls()
        if not path.exists():
            return store
        data = json.loads(path.read_text())
        for raw in data.get("resources", []):
            store.put(Resource(**raw))
        for raw in data.get("operations", []):
            op = Operation(**raw)
            store.operations[op.id] = op
        store.latency = {str(k): float(v) for k, v in data.get("latency", {}).items()}
        return store


class Transaction:
    """Staged puts/deletes over a Store; reads see the staged state."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._staged: dict[str, Resource] = {}
        self._deleted: set[str] = set()

    def get(self, key: str) -> Resource | None:
        key = key.lower()
        if key in self._deleted:
            return None
        if key in self._staged:
            return self._staged[key]
        return self.store.get(key)

    def of_type(self, type_: str) -> list[Resource]:
        out = {r.key: r for r in self.store.of_type(type_) if r.key not in self._deleted}
        for key, res in self._staged.items():
            if res.type == type_:
                out[key] = res
        return list(out.values())

    def children(self, parent_key: str, type_: str) -> list[Resource]:
        prefix = parent_key.lower() + "/"
        return [r for r in self.of_type(type_) if r.key.startswith(prefix)]

    def put(self, resource: Resource, *, touch: bool = True) -> Resource:
        """Stage `resource`; `touch` gives it a fresh ETag (any change of its stored body)."""
        if touch:
            resource.body["etag"] = new_etag()
        self._deleted.discard(resource.key)
        self._staged[resource.key] = resource
        return resource

    def delete(self, key: str) -> None:
        key = key.lower()
        self._staged.pop(key, None)
        self._deleted.add(key)

    def delete_tree(self, key: str) -> None:
        """Delete a resource and every stored resource below it."""
        prefix = key.lower() + "/"
        for res in list(self.store) + list(self._staged.values()):
            if res.key == key.lower() or res.key.startswith(prefix):
                self.delete(res.key)

    @property
    def changed(self) -> bool:
        return bool(self._staged or self._deleted)

    def commit(self) -> None:
        for key in self._deleted:
            self.store.delete(key)
        for res in self._staged.values():
            self.store.put(res)
        self._staged.clear()
        self._deleted.clear()


def clone(resource: Resource) -> Resource:
    """A deep copy to edit inside a transaction without touching the committed record."""
    return Resource(
        resource.id,
        resource.type,
        json.loads(json.dumps(resource.body)),
        json.loads(json.dumps(resource.internal)),
    )
