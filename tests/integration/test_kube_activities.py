"""The Kubernetes activities against the emulator, through kubernetes_asyncio like the worker."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import kubernetes_asyncio
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from kubernetes_asyncio.client import ApiClient
from temporalio import workflow
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.kube.catalog import kube_activities
from activities.kube.events import EventActivities
from activities.kube.finalizers import FinalizerActivities
from activities.kube.gateway_keys import GatewayKeyActivities
from activities.kube.status import StatusActivities
from contracts import kube_names
from contracts.activity_io import (
    DELETE_GATEWAY_KEY,
    ENSURE_GATEWAY_KEY,
    RECORD_SGC_EVENT,
    REMOVE_SGC_FINALIZER,
    UPDATE_SGC_STATUS,
    ConditionUpdate,
    EventInput,
    GatewayKey,
    GatewayKeyInput,
    SgcRef,
    StatusUpdate,
)
from contracts.conditions import ConditionStatus
from egressgw.dev.temporal_server import TemporalDevServer
from sim.kube.server import KubeEmulator

SECRET_NS = "kube-system"
SGC_API = kube_names.GROUP_VERSION


@pytest_asyncio.fixture
async def aio_api(kubeconfig_path: Path) -> AsyncIterator[ApiClient]:
    api = await kubernetes_asyncio.config.new_client_from_config(config_file=str(kubeconfig_path))
    async with api:
        yield api


def sgc_object(name: str, finalizers: list[str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if finalizers:
        meta["finalizers"] = finalizers
    return {
        "apiVersion": SGC_API,
        "kind": kube_names.SGC_KIND,
        "metadata": meta,
        "spec": {"gatewayNodepoolName": "gwpool", "provisionPublicIps": True},
    }


async def create_sgc(emulator: KubeEmulator, name: str, **kw: Any) -> SgcRef:
    created = await emulator.create(sgc_object(name, **kw))
    return SgcRef("default", name, created["metadata"]["uid"])


async def get_sgc(emulator: KubeEmulator, name: str) -> dict[str, Any] | None:
    return await emulator.get(SGC_API, kube_names.SGC_KIND, name, "default")


def b64(data: dict[str, str], key: str) -> str:
    return base64.b64decode(data[key]).decode()


# --- key Secret ----------------------------------------------------------------------------------


async def test_gateway_key_secret_is_created_once_and_private_key_stays_in_it(
    kube_emulator: KubeEmulator, aio_api: ApiClient
) -> None:
    keys = GatewayKeyActivities(aio_api)
    env = ActivityEnvironment()
    sgc = await create_sgc(kube_emulator, "gw1")
    request = GatewayKeyInput(sgc=sgc, secret_namespace=SECRET_NS)

    key = await env.run(keys.ensure_gateway_key, request)

    secret = await kube_emulator.get("v1", "Secret", f"sgw-{sgc.uid}", SECRET_NS)
    assert secret is not None
    assert key == GatewayKey(key.public_key, f"sgw-{sgc.uid}", SECRET_NS)
    assert secret["metadata"]["labels"] == {
        kube_names.SECRET_OWNER_NAMESPACE_LABEL: "default",
        kube_names.SECRET_OWNER_NAME_LABEL: "gw1",
    }
    private_text = b64(secret["data"], "PrivateKey")
    private_raw = base64.b64decode(private_text)
    derived = X25519PrivateKey.from_private_bytes(private_raw).public_key()
    derived_text = base64.b64encode(derived.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    assert b64(secret["data"], "PublicKey") == derived_text == key.public_key
    # What crosses Temporal (the encoded result) and what a log line would show carry no secret.
    payloads = await DataConverter.default.encode([key])
    assert private_text not in str(payloads) and private_text not in repr(key)

    again = await env.run(keys.ensure_gateway_key, request)
    unchanged = await kube_emulator.get("v1", "Secret", f"sgw-{sgc.uid}", SECRET_NS)
    assert again == key
    assert unchanged == secret  # same resourceVersion: nothing was rewritten


async def test_gateway_key_secret_with_a_broken_key_or_labels_is_repaired(
    kube_emulator: KubeEmulator, aio_api: ApiClient
) -> None:
    keys = GatewayKeyActivities(aio_api)
    env = ActivityEnvironment()
    broken = SgcRef("default", "broken", "11111111-1111-1111-1111-111111111111")
    await kube_emulator.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"sgw-{broken.uid}", "namespace": SECRET_NS},
            "data": {"PrivateKey": base64.b64encode(b"not a key").decode()},
        }
    )
    key = await env.run(keys.ensure_gateway_key, GatewayKeyInput(broken, SECRET_NS))
    secret = await kube_emulator.get("v1", "Secret", f"sgw-{broken.uid}", SECRET_NS)
    assert secret is not None
    assert len(base64.b64decode(b64(secret["data"], "PrivateKey"))) == 32
    assert b64(secret["data"], "PublicKey") == key.public_key
    assert secret["metadata"]["labels"][kube_names.SECRET_OWNER_NAME_LABEL] == "broken"

    # A valid key without labels keeps its key (pods already peer with it) and gains the labels.
    unlabelled = SgcRef("default", "unlabelled", "22222222-2222-2222-2222-222222222222")
    stored = dict(secret["data"])
    await kube_emulator.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"sgw-{unlabelled.uid}", "namespace": SECRET_NS},
            "data": {"PrivateKey": stored["PrivateKey"]},
        }
    )
    kept = await env.run(keys.ensure_gateway_key, GatewayKeyInput(unlabelled, SECRET_NS))
    repaired = await kube_emulator.get("v1", "Secret", f"sgw-{unlabelled.uid}", SECRET_NS)
    assert repaired is not None
    assert kept.public_key == key.public_key
    assert repaired["data"] == stored
    assert repaired["metadata"]["labels"][kube_names.SECRET_OWNER_NAME_LABEL] == "unlabelled"


async def test_delete_gateway_key_is_idempotent(
    kube_emulator: KubeEmulator, aio_api: ApiClient
) -> None:
    keys = GatewayKeyActivities(aio_api)
    env = ActivityEnvironment()
    sgc = await create_sgc(kube_emulator, "gone")
    request = GatewayKeyInput(sgc, SECRET_NS)
    await env.run(keys.ensure_gateway_key, request)
    await env.run(keys.delete_gateway_key, request)
    assert await kube_emulator.get("v1", "Secret", f"sgw-{sgc.uid}", SECRET_NS) is None
    await env.run(keys.delete_gateway_key, request)  # already gone: done, no error


async def test_a_missing_secret_namespace_is_a_non_retryable_error_without_key_material(
    kube_emulator: KubeEmulator, aio_api: ApiClient
) -> None:
    keys = GatewayKeyActivities(aio_api)
    sgc = await create_sgc(kube_emulator, "nons")
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(
            keys.ensure_gateway_key, GatewayKeyInput(sgc, "no-such-namespace")
        )
    assert info.value.non_retryable
    assert "no-such-namespace" in info.value.message
    assert "PrivateKey" not in info.value.message


# --- status --------------------------------------------------------------------------------------


def ready(status: ConditionStatus, message: str) -> ConditionUpdate:
    return ConditionUpdate(kube_names.CONDITION_READY, status, "Provisioned", message)


async def test_status_is_written_with_profile_prefix_and_conditions(
    kube_emulator: KubeEmulator, aio_api: ApiClient
) -> None:
    status = StatusActivities(aio_api)
    env = ActivityEnvironment()
    sgc = await create_sgc(kube_emulator, "st")
    key = GatewayKey("cHVibGlj", f"sgw-{sgc.uid}", SECRET_NS)
    progressing = ConditionUpdate(
        kube_names.CONDITION_PROGRESSING, ConditionStatus.FALSE, "AsExpected", ""
    )
    await env.run(
        status.update_sgc_status,
        StatusUpdate(
            sgc=sgc,
            observed_generation=1,
            conditions=(ready(ConditionStatus.TRUE, "egress via 20.0.0.0/31"), progressing),
            egress_ip_prefix="20.0.0.0/31",
            server_ip="10.0.0.4",
            server_port=6000,
            key=key,
        ),
    )
    obj = await get_sgc(kube_emulator, "st")
    assert obj is not None
    written = obj["status"]
    assert written["observedGeneration"] == 1
    assert written["egressIpPrefix"] == "20.0.0.0/31"
    assert written["gatewayServerProfile"] == {
        "ip": "10.0.0.4",
        "port": 6000,
        "publicKey": "cHVibGlj",
        "privateKeySecretRef": {
            "apiVersion": "v1",
            "kind": "Secret",
            "name": f"sgw-{sgc.uid}",
            "namespace": SECRET_NS,
        },
    }
    assert [(c["type"], c["status"]) for c in written["conditions"]] == [
        ("Ready", "True"),
        ("Progressing", "False"),
    ]
    # Fields left None keep their value; the spec is untouched by a status write.
    await env.run(
        status.update_sgc_status,
        StatusUpdate(sgc=sgc, observed_generation=2, conditions=(progressing,)),
    )
    after = await get_sgc(kube_emulator, "st")
    assert after is not None
    assert after["status"]["egressIpPrefix"] == "20.0.0.0/31"
    assert after["status"]["gatewayServerProfile"] == written["gatewayServerProfile"]
    assert after["status"]["observedGeneration"] == 2
    assert after["spec"] == obj["spec"]


async def test_condition_keeps_last_transition_time_until_its_status_changes(
    kube_emulator: KubeEmulator, aio_api: ApiClient
) -> None:
    status = StatusActivities(aio_api)
    env = ActivityEnvironment()
    sgc = await create_sgc(kube_emulator, "ltt")
    obj = await get_sgc(kube_emulator, "ltt")
    assert obj is not None
    old_time = "2020-01-01T00:00:00Z"
    obj["status"] = {
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "Provisioning",
                "message": "creating",
                "lastTransitionTime": old_time,
            }
        ]
    }
    await kube_emulator.update(obj, subresource="status")

    await env.run(
        status.update_sgc_status,
        StatusUpdate(sgc, 1, (ready(ConditionStatus.FALSE, "still creating"),)),
    )
    same = await get_sgc(kube_emulator, "ltt")
    assert same is not None
    [condition] = same["status"]["conditions"]
    assert condition["message"] == "still creating"
    assert condition["lastTransitionTime"] == old_time

    await env.run(
        status.update_sgc_status, StatusUpdate(sgc, 1, (ready(ConditionStatus.TRUE, "done"),))
    )
    changed = await get_sgc(kube_emulator, "ltt")
    assert changed is not None
    [condition] = changed["status"]["conditions"]
    assert condition["status"] == "True" and condition["lastTransitionTime"] > old_time

    # The same update again writes nothing (no new resourceVersion, no watch event).
    await env.run(
        status.update_sgc_status, StatusUpdate(sgc, 1, (ready(ConditionStatus.TRUE, "done"),))
    )
    unchanged = await get_sgc(kube_emulator, "ltt")
    assert unchanged is not None
    assert unchanged["metadata"]["resourceVersion"] == changed["metadata"]["resourceVersion"]


async def test_status_of_a_recreated_or_deleted_object_is_not_written(
    kube_emulator: KubeEmulator, aio_api: ApiClient
) -> None:
    status = StatusActivities(aio_api)
    env = ActivityEnvironment()
    old = await create_sgc(kube_emulator, "again")
    await kube_emulator.delete(SGC_API, kube_names.SGC_KIND, "again", "default")
    await env.run(
        status.update_sgc_status, StatusUpdate(old, 1, (ready(ConditionStatus.TRUE, ""),))
    )
    new = await create_sgc(kube_emulator, "again")
    assert new.uid != old.uid
    await env.run(
        status.update_sgc_status, StatusUpdate(old, 1, (ready(ConditionStatus.TRUE, ""),))
    )
    obj = await get_sgc(kube_emulator, "again")
    assert obj is not None
    assert "status" not in obj or not obj["status"].get("conditions")


async def test_a_status_the_api_server_refuses_is_a_non_retryable_error(
    kube_emulator: KubeEmulator, aio_api: ApiClient
) -> None:
    status = StatusActivities(aio_api)
    sgc = await create_sgc(kube_emulator, "bad")
    empty_reason = ConditionUpdate("Ready", ConditionStatus.TRUE, "", "reason is required")
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(
            status.update_sgc_status, StatusUpdate(sgc, 1, (empty_reason,))
        )
    assert info.value.non_retryable
    assert "default/bad" in info.value.message and "HTTP 422" in info.value.message


# --- events --------------------------------------------------------------------------------------


async def test_repeated_events_aggregate_into_one_with_a_count(
    kube_emulator: KubeEmulator, aio_api: ApiClient
) -> None:
    events = EventActivities(aio_api)
    env = ActivityEnvironment()
    sgc = await create_sgc(kube_emulator, "ev")
    waiting = EventInput(sgc, "Normal", "Reconciling", "waiting for the load balancer")
    await env.run(events.record_sgc_event, waiting)
    await env.run(events.record_sgc_event, waiting)
    await env.run(events.record_sgc_event, waiting)
    await env.run(
        events.record_sgc_event, EventInput(sgc, "Normal", "Reconciled", "egress via 1.2.3.0/31")
    )
    core = kubernetes_asyncio.client.CoreV1Api(aio_api)
    # What `kubectl describe` asks for: the events of this object, by field selector.
    listed = await core.list_namespaced_event(
        "default", field_selector=f"involvedObject.uid={sgc.uid}"
    )
    seen = sorted((e.reason, e.count, e.source.component) for e in listed.items)
    assert seen == [
        ("Reconciled", 1, "egressgw-controller"),
        ("Reconciling", 3, "egressgw-controller"),
    ]
    reconciling = next(e for e in listed.items if e.reason == "Reconciling")
    assert reconciling.involved_object.kind == kube_names.SGC_KIND
    assert reconciling.involved_object.name == "ev"
    assert reconciling.type == "Normal"
    assert reconciling.last_timestamp >= reconciling.first_timestamp


# --- finalizer -----------------------------------------------------------------------------------


async def test_finalizer_removal_keeps_other_finalizers_and_is_idempotent(
    kube_emulator: KubeEmulator, aio_api: ApiClient
) -> None:
    finalizers = FinalizerActivities(aio_api)
    env = ActivityEnvironment()
    sgc = await create_sgc(
        kube_emulator, "fin", finalizers=[kube_names.SGC_FINALIZER, "example.com/other"]
    )
    await kube_emulator.delete(SGC_API, kube_names.SGC_KIND, "fin", "default")
    await env.run(finalizers.remove_sgc_finalizer, sgc)
    obj = await get_sgc(kube_emulator, "fin")
    assert obj is not None and obj["metadata"]["finalizers"] == ["example.com/other"]
    await env.run(finalizers.remove_sgc_finalizer, sgc)  # absent: nothing to do

    only_ours = await create_sgc(kube_emulator, "fin2", finalizers=[kube_names.SGC_FINALIZER])
    await kube_emulator.delete(SGC_API, kube_names.SGC_KIND, "fin2", "default")
    await env.run(finalizers.remove_sgc_finalizer, only_ours)
    assert await get_sgc(kube_emulator, "fin2") is None  # the deletion completed
    await env.run(finalizers.remove_sgc_finalizer, only_ours)  # 404: done


async def test_finalizer_of_a_recreated_object_is_left_alone(
    kube_emulator: KubeEmulator, aio_api: ApiClient
) -> None:
    finalizers = FinalizerActivities(aio_api)
    stale = SgcRef("default", "reborn", "33333333-3333-3333-3333-333333333333")
    await create_sgc(kube_emulator, "reborn", finalizers=[kube_names.SGC_FINALIZER])
    await ActivityEnvironment().run(finalizers.remove_sgc_finalizer, stale)
    obj = await get_sgc(kube_emulator, "reborn")
    assert obj is not None and obj["metadata"]["finalizers"] == [kube_names.SGC_FINALIZER]


# --- through a real worker -----------------------------------------------------------------------


@workflow.defn(name="KubeActivitiesProbe")
class KubeActivitiesProbe:
    """Calls the Kubernetes activities by name, as GatewayConfigWorkflow does."""

    @workflow.run
    async def run(self, sgc: SgcRef, teardown: bool) -> GatewayKey | None:
        timeout = timedelta(seconds=10)
        if teardown:
            await workflow.execute_activity(
                DELETE_GATEWAY_KEY, GatewayKeyInput(sgc, SECRET_NS), start_to_close_timeout=timeout
            )
            await workflow.execute_activity(
                REMOVE_SGC_FINALIZER, sgc, start_to_close_timeout=timeout
            )
            return None
        key: GatewayKey = await workflow.execute_activity(
            ENSURE_GATEWAY_KEY,
            GatewayKeyInput(sgc, SECRET_NS),
            result_type=GatewayKey,
            start_to_close_timeout=timeout,
        )
        ready_now = ConditionUpdate("Ready", ConditionStatus.TRUE, "Provisioned", "ready")
        await workflow.execute_activity(
            UPDATE_SGC_STATUS,
            StatusUpdate(sgc, 1, (ready_now,), key=key),
            start_to_close_timeout=timeout,
        )
        await workflow.execute_activity(
            RECORD_SGC_EVENT,
            EventInput(sgc, "Normal", "Reconciled", "ready"),
            start_to_close_timeout=timeout,
        )
        return key


def payload_texts(node: Any) -> list[str]:
    """Every payload's data in a history's JSON, decoded (payload data is base64 there)."""
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("data"), str) and isinstance(node.get("metadata"), dict):
            found.append(base64.b64decode(node["data"]).decode(errors="replace"))
        for value in node.values():
            found.extend(payload_texts(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(payload_texts(value))
    return found


async def test_activities_run_by_name_on_a_worker_and_no_key_reaches_the_history(
    kube_emulator: KubeEmulator, aio_api: ApiClient, temporal_server: TemporalDevServer
) -> None:
    sgc = await create_sgc(kube_emulator, "probe", finalizers=[kube_names.SGC_FINALIZER])
    client = await Client.connect(temporal_server.address)
    queue = f"kube-activities-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[KubeActivitiesProbe],
        activities=kube_activities(aio_api),
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        provision = await client.start_workflow(
            KubeActivitiesProbe.run, args=[sgc, False], id=f"probe-{sgc.uid}", task_queue=queue
        )
        key = await provision.result()
        assert key is not None
        secret = await kube_emulator.get("v1", "Secret", f"sgw-{sgc.uid}", SECRET_NS)
        assert secret is not None
        private_key = b64(secret["data"], "PrivateKey")
        obj = await get_sgc(kube_emulator, "probe")
        assert obj is not None
        assert obj["status"]["gatewayServerProfile"]["publicKey"] == key.public_key

        texts = payload_texts(json.loads((await provision.fetch_history()).to_json()))
        assert any(key.public_key in text for text in texts)  # the scan does see payloads
        assert not any(private_key in text for text in texts)

        await client.execute_workflow(
            KubeActivitiesProbe.run, args=[sgc, True], id=f"teardown-{sgc.uid}", task_queue=queue
        )
    assert await kube_emulator.get("v1", "Secret", f"sgw-{sgc.uid}", SECRET_NS) is None
    obj = await get_sgc(kube_emulator, "probe")  # not being deleted: only the finalizer goes
    assert obj is not None and not obj["metadata"].get("finalizers")
