"""Loose schemas of the built-in kinds.

They serve two purposes: rejecting wrongly-typed fields the way Go's decoder does (400), and giving
kubectl's OpenAPI consumers (`explain`, client-side validation) something truthful to read. Unknown
fields are preserved because these schemas are deliberately incomplete.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def _obj(properties: dict[str, Schema] | None = None, description: str = "") -> Schema:
    schema: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if properties:
        schema["properties"] = properties
    if description:
        schema["description"] = description
    return schema


def _str(description: str = "") -> Schema:
    return {"type": "string", "description": description} if description else {"type": "string"}


def _int(description: str = "") -> Schema:
    schema: Schema = {"type": "integer", "format": "int32"}
    if description:
        schema["description"] = description
    return schema


_STR_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
_STR_LIST: Schema = {"type": "array", "items": {"type": "string"}}

OWNER_REFERENCE: Schema = {
    "type": "object",
    "required": ["apiVersion", "kind", "name", "uid"],
    "properties": {
        "apiVersion": _str("API version of the referent."),
        "kind": _str("Kind of the referent."),
        "name": _str("Name of the referent."),
        "uid": _str("UID of the referent."),
        "controller": {"type": "boolean"},
        "blockOwnerDeletion": {"type": "boolean"},
    },
}

OBJECT_META: Schema = {
    "type": "object",
    "description": "Standard object's metadata.",
    "properties": {
        "name": _str("Name must be unique within a namespace."),
        "generateName": _str("Optional prefix used to generate a unique name."),
        "namespace": _str("Namespace defines the space within which each name must be unique."),
        "uid": _str("UID is the unique in time and space value for this object."),
        "resourceVersion": _str("An opaque value that represents the internal version."),
        "generation": {"type": "integer", "format": "int64"},
        "creationTimestamp": {"type": "string", "format": "date-time"},
        "deletionTimestamp": {"type": "string", "format": "date-time"},
        "deletionGracePeriodSeconds": {"type": "integer", "format": "int64"},
        "labels": {**_STR_MAP, "description": "Map of string keys and values."},
        "annotations": {**_STR_MAP, "description": "Unstructured key value map."},
        "ownerReferences": {"type": "array", "items": OWNER_REFERENCE},
        "finalizers": {**_STR_LIST, "description": "Must be empty before the object is deleted."},
        "managedFields": {"type": "array", "items": _obj()},
        "selfLink": _str(),
    },
}

# The metadata fields the apiserver keeps; any other key is an unknown field.
OBJECT_META_FIELDS = frozenset(OBJECT_META["properties"])


def _kind(
    spec: Schema | None, status: Schema | None, extra: dict[str, Schema] | None = None
) -> Schema:
    properties: dict[str, Schema] = {
        "apiVersion": _str("APIVersion defines the versioned schema of this representation."),
        "kind": _str("Kind is a string value representing the REST resource."),
        "metadata": OBJECT_META,
    }
    if spec is not None:
        properties["spec"] = spec
    if status is not None:
        properties["status"] = status
    properties.update(extra or {})
    return {"type": "object", "properties": properties}


_CONDITIONS: Schema = {
    "type": "array",
    "items": _obj({"type": _str(), "status": _str(), "reason": _str(), "message": _str()}),
}

NAMESPACE = _kind(
    _obj({"finalizers": _STR_LIST}), _obj({"phase": _str(), "conditions": _CONDITIONS})
)
NODE = _kind(
    _obj(
        {
            "podCIDR": _str(),
            "podCIDRs": _STR_LIST,
            "providerID": _str(),
            "unschedulable": {"type": "boolean"},
        }
    ),
    _obj(
        {
            "conditions": _CONDITIONS,
            "addresses": {"type": "array", "items": _obj({"type": _str(), "address": _str()})},
        }
    ),
)
POD = _kind(
    _obj(
        {
            "containers": {"type": "array", "items": _obj({"name": _str(), "image": _str()})},
            "nodeName": _str(),
            "restartPolicy": _str(),
            "serviceAccountName": _str(),
            "hostNetwork": {"type": "boolean"},
        }
    ),
    _obj({"phase": _str(), "podIP": _str(), "hostIP": _str(), "conditions": _CONDITIONS}),
)
SECRET = _kind(
    None,
    None,
    {
        "data": {**_STR_MAP, "description": "Base64-encoded secret data."},
        "stringData": {**_STR_MAP, "description": "Write-only convenience field merged into data."},
        "type": _str("Used to facilitate programmatic handling of secret data."),
        "immutable": {"type": "boolean"},
    },
)
CONFIGMAP = _kind(
    None,
    None,
    {"data": _STR_MAP, "binaryData": _STR_MAP, "immutable": {"type": "boolean"}},
)
_OBJECT_REFERENCE = _obj(
    {
        "apiVersion": _str(),
        "kind": _str(),
        "name": _str(),
        "namespace": _str(),
        "uid": _str(),
        "resourceVersion": _str(),
        "fieldPath": _str(),
    }
)
EVENT = _kind(
    None,
    None,
    {
        "involvedObject": _OBJECT_REFERENCE,
        "reason": _str(),
        "message": _str(),
        "type": _str(),
        "count": _int(),
        "firstTimestamp": {"type": "string", "format": "date-time"},
        "lastTimestamp": {"type": "string", "format": "date-time"},
        "eventTime": {"type": "string", "format": "date-time", "nullable": True},
        "source": _obj({"component": _str(), "host": _str()}),
        "reportingComponent": _str(),
        "reportingInstance": _str(),
        "action": _str(),
        "related": _OBJECT_REFERENCE,
        "series": _obj(),
    },
)
EVENTS_V1 = _kind(
    None,
    None,
    {
        "regarding": _OBJECT_REFERENCE,
        "related": _OBJECT_REFERENCE,
        "reason": _str(),
        "note": _str(),
        "type": _str(),
        "action": _str(),
        "eventTime": {"type": "string", "format": "date-time", "nullable": True},
        "reportingController": _str(),
        "reportingInstance": _str(),
        "deprecatedCount": _int(),
        "deprecatedFirstTimestamp": {"type": "string", "format": "date-time"},
        "deprecatedLastTimestamp": {"type": "string", "format": "date-time"},
        "deprecatedSource": _obj({"component": _str(), "host": _str()}),
        "series": _obj(),
    },
)
LEASE = _kind(
    _obj(
        {
            "holderIdentity": _str(),
            "leaseDurationSeconds": _int(),
            "acquireTime": {"type": "string", "format": "date-time"},
            "renewTime": {"type": "string", "format": "date-time"},
            "leaseTransitions": _int(),
        }
    ),
    None,
)
CRD = _kind(_obj(), _obj())
