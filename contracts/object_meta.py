"""Object metadata and references, as the product needs them from Kubernetes objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts.kube_json import ObjectMetaJson, ObjectReferenceJson, OwnerReferenceJson
from contracts.raw_fields import (
    read_int,
    read_maps,
    read_optional_bool,
    read_optional_str,
    read_str,
    read_str_map,
    read_strs,
)


@dataclass(frozen=True)
class OwnerReference:
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None

    @classmethod
    def from_object(cls, raw: Mapping[str, Any], path: str = "ownerReference") -> OwnerReference:
        return cls(
            api_version=read_str(raw, "apiVersion", path),
            kind=read_str(raw, "kind", path),
            name=read_str(raw, "name", path),
            uid=read_str(raw, "uid", path),
            controller=read_optional_bool(raw, "controller", path),
            block_owner_deletion=read_optional_bool(raw, "blockOwnerDeletion", path),
        )

    def to_object(self) -> OwnerReferenceJson:
        out: OwnerReferenceJson = {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
        }
        if self.controller is not None:
            out["controller"] = self.controller
        if self.block_owner_deletion is not None:
            out["blockOwnerDeletion"] = self.block_owner_deletion
        return out


@dataclass(frozen=True)
class ObjectReference:
    """A corev1.ObjectReference reduced to the fields upstream fills in."""

    api_version: str = ""
    kind: str = ""
    name: str = ""
    namespace: str = ""

    @classmethod
    def from_object(cls, raw: Mapping[str, Any], path: str = "reference") -> ObjectReference:
        return cls(
            api_version=read_str(raw, "apiVersion", path),
            kind=read_str(raw, "kind", path),
            name=read_str(raw, "name", path),
            namespace=read_str(raw, "namespace", path),
        )

    def to_object(self) -> ObjectReferenceJson:
        out: ObjectReferenceJson = {}
        if self.api_version:
            out["apiVersion"] = self.api_version
        if self.kind:
            out["kind"] = self.kind
        if self.name:
            out["name"] = self.name
        if self.namespace:
            out["namespace"] = self.namespace
        return out


@dataclass(frozen=True)
class ObjectMeta:
    name: str
    namespace: str = ""
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None  # RFC 3339, as the API server writes it
    finalizers: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    owner_references: tuple[OwnerReference, ...] = ()

    @property
    def key(self) -> str:
        """`<namespace>/<name>` (or just the name for cluster-scoped objects)."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @property
    def is_deleting(self) -> bool:
        return self.deletion_timestamp is not None

    @classmethod
    def from_object(cls, raw: Mapping[str, Any], path: str = "metadata") -> ObjectMeta:
        return cls(
            name=read_str(raw, "name", path),
            namespace=read_str(raw, "namespace", path),
            uid=read_str(raw, "uid", path),
            generation=read_int(raw, "generation", path),
            resource_version=read_str(raw, "resourceVersion", path),
            creation_timestamp=read_optional_str(raw, "creationTimestamp", path),
            deletion_timestamp=read_optional_str(raw, "deletionTimestamp", path),
            finalizers=read_strs(raw, "finalizers", path),
            labels=read_str_map(raw, "labels", path),
            annotations=read_str_map(raw, "annotations", path),
            owner_references=tuple(
                OwnerReference.from_object(item, f"{path}.ownerReferences[{index}]")
                for index, item in enumerate(read_maps(raw, "ownerReferences", path))
            ),
        )

    def to_object(self) -> ObjectMetaJson:
        out: ObjectMetaJson = {"name": self.name}
        if self.namespace:
            out["namespace"] = self.namespace
        if self.uid:
            out["uid"] = self.uid
        if self.generation:
            out["generation"] = self.generation
        if self.resource_version:
            out["resourceVersion"] = self.resource_version
        if self.creation_timestamp is not None:
            out["creationTimestamp"] = self.creation_timestamp
        if self.deletion_timestamp is not None:
            out["deletionTimestamp"] = self.deletion_timestamp
        if self.finalizers:
            out["finalizers"] = list(self.finalizers)
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.owner_references:
            out["ownerReferences"] = [ref.to_object() for ref in self.owner_references]
        return out
