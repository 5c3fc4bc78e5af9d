"""CustomResourceDefinition objects: defaulting, validation and the status the apiserver sets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sim.kube import cel, errors
from sim.kube.errors import Cause

Obj = dict[str, Any]

_PLURAL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_KIND = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def defaults(obj: Obj) -> Obj:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return obj
    names = spec.get("names")
    if isinstance(names, dict) and isinstance(names.get("kind"), str):
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
    spec.setdefault("scope", "Namespaced")
    spec.setdefault("conversion", {"strategy": "None"})
    for version in spec.get("versions") or []:
        if isinstance(version, dict):
            version.setdefault("served", True)
            version.setdefault("storage", False)
    return obj


def with_status(obj: Obj, now: str) -> Obj:
    """Accepted CRDs are immediately Established, as a healthy apiserver reports them."""
    spec = obj.get("spec") or {}
    stored = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
    old_status: dict[str, Any] = obj["status"] if isinstance(obj.get("status"), dict) else {}
    previous = old_status.get("storedVersions") or []
    conditions = old_status.get("conditions") or [
        {
            "type": "NamesAccepted",
            "status": "True",
            "reason": "NoConflicts",
            "message": "no conflicts found",
            "lastTransitionTime": now,
        },
        {
            "type": "Established",
            "status": "True",
            "reason": "InitialNamesAccepted",
            "message": "the initial names have been accepted",
            "lastTransitionTime": now,
        },
    ]
    status = {
        "acceptedNames": dict(spec.get("names") or {}),
        "conditions": conditions,
        "storedVersions": sorted(set(previous) | set(stored)),
    }
    return {**obj, "status": status}


def validate(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [errors.required("spec")]
    group = spec.get("group")
    names: dict[str, Any] = spec["names"] if isinstance(spec.get("names"), dict) else {}
    plural, kind = names.get("plural"), names.get("kind")
    if not isinstance(group, str) or not group:
        causes.append(errors.required("spec.group"))
    elif "." not in group:
        causes.append(
            errors.invalid("spec.group", group, "should be a domain with at least one dot")
        )
    if not isinstance(plural, str) or not plural:
        causes.append(errors.required("spec.names.plural"))
    elif not _PLURAL.match(plural):
        causes.append(
            errors.invalid(
                "spec.names.plural",
                plural,
                "a lowercase RFC 1123 label must consist of lower case alphanumeric "
                "characters or '-'",
            )
        )
    if not isinstance(kind, str) or not kind:
        causes.append(errors.required("spec.names.kind"))
    elif not _KIND.match(kind):
        causes.append(errors.invalid("spec.names.kind", kind, "must be a valid Kind name"))
    name = (obj.get("metadata") or {}).get("name")
    if isinstance(group, str) and isinstance(plural, str) and name != f"{plural}.{group}":
        causes.append(
            errors.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group')
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            errors.not_supported("spec.scope", spec.get("scope"), ["Cluster", "Namespaced"])
        )
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        causes.append(
            errors.required(
                "spec.versions", "must have exactly one version marked as storage version"
            )
        )
        return causes
    storage = 0
    for i, version in enumerate(versions):
        if not isinstance(version, dict) or not version.get("name"):
            causes.append(errors.required(f"spec.versions[{i}].name"))
            continue
        storage += 1 if version.get("storage") else 0
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(schema, Mapping):
            causes.append(
                errors.required(
                    f"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required"
                )
            )
            continue
        causes.extend(cel.rule_errors(schema, f"spec.versions[{i}].schema.openAPIV3Schema"))
    if storage != 1:
        causes.append(
            errors.invalid(
                "spec.versions", storage, "must have exactly one version marked as storage version"
            )
        )
    return causes
