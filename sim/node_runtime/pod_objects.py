"""The ConfigMaps and Secrets a pod refers to (env, envFrom, volumes), and the store of what was
fetched for it. Absent objects are simply missing from the store; whether that is an error
depends on the reference's `optional` (container_env.py, pod_volumes.py decide)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

Json = dict[str, Any]
ObjectKind = Literal["ConfigMap", "Secret"]


@dataclass(frozen=True, order=True)
class ObjectRef:
    kind: ObjectKind
    name: str


@dataclass
class ObjectStore:
    """Fetched objects' data by reference: ConfigMap `data` + `binaryData`, Secret `data`
    decoded, all as bytes."""

    objects: dict[ObjectRef, dict[str, bytes]] = field(default_factory=dict)

    def lookup(self, kind: ObjectKind, name: str) -> dict[str, bytes] | None:
        return self.objects.get(ObjectRef(kind, name))

    def add(self, ref: ObjectRef, obj: Json) -> None:
        self.objects[ref] = object_data(ref.kind, obj)


def object_data(kind: ObjectKind, obj: Json) -> dict[str, bytes]:
    if kind == "Secret":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return data


def _containers(spec: Json) -> Iterator[Json]:
    yield from spec.get("initContainers") or []
    yield from spec.get("containers") or []


def _volume_refs(volume: Json) -> Iterator[ObjectRef]:
    if "configMap" in volume:
        yield ObjectRef("ConfigMap", str(volume["configMap"].get("name", "")))
    if "secret" in volume:
        yield ObjectRef("Secret", str(volume["secret"].get("secretName", "")))
    for source in (volume.get("projected") or {}).get("sources") or []:
        if "configMap" in source:
            yield ObjectRef("ConfigMap", str(source["configMap"].get("name", "")))
        if "secret" in source:
            yield ObjectRef("Secret", str(source["secret"].get("name", "")))


def referenced_objects(pod: Json) -> list[ObjectRef]:
    """Every ConfigMap and Secret the pod's containers and volumes name, once, sorted."""
    spec = pod.get("spec") or {}
    refs: set[ObjectRef] = set()
    for container in _containers(spec):
        for source in container.get("envFrom") or []:
            if "configMapRef" in source:
                refs.add(ObjectRef("ConfigMap", str(source["configMapRef"].get("name", ""))))
            if "secretRef" in source:
                refs.add(ObjectRef("Secret", str(source["secretRef"].get("name", ""))))
        for var in container.get("env") or []:
            value_from = var.get("valueFrom") or {}
            if "configMapKeyRef" in value_from:
                refs.add(ObjectRef("ConfigMap", str(value_from["configMapKeyRef"].get("name", ""))))
            if "secretKeyRef" in value_from:
                refs.add(ObjectRef("Secret", str(value_from["secretKeyRef"].get("name", ""))))
    for volume in spec.get("volumes") or []:
        refs.update(_volume_refs(volume))
    return sorted(r for r in refs if r.name)
