"""The emulator through the official `kubernetes` client: CRUD, conflicts, status, deletion."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient, ApiException

from sim.kube.server import KubeEmulator

G, V, P = "example.com", "v1", "widgets"
TAGS_SCHEMA = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/tags"


def widget(name: str, size: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, **extra.pop("metadata", {})},
        "spec": {"size": size, **extra},
    }


@pytest.fixture
def custom(widgets: KubeEmulator, kube_api_client: ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api_client)


@pytest.fixture
def core(kube_api_client: ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube_api_client)


def status_of(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def test_create_returns_201_with_server_metadata(custom: client.CustomObjectsApi) -> None:
    created = custom.create_namespaced_custom_object(G, V, "default", P, widget("a", 3))
    assert created is not None, "kubernetes 37 returns None unless the server answers 201"
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"] and meta["generation"] == 1
    assert int(meta["resourceVersion"]) > 0
    assert created["spec"] == {"size": 3, "mode": "fast", "options": {"retries": 3}}


def test_generate_name_and_duplicate_create(custom: client.CustomObjectsApi) -> None:
    body = widget("")
    body["metadata"] = {"generateName": "gen-"}
    created = custom.create_namespaced_custom_object(G, V, "default", P, body)
    assert created["metadata"]["name"].startswith("gen-") and len(created["metadata"]["name"]) == 9
    custom.create_namespaced_custom_object(G, V, "default", P, widget("dup"))
    with pytest.raises(ApiException) as info:
        custom.create_namespaced_custom_object(G, V, "default", P, widget("dup"))
    assert info.value.status == 409
    assert status_of(info.value)["reason"] == "AlreadyExists"
    assert status_of(info.value)["message"] == 'widgets.example.com "dup" already exists'


def test_get_missing_is_404_status(custom: client.CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as info:
        custom.get_namespaced_custom_object(G, V, "default", P, "nope")
    status = status_of(info.value)
    assert info.value.status == 404
    assert status["kind"] == "Status" and status["reason"] == "NotFound"
    assert status["details"] == {"name": "nope", "group": "example.com", "kind": "widgets"}


def test_update_conflicts_on_stale_resource_version(custom: client.CustomObjectsApi) -> None:
    first = custom.create_namespaced_custom_object(G, V, "default", P, widget("u", 1))
    first["spec"]["size"] = 2
    second = custom.replace_namespaced_custom_object(G, V, "default", P, "u", first)
    assert second["spec"]["size"] == 2 and second["metadata"]["generation"] == 2
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    first["spec"]["size"] = 5
    with pytest.raises(ApiException) as info:
        custom.replace_namespaced_custom_object(G, V, "default", P, "u", first)
    assert info.value.status == 409 and status_of(info.value)["reason"] == "Conflict"
    del second["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as missing:
        custom.replace_namespaced_custom_object(G, V, "default", P, "u", second)
    assert missing.value.status == 422


def test_patch_merge_and_json(custom: client.CustomObjectsApi) -> None:
    custom.create_namespaced_custom_object(G, V, "default", P, widget("p", 1, tags=["a"]))
    merged = custom.patch_namespaced_custom_object(
        G, V, "default", P, "p", {"metadata": {"labels": {"x": "1"}}, "spec": {"tags": None}}
    )
    assert merged["metadata"]["labels"] == {"x": "1"} and "tags" not in merged["spec"]
    assert merged["metadata"]["generation"] == 2, "removing a spec field bumps the generation"
    patched = custom.patch_namespaced_custom_object(
        G,
        V,
        "default",
        P,
        "p",
        [{"op": "replace", "path": "/spec/size", "value": 7}],
        _content_type="application/json-patch+json",
    )
    assert patched["spec"]["size"] == 7
    labels_only = custom.patch_namespaced_custom_object(
        G, V, "default", P, "p", {"metadata": {"labels": {"y": "2"}}}
    )
    assert labels_only["metadata"]["generation"] == 3, "metadata changes keep the generation"
    stale = {"metadata": {"resourceVersion": merged["metadata"]["resourceVersion"]}}
    with pytest.raises(ApiException) as info:
        custom.patch_namespaced_custom_object(G, V, "default", P, "p", stale)
    assert info.value.status == 409


def test_json_patch_body_sent_as_merge_patch_is_rejected(custom: client.CustomObjectsApi) -> None:
    custom.create_namespaced_custom_object(G, V, "default", P, widget("ct", 1))
    with pytest.raises(ApiException) as info:
        custom.patch_namespaced_custom_object(
            G, V, "default", P, "ct", [{"op": "replace", "path": "/spec/size", "value": 2}]
        )
    assert info.value.status == 400


def test_status_subresource_is_kept_apart(custom: client.CustomObjectsApi) -> None:
    with_status = {**widget("s", 1), "status": {"ready": True}}
    created = custom.create_namespaced_custom_object(G, V, "default", P, with_status)
    assert "status" not in created, "create cannot set status when status is a subresource"
    after_status = custom.patch_namespaced_custom_object_status(
        G, V, "default", P, "s", {"status": {"ready": True}, "spec": {"size": 99}}
    )
    assert after_status["status"] == {"ready": True}
    assert after_status["spec"]["size"] == 1, "a /status write must not change spec"
    assert after_status["metadata"]["generation"] == 1
    after_main = custom.patch_namespaced_custom_object(
        G, V, "default", P, "s", {"status": {"ready": False}, "spec": {"size": 2}}
    )
    assert after_main["status"] == {"ready": True}, "a main-resource write must not change status"
    assert after_main["spec"]["size"] == 2


def test_finalizers_hold_deletion_until_removed(custom: client.CustomObjectsApi) -> None:
    custom.create_namespaced_custom_object(
        G, V, "default", P, widget("f", metadata={"finalizers": ["example.com/hold"]})
    )
    custom.delete_namespaced_custom_object(G, V, "default", P, "f")
    held = custom.get_namespaced_custom_object(G, V, "default", P, "f")
    assert held["metadata"]["deletionTimestamp"]
    assert held["metadata"]["deletionGracePeriodSeconds"] == 0
    with pytest.raises(ApiException) as info:
        custom.patch_namespaced_custom_object(
            G, V, "default", P, "f", {"metadata": {"finalizers": ["example.com/hold", "x.io/new"]}}
        )
    assert info.value.status == 422
    custom.patch_namespaced_custom_object(
        G, V, "default", P, "f", {"metadata": {"finalizers": None}}
    )
    with pytest.raises(ApiException) as gone:
        custom.get_namespaced_custom_object(G, V, "default", P, "f")
    assert gone.value.status == 404


def _owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }


def _configmap(name: str, owner: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name, "ownerReferences": [_owner_ref(owner)]}, "data": {"k": "v"}}


def test_owner_reference_cascades(custom: client.CustomObjectsApi, core: client.CoreV1Api) -> None:
    owner = custom.create_namespaced_custom_object(G, V, "default", P, widget("owner"))
    core.create_namespaced_config_map("default", _configmap("child", owner))
    custom.delete_namespaced_custom_object(G, V, "default", P, "owner")
    with pytest.raises(ApiException) as info:
        core.read_namespaced_config_map("child", "default")
    assert info.value.status == 404

    kept = custom.create_namespaced_custom_object(G, V, "default", P, widget("owner2"))
    core.create_namespaced_config_map("default", _configmap("orphan", kept))
    custom.delete_namespaced_custom_object(
        G, V, "default", P, "owner2", body=client.V1DeleteOptions(propagation_policy="Orphan")
    )
    orphan = core.read_namespaced_config_map("orphan", "default")
    assert not orphan.metadata.owner_references


def test_foreground_deletion_waits_for_dependents(
    custom: client.CustomObjectsApi, core: client.CoreV1Api
) -> None:
    owner = custom.create_namespaced_custom_object(G, V, "default", P, widget("fg"))
    held = _configmap("held", owner)
    held["metadata"]["finalizers"] = ["example.com/hold"]
    core.create_namespaced_config_map("default", held)
    custom.delete_namespaced_custom_object(
        G, V, "default", P, "fg", body=client.V1DeleteOptions(propagation_policy="Foreground")
    )
    waiting = custom.get_namespaced_custom_object(G, V, "default", P, "fg")
    assert "foregroundDeletion" in waiting["metadata"]["finalizers"]
    core.patch_namespaced_config_map("held", "default", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as info:
        custom.get_namespaced_custom_object(G, V, "default", P, "fg")
    assert info.value.status == 404


def test_namespace_deletion_removes_contents(core: client.CoreV1Api) -> None:
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="team")))
    core.create_namespaced_config_map(
        "team", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"), data={"a": "b"})
    )
    core.delete_namespace("team")
    with pytest.raises(ApiException) as info:
        core.read_namespace("team")
    assert info.value.status == 404
    with pytest.raises(ApiException) as missing_ns:
        core.create_namespaced_config_map(
            "team", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"))
        )
    assert missing_ns.value.status == 404


def test_selectors_and_pagination(custom: client.CustomObjectsApi) -> None:
    for i in range(7):
        labels = {"app": "web" if i % 2 else "db", "idx": str(i)}
        custom.create_namespaced_custom_object(
            G, V, "default", P, widget(f"w{i}", i, metadata={"labels": labels})
        )
    names = lambda result: [o["metadata"]["name"] for o in result["items"]]  # noqa: E731
    assert names(
        custom.list_namespaced_custom_object(G, V, "default", P, label_selector="app=web")
    ) == [
        "w1",
        "w3",
        "w5",
    ]
    assert names(
        custom.list_namespaced_custom_object(
            G, V, "default", P, label_selector="app in (db),idx notin (0,2)"
        )
    ) == ["w4", "w6"]
    assert (
        len(
            custom.list_namespaced_custom_object(G, V, "default", P, label_selector="!idx")["items"]
        )
        == 0
    )
    assert names(
        custom.list_namespaced_custom_object(G, V, "default", P, field_selector="metadata.name=w2")
    ) == ["w2"]
    assert (
        len(
            custom.list_namespaced_custom_object(
                G, V, "default", P, field_selector="metadata.name!=w2"
            )["items"]
        )
        == 6
    )

    first = custom.list_namespaced_custom_object(G, V, "default", P, limit=3)
    assert names(first) == ["w0", "w1", "w2"] and first["metadata"]["remainingItemCount"] == 4
    custom.create_namespaced_custom_object(G, V, "default", P, widget("w05"))  # not in the snapshot
    second = custom.list_namespaced_custom_object(
        G, V, "default", P, limit=3, _continue=first["metadata"]["continue"]
    )
    third = custom.list_namespaced_custom_object(
        G, V, "default", P, limit=3, _continue=second["metadata"]["continue"]
    )
    assert names(second) == ["w3", "w4", "w5"] and names(third) == ["w6"]
    assert "continue" not in third["metadata"]
    with pytest.raises(ApiException) as bad:
        custom.list_namespaced_custom_object(G, V, "default", P, field_selector="spec.size=1")
    assert bad.value.status == 400, "unsupported field labels are rejected"


def test_expired_continue_token_is_410(
    widgets: KubeEmulator, custom: client.CustomObjectsApi
) -> None:
    for i in range(3):
        custom.create_namespaced_custom_object(G, V, "default", P, widget(f"e{i}"))
    first = custom.list_namespaced_custom_object(G, V, "default", P, limit=1)
    widgets.compact()
    with pytest.raises(ApiException) as info:
        custom.list_namespaced_custom_object(
            G, V, "default", P, limit=1, _continue=first["metadata"]["continue"]
        )
    assert info.value.status == 410 and status_of(info.value)["reason"] == "Expired"


def test_dry_run_changes_nothing(custom: client.CustomObjectsApi) -> None:
    created = custom.create_namespaced_custom_object(
        G, V, "default", P, widget("dry"), dry_run="All"
    )
    assert created["metadata"]["name"] == "dry"
    with pytest.raises(ApiException):
        custom.get_namespaced_custom_object(G, V, "default", P, "dry")
    custom.create_namespaced_custom_object(G, V, "default", P, widget("dry", 1))
    custom.patch_namespaced_custom_object(
        G, V, "default", P, "dry", {"spec": {"size": 5}}, dry_run="All"
    )
    custom.delete_namespaced_custom_object(G, V, "default", P, "dry", dry_run="All")
    assert custom.get_namespaced_custom_object(G, V, "default", P, "dry")["spec"]["size"] == 1


def test_secret_string_data_and_base64(core: client.CoreV1Api) -> None:
    secret = core.create_namespaced_secret(
        "default",
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="s"), string_data={"key": "value"}, data={"a": "YQ=="}
        ),
    )
    assert secret.type == "Opaque" and secret.string_data is None
    assert base64.b64decode(secret.data["key"]) == b"value" and secret.data["a"] == "YQ=="
    with pytest.raises(ApiException) as info:
        core.create_namespaced_secret(
            "default", client.V1Secret(metadata=client.V1ObjectMeta(name="bad"), data={"a": "!!!"})
        )
    assert info.value.status == 400


def test_core_kinds_and_events_field_selector(
    core: client.CoreV1Api, kube_api_client: ApiClient
) -> None:
    node = client.V1Node(
        metadata=client.V1ObjectMeta(
            name="node-1", labels={"kubeegressgateway.azure.com/mode": "true"}
        )
    )
    core.create_node(node)
    core.patch_node_status(
        "node-1", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    )
    # The sync client sends dict patches to core kinds as strategic merge: conditions merge by type.
    core.patch_node_status(
        "node-1", {"status": {"conditions": [{"type": "NetworkUnavailable", "status": "False"}]}}
    )
    conditions = core.read_node("node-1").status.conditions
    assert [c.type for c in conditions] == ["Ready", "NetworkUnavailable"]
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="p1"),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="c", image="busybox")], node_name="node-1"
        ),
    )
    core.create_namespaced_pod("default", pod)
    assert [
        p.metadata.name
        for p in core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-1").items
    ] == ["p1"]
    with pytest.raises(ApiException) as invalid:
        core.create_namespaced_pod(
            "default", {"metadata": {"name": "p2"}, "spec": {"containers": []}}
        )
    assert invalid.value.status == 422
    event = client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="p1.1"),
        involved_object=client.V1ObjectReference(kind="Pod", name="p1", namespace="default"),
        reason="Scheduled",
        message="assigned",
        type="Normal",
    )
    core.create_namespaced_event("default", event)
    found = core.list_namespaced_event(
        "default", field_selector="involvedObject.name=p1,involvedObject.kind=Pod"
    )
    assert [e.reason for e in found.items] == ["Scheduled"]
    events_v1 = client.EventsV1Api(kube_api_client).list_namespaced_event("default")
    assert events_v1.items[0].note == "assigned" and events_v1.items[0].regarding.name == "p1"
    lease = client.V1Lease(
        metadata=client.V1ObjectMeta(name="l"), spec=client.V1LeaseSpec(holder_identity="me")
    )
    client.CoordinationV1Api(kube_api_client).create_namespaced_lease("default", lease)
    assert (
        client.CoordinationV1Api(kube_api_client)
        .read_namespaced_lease("l", "default")
        .spec.holder_identity
        == "me"
    )


def test_wrong_token_is_401(kube_emulator: KubeEmulator) -> None:
    configuration = client.Configuration()
    configuration.host = kube_emulator.url
    configuration.ssl_ca_cert = str(kube_emulator.ca_path)
    configuration.api_key = {"authorization": "Bearer wrong"}
    with ApiClient(configuration) as api, pytest.raises(ApiException) as info:
        client.CoreV1Api(api).list_namespace()
    assert info.value.status == 401 and status_of(info.value)["reason"] == "Unauthorized"


def test_delete_collection_by_label(custom: client.CustomObjectsApi) -> None:
    for name, app in [("d1", "web"), ("d2", "web"), ("d3", "db")]:
        custom.create_namespaced_custom_object(
            G, V, "default", P, widget(name, metadata={"labels": {"app": app}})
        )
    custom.delete_collection_namespaced_custom_object(G, V, "default", P, label_selector="app=web")
    left = custom.list_namespaced_custom_object(G, V, "default", P)["items"]
    assert [o["metadata"]["name"] for o in left] == ["d3"]


def test_terminating_namespace_refuses_new_content(core: client.CoreV1Api) -> None:
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="closing")))
    held = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="held", finalizers=["example.com/hold"])
    )
    core.create_namespaced_config_map("closing", held)
    core.delete_namespace("closing")
    assert core.read_namespace("closing").status.phase == "Terminating"
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(
            "closing", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="new"))
        )
    assert info.value.status == 403
    core.patch_namespaced_config_map("held", "closing", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as gone:
        core.read_namespace("closing")
    assert gone.value.status == 404


def test_events_v1_writes_are_visible_as_core_events(
    core: client.CoreV1Api, kube_api_client: ApiClient
) -> None:
    event = client.EventsV1Event(
        metadata=client.V1ObjectMeta(name="e1"),
        event_time="2026-01-01T00:00:00.000000Z",
        regarding=client.V1ObjectReference(kind="Widget", name="w", namespace="default"),
        reason="Reconciled",
        note="all good",
        type="Normal",
        action="Reconcile",
        reporting_controller="egressgw",
        reporting_instance="egressgw-1",
    )
    client.EventsV1Api(kube_api_client).create_namespaced_event("default", event)
    core_events = core.list_namespaced_event("default", field_selector="involvedObject.kind=Widget")
    assert [(e.reason, e.message) for e in core_events.items] == [("Reconciled", "all good")]


def test_crd_changes_apply_to_stored_objects(
    custom: client.CustomObjectsApi, kube_api_client: ApiClient
) -> None:
    created = custom.create_namespaced_custom_object(G, V, "default", P, widget("old", 1))
    extensions = client.ApiextensionsV1Api(kube_api_client)
    crd = extensions.read_custom_resource_definition("widgets.example.com")
    assert crd.status.conditions[-1].type == "Established"
    patch = [
        {
            "op": "add",
            "path": f"{TAGS_SCHEMA}/default",
            "value": ["new"],
        }
    ]
    extensions.patch_custom_resource_definition(
        "widgets.example.com", patch, _content_type="application/json-patch+json"
    )
    read = custom.get_namespaced_custom_object(G, V, "default", P, "old")
    assert read["spec"]["tags"] == ["new"], "defaults apply when objects are read from storage"
    assert read["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    extensions.delete_custom_resource_definition("widgets.example.com")
    with pytest.raises(ApiException) as info:
        custom.list_namespaced_custom_object(G, V, "default", P)
    assert info.value.status == 404
