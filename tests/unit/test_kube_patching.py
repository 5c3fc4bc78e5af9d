"""Patch semantics by media type (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from sim.kube.errors import ApiError
from sim.kube.patching import JSON_PATCH, MERGE, STRATEGIC, apply_patch

POD: dict[str, Any] = {
    "metadata": {"name": "p", "finalizers": ["a.io/x"], "labels": {"app": "web"}},
    "spec": {"containers": [{"name": "c1", "image": "one"}, {"name": "c2", "image": "two"}]},
    "status": {
        "conditions": [{"type": "Ready", "status": "False"}, {"type": "Init", "status": "True"}]
    },
}


def test_strategic_merge_uses_the_kinds_merge_keys() -> None:
    patch = {
        "metadata": {"finalizers": ["b.io/y"], "labels": {"app": None}},
        "spec": {
            "containers": [{"name": "c2", "image": "new"}],
            "$setElementOrder/containers": [{"name": "c1"}, {"name": "c2"}],
        },
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "Init", "$patch": "delete"},
            ]
        },
    }
    result = apply_patch(STRATEGIC, POD, patch)
    assert result["metadata"] == {"name": "p", "finalizers": ["a.io/x", "b.io/y"], "labels": {}}
    assert result["spec"]["containers"] == [
        {"name": "c1", "image": "one"},
        {"name": "c2", "image": "new"},
    ]
    assert result["status"]["conditions"] == [{"type": "Ready", "status": "True"}]
    removed = apply_patch(
        STRATEGIC, POD, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/x"]}}
    )
    assert removed["metadata"]["finalizers"] == []


def test_strategic_merge_on_custom_resources_is_a_merge_patch() -> None:
    result = apply_patch(
        STRATEGIC, POD, {"status": {"conditions": [{"type": "X"}]}}, strategic=False
    )
    assert result["status"]["conditions"] == [{"type": "X"}]


def test_merge_patch_replaces_lists_and_deletes_nulls() -> None:
    result = apply_patch(MERGE, POD, {"spec": {"containers": [{"name": "only"}]}, "status": None})
    assert result["spec"]["containers"] == [{"name": "only"}] and "status" not in result


def test_json_patch_errors() -> None:
    assert (
        apply_patch(JSON_PATCH, POD, [{"op": "add", "path": "/spec/x", "value": 1}])["spec"]["x"]
        == 1
    )
    with pytest.raises(ApiError) as missing:
        apply_patch(JSON_PATCH, POD, [{"op": "remove", "path": "/spec/nope"}])
    assert missing.value.code == 422
    with pytest.raises(ApiError) as wrong_shape:
        apply_patch(JSON_PATCH, POD, {"op": "add"})
    assert wrong_shape.value.code == 400
    with pytest.raises(ApiError) as unsupported:
        apply_patch("application/apply-patch+yaml", POD, {})
    assert unsupported.value.code == 415
