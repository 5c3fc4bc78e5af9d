"""OpenAPI v2 and v3 documents built from the served types.

kubectl reads these to decide whether the server validates fields itself (a `fieldValidation`
query parameter on the kind's PATCH operation), for `kubectl explain`, and for client-side
validation when the server does not. Schema names follow the apiserver's convention
(`io.k8s.api.core.v1.Pod`, reversed group for CRDs).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from sim.kube.coreschemas import OBJECT_META, OWNER_REFERENCE
from sim.kube.discovery import VERSION_INFO
from sim.kube.resources import Registry, ResourceType

Obj = dict[str, Any]

OBJECT_META_NAME = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
OWNER_REFERENCE_NAME = "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference"
LIST_META_NAME = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"

_BUILTIN_PREFIX = {
    "": "io.k8s.api.core",
    "events.k8s.io": "io.k8s.api.events",
    "coordination.k8s.io": "io.k8s.api.coordination",
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
}


def definition_name(rt: ResourceType, kind: str | None = None) -> str:
    kind = kind or rt.kind
    if not rt.custom and rt.group in _BUILTIN_PREFIX:
        return f"{_BUILTIN_PREFIX[rt.group]}.{rt.version}.{kind}"
    reversed_group = ".".join(reversed(rt.group.split(".")))
    return f"{reversed_group}.{rt.version}.{kind}"


def _gvk(rt: ResourceType) -> Obj:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


def _ref(name: str, v3: bool) -> Obj:
    return {"$ref": f"#/components/schemas/{name}" if v3 else f"#/definitions/{name}"}


def _strip_for_v2(schema: Any) -> Any:
    # OpenAPI v2 has no `nullable`, `anyOf`/`oneOf`; the apiserver drops them when publishing v2.
    if isinstance(schema, Mapping):
        return {
            k: _strip_for_v2(v)
            for k, v in schema.items()
            if k not in ("nullable", "anyOf", "oneOf", "not", "x-kubernetes-validations")
        }
    if isinstance(schema, list):
        return [_strip_for_v2(v) for v in schema]
    return schema


def _kind_schema(rt: ResourceType, v3: bool) -> Obj:
    schema: Obj = copy.deepcopy(dict(rt.schema or {"type": "object"}))
    properties = dict(schema.get("properties") or {})
    properties["metadata"] = _ref(OBJECT_META_NAME, v3)
    properties.setdefault(
        "apiVersion",
        {
            "type": "string",
            "description": "APIVersion defines the versioned schema of this object.",
        },
    )
    properties.setdefault(
        "kind",
        {
            "type": "string",
            "description": "Kind is the REST resource this object represents.",
        },
    )
    schema["properties"] = properties
    schema.setdefault("type", "object")
    schema.setdefault("description", f"{rt.kind} is the Schema for the {rt.plural} API.")
    schema["x-kubernetes-group-version-kind"] = [_gvk(rt)]
    return schema if v3 else _strip_for_v2(schema)


def _list_schema(rt: ResourceType, v3: bool) -> Obj:
    return {
        "type": "object",
        "required": ["items"],
        "description": f"{rt.kind}List is a list of {rt.kind}",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": _ref(LIST_META_NAME, v3),
            "items": {"type": "array", "items": _ref(definition_name(rt), v3)},
        },
        "x-kubernetes-group-version-kind": [{**_gvk(rt), "kind": rt.list_kind}],
    }


def _meta_definitions(v3: bool) -> dict[str, Obj]:
    meta = copy.deepcopy(OBJECT_META)
    meta["properties"]["ownerReferences"] = {
        "type": "array",
        "items": _ref(OWNER_REFERENCE_NAME, v3),
    }
    return {
        OBJECT_META_NAME: meta,
        OWNER_REFERENCE_NAME: copy.deepcopy(OWNER_REFERENCE),
        LIST_META_NAME: {
            "type": "object",
            "properties": {
                "resourceVersion": {"type": "string"},
                "continue": {"type": "string"},
                "remainingItemCount": {"type": "integer", "format": "int64"},
            },
        },
    }


_QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "pretty")


def _parameters(v3: bool, names: tuple[str, ...]) -> list[Obj]:
    params: list[Obj] = []
    for name in names:
        param: Obj = {"name": name, "in": "query", "uniqueItems": True}
        if v3:
            param["schema"] = {"type": "string", "uniqueItems": True}
        else:
            param["type"] = "string"
        params.append(param)
    return params


def _operation(rt: ResourceType, action: str, v3: bool, response: str, body: bool) -> Obj:
    op: Obj = {
        "operationId": f"{action}{rt.kind}",
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(rt),
        "parameters": _parameters(v3, _QUERY_PARAMS if body else ("pretty",)),
        "responses": {"200": {"description": "OK"}},
    }
    if v3:
        op["responses"]["200"]["content"] = {"application/json": {"schema": _ref(response, v3)}}
        if body:
            media = (
                (
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/strategic-merge-patch+json",
                )
                if action == "patch"
                else ("application/json",)
            )
            schema = {"type": "object"} if action == "patch" else _ref(definition_name(rt), v3)
            op["requestBody"] = {"content": {m: {"schema": schema} for m in media}}
    else:
        op["responses"]["200"]["schema"] = _ref(response, v3)
        if body:
            op["parameters"].append(
                {
                    "name": "body",
                    "in": "body",
                    "required": True,
                    "schema": {"type": "object"}
                    if action == "patch"
                    else _ref(definition_name(rt), v3),
                }
            )
    return op


def _paths(rt: ResourceType, v3: bool) -> dict[str, Obj]:
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    collection = (
        f"{prefix}/namespaces/{{namespace}}/{rt.plural}"
        if rt.namespaced
        else f"{prefix}/{rt.plural}"
    )
    item = f"{collection}/{{name}}"
    kind_ref, list_ref = definition_name(rt), definition_name(rt, rt.list_kind)
    paths = {
        collection: {
            "get": _operation(rt, "list", v3, list_ref, False),
            "post": _operation(rt, "post", v3, kind_ref, True),
            "delete": _operation(rt, "deletecollection", v3, kind_ref, False),
        },
        item: {
            "get": _operation(rt, "get", v3, kind_ref, False),
            "put": _operation(rt, "put", v3, kind_ref, True),
            "patch": _operation(rt, "patch", v3, kind_ref, True),
            "delete": _operation(rt, "delete", v3, kind_ref, False),
        },
    }
    if rt.status_subresource:
        paths[f"{item}/status"] = {
            "get": _operation(rt, "get", v3, kind_ref, False),
            "put": _operation(rt, "put", v3, kind_ref, True),
            "patch": _operation(rt, "patch", v3, kind_ref, True),
        }
    if rt.namespaced:
        paths[f"{prefix}/{rt.plural}"] = {"get": _operation(rt, "list", v3, list_ref, False)}
    return paths


def _definitions(types: list[ResourceType], v3: bool) -> dict[str, Obj]:
    definitions = _meta_definitions(v3)
    for rt in types:
        definitions[definition_name(rt)] = _kind_schema(rt, v3)
        definitions[definition_name(rt, rt.list_kind)] = _list_schema(rt, v3)
    return definitions


def _info() -> Obj:
    return {"title": "Kubernetes", "version": VERSION_INFO["gitVersion"]}


def v2_document(registry: Registry) -> Obj:
    types = sorted(registry.all_types(), key=lambda rt: (rt.group, rt.version, rt.plural))
    paths: dict[str, Obj] = {}
    for rt in types:
        paths.update(_paths(rt, False))
    return {
        "swagger": "2.0",
        "info": _info(),
        "paths": paths,
        "definitions": _definitions(types, False),
    }


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def v3_group_version(registry: Registry, group: str, version: str) -> Obj | None:
    types = sorted(registry.resources_in(group, version), key=lambda rt: rt.plural)
    if not types:
        return None
    paths: dict[str, Obj] = {}
    for rt in types:
        paths.update(_paths(rt, True))
    return {
        "openapi": "3.0.0",
        "info": _info(),
        "paths": paths,
        "components": {"schemas": _definitions(types, True)},
    }


def digest(document: Obj) -> str:
    return hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest()[:64].upper()


def v3_index(registry: Registry) -> Obj:
    paths: dict[str, Obj] = {}
    for group, versions in sorted(registry.group_versions().items()):
        for version in versions:
            document = v3_group_version(registry, group, version)
            if document is None:
                continue
            path = _gv_path(group, version)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest(document)}"}
    return {"paths": paths}
