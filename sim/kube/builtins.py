"""Behaviour of the built-in kinds: defaulting, validation and the events.k8s.io conversion."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any

from sim.kube import crds, errors, objectmeta
from sim.kube.errors import Cause, bad_request
from sim.kube.resources import ResourceType

Obj = dict[str, Any]

_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

# events.k8s.io/v1 field name -> core/v1 field name; both versions share one storage.
_EVENT_FIELDS = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_EVENT_FIELDS_BACK = {v: k for k, v in _EVENT_FIELDS.items()}


def to_storage(rt: ResourceType, obj: Obj) -> Obj:
    if rt.group == "events.k8s.io":
        out = {_EVENT_FIELDS.get(k, k): v for k, v in obj.items()}
        out["apiVersion"], out["kind"] = "v1", "Event"
        return out
    return obj


def from_storage(rt: ResourceType, obj: Obj) -> Obj:
    if rt.group == "events.k8s.io":
        out = {_EVENT_FIELDS_BACK.get(k, k): v for k, v in obj.items()}
        out["apiVersion"], out["kind"] = rt.api_version, rt.kind
        if not out.get("eventTime"):
            # events.k8s.io/v1 requires eventTime; typed clients reject old-style events without it.
            when = out.get("deprecatedLastTimestamp") or (obj.get("metadata") or {}).get(
                "creationTimestamp", ""
            )
            out["eventTime"] = str(when).replace("Z", ".000000Z") if when else None
        return out
    if obj.get("apiVersion") == rt.api_version and obj.get("kind") == rt.kind:
        return obj
    return {**obj, "apiVersion": rt.api_version, "kind": rt.kind}


def translate_field_selector(rt: ResourceType, text: str) -> str:
    if rt.group == "events.k8s.io":
        text = text.replace("regarding.", "involvedObject.")
        text = text.replace("reportingController", "reportingComponent")
    return text


def _secret_defaults(obj: Obj) -> Obj:
    obj.setdefault("type", "Opaque")
    data = obj.get("data")
    if data is not None and not isinstance(data, dict):
        raise bad_request(
            'Secret in version "v1" cannot be handled as a Secret: data must be a map'
        )
    merged = dict(data or {})
    for key, value in merged.items():
        if not isinstance(value, str):
            raise bad_request(
                f'Secret in version "v1" cannot be handled as a Secret: json: cannot unmarshal '
                f"{type(value).__name__} into Go struct field Secret.data of type []uint8"
            )
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise bad_request(
                'Secret in version "v1" cannot be handled as a Secret: '
                "illegal base64 data at input "
                f"byte {_bad_byte(value)} (data[{key}])"
            ) from exc
    string_data = obj.pop("stringData", None)
    if string_data:
        if not isinstance(string_data, dict):
            raise bad_request(
                'Secret in version "v1" cannot be handled as a Secret: stringData must be a map'
            )
        for key, value in string_data.items():
            merged[key] = base64.b64encode(str(value).encode()).decode()
    if data is not None or string_data:
        obj["data"] = merged
    return obj


def _bad_byte(value: str) -> int:
    for i, ch in enumerate(value):
        if not (ch.isalnum() or ch in "+/="):
            return i
    return len(value)


def _namespace_defaults(obj: Obj) -> Obj:
    spec = dict(obj.get("spec") or {})
    spec.setdefault("finalizers", ["kubernetes"])
    obj["spec"] = spec
    status = dict(obj.get("status") or {})
    status.setdefault("phase", "Active")
    obj["status"] = status
    meta = obj["metadata"]
    labels = dict(meta.get("labels") or {})
    if meta.get("name"):
        labels["kubernetes.io/metadata.name"] = meta["name"]
    meta["labels"] = labels
    return obj


def _pod_defaults(obj: Obj) -> Obj:
    status = dict(obj.get("status") or {})
    status.setdefault("phase", "Pending")
    obj["status"] = status
    spec = obj.get("spec")
    if isinstance(spec, dict):
        spec.setdefault("restartPolicy", "Always")
    return obj


DEFAULTERS: dict[str, Callable[[Obj], Obj]] = {
    "Secret": _secret_defaults,
    "Namespace": _namespace_defaults,
    "Pod": _pod_defaults,
    "CustomResourceDefinition": crds.defaults,
}


def defaults(rt: ResourceType, obj: Obj) -> Obj:
    fn = DEFAULTERS.get(rt.kind) if not rt.custom else None
    return fn(obj) if fn else obj


def _config_keys(field: str, data: Any) -> list[Cause]:
    causes = []
    for key in (data or {}) if isinstance(data, dict) else {}:
        if not _CONFIG_KEY.match(key) or len(key) > 253:
            causes.append(
                errors.invalid(
                    f"{field}[{key}]",
                    key,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
                    "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation "
                    "is '[-._a-zA-Z0-9]+')",
                )
            )
    return causes


def _pod_causes(obj: Obj) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [errors.required("spec.containers")]
    containers = spec.get("containers")
    if not containers:
        return [errors.required("spec.containers")]
    causes = []
    for i, container in enumerate(containers):
        if not isinstance(container, dict) or not container.get("name"):
            causes.append(errors.required(f"spec.containers[{i}].name"))
        elif not objectmeta.is_dns_label(container["name"]):
            causes.append(
                errors.invalid(
                    f"spec.containers[{i}].name", container["name"], objectmeta.LABEL_MESSAGE
                )
            )
        if isinstance(container, dict) and not container.get("image"):
            causes.append(errors.required(f"spec.containers[{i}].image"))
    return causes


def validate(rt: ResourceType, obj: Obj, old: Obj | None) -> list[Cause]:
    """Kind-specific validation of built-in kinds (metadata is validated elsewhere)."""
    if rt.custom:
        return []
    if rt.kind == "ConfigMap":
        return _config_keys("data", obj.get("data")) + _config_keys(
            "binaryData", obj.get("binaryData")
        )
    if rt.kind == "Secret":
        causes = _config_keys("data", obj.get("data"))
        if old is not None and old.get("type") != obj.get("type"):
            causes.append(errors.invalid("type", obj.get("type"), "field is immutable"))
        if old is not None and old.get("immutable") and old.get("data") != obj.get("data"):
            causes.append(errors.forbidden("data", "field is immutable when `immutable` is set"))
        return causes
    if rt.kind == "Pod":
        causes = _pod_causes(obj)
        if (
            old is not None
            and old.get("spec", {}).get("nodeName")
            and (obj.get("spec", {}).get("nodeName") != old.get("spec", {}).get("nodeName"))
        ):
            causes.append(
                errors.forbidden(
                    "spec", "pod updates may not change fields other than the allowed ones"
                )
            )
        return causes
    if rt.kind == "CustomResourceDefinition":
        return crds.validate(obj)
    return []


def name_is_label(rt: ResourceType) -> bool:
    return rt.kind == "Namespace" and not rt.custom
