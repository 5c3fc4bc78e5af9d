"""Resource types the emulator serves: the built-in kinds and those defined by CRDs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.kube import coreschemas

ALL_VERBS = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)
STATUS_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass(frozen=True, eq=False)
class ResourceType:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status_subresource: bool = False
    # Structural schema (CRDs) or the loose schema of a built-in kind.
    schema: Mapping[str, Any] | None = None
    printer_columns: tuple[PrinterColumn, ...] = ()
    custom: bool = False
    # Built-in kinds served under two groups share one storage (events.k8s.io/v1 Event).
    storage_group: str | None = None
    crd_name: str = ""
    # Field-selector keys beyond metadata.name/namespace that this kind supports.
    field_labels: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def storage_key(self) -> tuple[str, str]:
        group = self.group if self.storage_group is None else self.storage_group
        return (group, self.plural)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key giving the apiserver's version order (GA > beta > alpha, higher first)."""
    m = _VERSION_RE.match(version)
    if not m:
        return (3, 0, 0, version)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -major, -minor, version)


def _event_fields() -> tuple[str, ...]:
    involved = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    return (
        *(f"involvedObject.{k}" for k in involved),
        "reason",
        "reportingComponent",
        "source",
        "type",
    )


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    ResourceType(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        False,
        ("ns",),
        status_subresource=True,
        schema=coreschemas.NAMESPACE,
        field_labels=("status.phase",),
    ),
    ResourceType(
        "",
        "v1",
        "nodes",
        "node",
        "Node",
        False,
        ("no",),
        status_subresource=True,
        schema=coreschemas.NODE,
        field_labels=("spec.unschedulable",),
    ),
    ResourceType(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        True,
        ("po",),
        ("all",),
        status_subresource=True,
        schema=coreschemas.POD,
        field_labels=(
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ),
    ),
    ResourceType(
        "",
        "v1",
        "secrets",
        "secret",
        "Secret",
        True,
        schema=coreschemas.SECRET,
        field_labels=("type",),
    ),
    ResourceType(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        True,
        ("cm",),
        schema=coreschemas.CONFIGMAP,
    ),
    ResourceType(
        "",
        "v1",
        "events",
        "event",
        "Event",
        True,
        ("ev",),
        schema=coreschemas.EVENT,
        field_labels=_event_fields(),
    ),
    ResourceType(
        "events.k8s.io",
        "v1",
        "events",
        "event",
        "Event",
        True,
        ("ev",),
        schema=coreschemas.EVENTS_V1,
        storage_group="",
        field_labels=_event_fields(),
    ),
    ResourceType(
        "coordination.k8s.io", "v1", "leases", "lease", "Lease", True, schema=coreschemas.LEASE
    ),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        False,
        ("crd", "crds"),
        status_subresource=True,
        schema=coreschemas.CRD,
    ),
)


def types_from_crd(crd: Mapping[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of an (already validated) CRD object."""
    spec = crd["spec"]
    names = spec["names"]
    result = []
    for v in spec.get("versions") or []:
        if not v.get("served", True):
            continue
        columns = tuple(
            PrinterColumn(
                name=c.get("name", ""),
                type=c.get("type", "string"),
                json_path=c.get("jsonPath", ""),
                description=c.get("description", ""),
                priority=int(c.get("priority", 0) or 0),
                format=c.get("format", ""),
            )
            for c in v.get("additionalPrinterColumns") or []
        )
        schema = (v.get("schema") or {}).get("openAPIV3Schema") or {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
        }
        result.append(
            ResourceType(
                group=spec["group"],
                version=v["name"],
                plural=names["plural"],
                singular=names.get("singular") or names["kind"].lower(),
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status_subresource="status" in (v.get("subresources") or {}),
                schema=schema,
                printer_columns=columns,
                custom=True,
                crd_name=crd["metadata"]["name"],
                field_labels=tuple(
                    str(f.get("jsonPath", "")).lstrip(".") for f in v.get("selectableFields") or []
                ),
            )
        )
    return result


@dataclass
class Registry:
    """Lookup of served resource types by URL path and by apiVersion/kind."""

    _by_path: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    _by_gvk: dict[tuple[str, str], ResourceType] = field(default_factory=dict)
    _by_crd: dict[str, list[ResourceType]] = field(default_factory=dict)
    generation: int = 0

    @classmethod
    def with_builtins(cls) -> Registry:
        registry = cls()
        for rt in BUILTIN_TYPES:
            registry._add(rt)
        return registry

    def _add(self, rt: ResourceType) -> None:
        self._by_path[(rt.group, rt.version, rt.plural)] = rt
        self._by_gvk[(rt.api_version, rt.kind)] = rt
        self.generation += 1

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_gvk.get((api_version, kind))

    def crd_types(self, crd_name: str) -> list[ResourceType]:
        return list(self._by_crd.get(crd_name, ()))

    def set_crd(self, crd: Mapping[str, Any]) -> list[ResourceType]:
        name = crd["metadata"]["name"]
        self.remove_crd(name)
        types = types_from_crd(crd)
        for rt in types:
            self._add(rt)
        self._by_crd[name] = types
        return types

    def remove_crd(self, name: str) -> None:
        for rt in self._by_crd.pop(name, []):
            self._by_path.pop((rt.group, rt.version, rt.plural), None)
            self._by_gvk.pop((rt.api_version, rt.kind), None)
        self.generation += 1

    def all_types(self) -> list[ResourceType]:
        return list(self._by_path.values())

    def group_versions(self) -> dict[str, list[str]]:
        """Group name to versions, preferred version first; the core group is ""."""
        groups: dict[str, set[str]] = {}
        for group, version, _ in self._by_path:
            groups.setdefault(group, set()).add(version)
        return {g: sorted(vs, key=version_priority) for g, vs in groups.items()}

    def resources_in(self, group: str, version: str) -> list[ResourceType]:
        return [rt for (g, v, _), rt in self._by_path.items() if g == group and v == version]
