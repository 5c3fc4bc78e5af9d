"""Patch application by Content-Type: JSON merge patch, JSON patch and strategic merge patch.

Strategic merge follows the built-in kinds' patch strategies by field name (lists of containers
merge by name, conditions by type, finalizers as a set...), which is what kubectl edit and the
Python client (it sends dicts to core kinds as strategic merge) rely on. Custom resources have no
strategies, so there it degrades to a JSON merge patch.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from sim.kube.errors import ApiError, bad_request, unsupported_media_type

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
PATCH_TYPES = (MERGE, JSON_PATCH, STRATEGIC)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# Field name -> merge key of lists whose patch strategy is "merge" in k8s.io/api (core kinds).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "volumes": "name",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "addresses": "type",
    "taints": "key",
    "hostAliases": "ip",
    "podIPs": "ip",
    "topologySpreadConstraints": "topologyKey",
}
# Lists of scalars merged as sets.
SET_LISTS = frozenset({"finalizers"})


def strategic_merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return _strip_directives(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if key.startswith("$"):
            continue
        if value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(key, result[key], value)
        else:
            result[key] = strategic_merge(result.get(key), value)
    return result


def _merge_list(field: str, target: list[Any], patch: list[Any]) -> list[Any]:
    if field in SET_LISTS:
        return target + [v for v in patch if v not in target]
    key = MERGE_KEYS.get(field)
    if key is None or not all(isinstance(item, dict) for item in [*target, *patch]):
        return _strip_directives(patch)  # type: ignore[no-any-return]
    if any(item.get("$patch") == "replace" for item in patch):
        return [_strip_directives(i) for i in patch if i.get("$patch") != "replace"]
    merged = [dict(item) for item in target]
    for item in patch:
        position = next((i for i, t in enumerate(merged) if t.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if position is not None:
                merged.pop(position)
        elif position is None:
            merged.append(_strip_directives(item))
        else:
            merged[position] = strategic_merge(merged[position], item)
    return merged


def _strip_directives(patch: Any) -> Any:
    # Strategic-merge directives have no meaning in a plain merge; drop them instead of storing.
    if isinstance(patch, dict):
        return {k: _strip_directives(v) for k, v in patch.items() if not k.startswith("$")}
    if isinstance(patch, list):
        return [_strip_directives(v) for v in patch if not (isinstance(v, dict) and "$patch" in v)]
    return patch


def apply_patch(
    content_type: str, current: dict[str, Any], patch: Any, *, strategic: bool = True
) -> dict[str, Any]:
    """Apply by media type; `strategic=False` (custom resources) treats strategic as merge."""
    media = content_type.split(";")[0].strip().lower()
    if media == JSON_PATCH:
        if not isinstance(patch, list):
            raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        try:
            result = jsonpatch.JsonPatch(patch).apply(current)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise ApiError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: {exc}",
            ) from exc
        except (TypeError, KeyError, ValueError, AttributeError, IndexError) as exc:
            raise bad_request(f"invalid JSON patch: {exc}") from exc
    elif media in (MERGE, STRATEGIC):
        if not isinstance(patch, dict):
            raise bad_request(
                "json: cannot unmarshal array into Go value of type map[string]interface {}"
            )
        if media == MERGE:
            result = merge_patch(current, patch)
        elif strategic:
            result = strategic_merge(current, patch)
        else:
            result = merge_patch(current, _strip_directives(patch))
    else:
        raise unsupported_media_type(media, PATCH_TYPES)
    if not isinstance(result, dict):
        raise bad_request("the patch produced something other than an object")
    return result
