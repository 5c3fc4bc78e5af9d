"""The Kubernetes activities against the real API server, through kubernetes_asyncio like the
worker, as the controller's ServiceAccount (deploy/rbac/controller.yaml). Where a test must know
that nothing was written, its client goes through the request-logging proxy
(tests/fixtures/kube_proxy.py): a real API server keeps the resourceVersion of a no-op write too.
"""

from __future__ import annotations

import base64
import json
import uuid
from contextlib import aclosing
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import kubernetes_asyncio
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from kubernetes_asyncio.client import ApiClient, CustomObjectsApi
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
from activities.kube.pod_endpoints import PodEndpointActivities
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
    ListPeersInput,
    SgcRef,
    StatusUpdate,
)
from contracts.conditions import ConditionStatus
from contracts.node_io import GatewayPeer
from egressgw.dev.temporal_server import TemporalDevServer
from kubeclient.kube_source import KubeListWatch
from kubeclient.list_watch import list_then_watch
from kubeclient.object_cache import CachingSource, ObjectCache
from tests.fixtures.cluster import Cluster, KubeObjects
from tests.fixtures.kube_grants import Granted
from tests.fixtures.kube_proxy import KubeProxy

SGC_API = kube_names.GROUP_VERSION


@dataclass(frozen=True)
class Namespace:
    """The test's namespace: its configurations and, as --secret-namespace, their key Secrets."""

    name: str
    kube: KubeObjects  # the admin's view, to set up and inspect

    async def create_sgc(self, name: str, finalizers: list[str] | None = None) -> SgcRef:
        meta: dict[str, Any] = {"name": name, "namespace": self.name}
        if finalizers:
            meta["finalizers"] = finalizers
        created = await self.kube.create(
            {
                "apiVersion": SGC_API,
                "kind": kube_names.SGC_KIND,
                "metadata": meta,
                "spec": {"gatewayNodepoolName": "gwpool", "provisionPublicIps": True},
            }
        )
        return SgcRef(self.name, name, created["metadata"]["uid"])

    async def get_sgc(self, name: str) -> dict[str, Any] | None:
        return await self.kube.get(SGC_API, kube_names.SGC_KIND, name, self.name)

    async def delete_sgc(self, name: str) -> None:
        assert await self.kube.delete(SGC_API, kube_names.SGC_KIND, name, self.name)

    async def secret(self, name: str) -> dict[str, Any] | None:
        return await self.kube.get("v1", "Secret", name, self.name)


@pytest.fixture
def ns(kube_namespace: str, kube: KubeObjects) -> Namespace:
    return Namespace(kube_namespace, kube)


def b64(data: dict[str, str], key: str) -> str:
    return base64.b64decode(data[key]).decode()


# --- key Secret ----------------------------------------------------------------------------------


async def test_gateway_key_secret_is_created_once_and_private_key_stays_in_it(
    ns: Namespace, controller_via_proxy: ApiClient, kube_proxy: KubeProxy
) -> None:
    keys = GatewayKeyActivities(controller_via_proxy)
    env = ActivityEnvironment()
    sgc = await ns.create_sgc("gw1")
    request = GatewayKeyInput(sgc=sgc, secret_namespace=ns.name)

    key = await env.run(keys.ensure_gateway_key, request)

    secret = await ns.secret(f"sgw-{sgc.uid}")
    assert secret is not None
    assert key == GatewayKey(key.public_key, f"sgw-{sgc.uid}", ns.name)
    assert secret["metadata"]["labels"] == {
        kube_names.SECRET_OWNER_NAMESPACE_LABEL: ns.name,
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

    kube_proxy.requests.clear()
    again = await env.run(keys.ensure_gateway_key, request)
    unchanged = await ns.secret(f"sgw-{sgc.uid}")
    assert again == key
    assert unchanged == secret
    assert [r.method for r in kube_proxy.sent()] == ["GET"]  # read, found intact, not rewritten


async def test_gateway_key_secret_with_a_broken_key_or_labels_is_repaired(
    ns: Namespace, controller_here: Granted
) -> None:
    keys = GatewayKeyActivities(controller_here.api)
    env = ActivityEnvironment()
    broken = SgcRef(ns.name, "broken", "11111111-1111-1111-1111-111111111111")
    await ns.kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"sgw-{broken.uid}", "namespace": ns.name},
            "data": {"PrivateKey": base64.b64encode(b"not a key").decode()},
        }
    )
    key = await env.run(keys.ensure_gateway_key, GatewayKeyInput(broken, ns.name))
    secret = await ns.secret(f"sgw-{broken.uid}")
    assert secret is not None
    assert len(base64.b64decode(b64(secret["data"], "PrivateKey"))) == 32
    assert b64(secret["data"], "PublicKey") == key.public_key
    assert secret["metadata"]["labels"][kube_names.SECRET_OWNER_NAME_LABEL] == "broken"

    # A valid key without labels keeps its key (pods already peer with it) and gains the labels.
    unlabelled = SgcRef(ns.name, "unlabelled", "22222222-2222-2222-2222-222222222222")
    stored = dict(secret["data"])
    await ns.kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"sgw-{unlabelled.uid}", "namespace": ns.name},
            "data": {"PrivateKey": stored["PrivateKey"]},
        }
    )
    kept = await env.run(keys.ensure_gateway_key, GatewayKeyInput(unlabelled, ns.name))
    repaired = await ns.secret(f"sgw-{unlabelled.uid}")
    assert repaired is not None
    assert kept.public_key == key.public_key
    assert repaired["data"] == stored
    assert repaired["metadata"]["labels"][kube_names.SECRET_OWNER_NAME_LABEL] == "unlabelled"


async def test_delete_gateway_key_is_idempotent(ns: Namespace, controller_here: Granted) -> None:
    keys = GatewayKeyActivities(controller_here.api)
    env = ActivityEnvironment()
    sgc = await ns.create_sgc("gone")
    request = GatewayKeyInput(sgc, ns.name)
    await env.run(keys.ensure_gateway_key, request)
    await env.run(keys.delete_gateway_key, request)
    assert await ns.secret(f"sgw-{sgc.uid}") is None
    await env.run(keys.delete_gateway_key, request)  # already gone: done, no error


async def test_a_missing_secret_namespace_is_an_error_naming_it_without_key_material(
    ns: Namespace, kube_api: ApiClient, controller_here: Granted
) -> None:
    sgc = await ns.create_sgc("nons")
    request = GatewayKeyInput(sgc, "no-such-namespace")
    # As the controller's ServiceAccount, whose Role is bound in its own secret namespace only,
    # the API server refuses before it looks (403: retried within the activity's policy, as a
    # restarted API server denies for seconds); with rights everywhere, the namespace is not
    # found (404: final). Either way the error names the namespace and shows no key.
    for api, status, final in (
        (controller_here.api, "HTTP 403", False),
        (kube_api, "HTTP 404", True),
    ):
        with pytest.raises(ApplicationError) as info:
            await ActivityEnvironment().run(GatewayKeyActivities(api).ensure_gateway_key, request)
        assert info.value.non_retryable is final
        assert "no-such-namespace" in info.value.message and status in info.value.message
        assert "PrivateKey" not in info.value.message


# --- status --------------------------------------------------------------------------------------


def ready(status: ConditionStatus, message: str) -> ConditionUpdate:
    return ConditionUpdate(kube_names.CONDITION_READY, status, "Provisioned", message)


async def test_status_is_written_with_profile_prefix_and_conditions(
    ns: Namespace, controller_here: Granted
) -> None:
    status = StatusActivities(controller_here.api)
    env = ActivityEnvironment()
    sgc = await ns.create_sgc("st")
    key = GatewayKey("cHVibGlj", f"sgw-{sgc.uid}", ns.name)
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
    obj = await ns.get_sgc("st")
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
            "namespace": ns.name,
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
    after = await ns.get_sgc("st")
    assert after is not None
    assert after["status"]["egressIpPrefix"] == "20.0.0.0/31"
    assert after["status"]["gatewayServerProfile"] == written["gatewayServerProfile"]
    assert after["status"]["observedGeneration"] == 2
    assert after["spec"] == obj["spec"]


async def test_condition_keeps_last_transition_time_until_its_status_changes(
    ns: Namespace, controller_via_proxy: ApiClient, kube_proxy: KubeProxy
) -> None:
    status = StatusActivities(controller_via_proxy)
    env = ActivityEnvironment()
    sgc = await ns.create_sgc("ltt")
    old_time = "2020-01-01T00:00:00Z"
    condition = {
        "type": "Ready",
        "status": "False",
        "reason": "Provisioning",
        "message": "creating",
        "lastTransitionTime": old_time,
    }
    await ns.kube.patch(
        SGC_API,
        kube_names.SGC_KIND,
        "ltt",
        {"status": {"conditions": [condition]}},
        ns.name,
        subresource="status",
    )

    await env.run(
        status.update_sgc_status,
        StatusUpdate(sgc, 1, (ready(ConditionStatus.FALSE, "still creating"),)),
    )
    same = await ns.get_sgc("ltt")
    assert same is not None
    [condition] = same["status"]["conditions"]
    assert condition["message"] == "still creating"
    assert condition["lastTransitionTime"] == old_time

    await env.run(
        status.update_sgc_status, StatusUpdate(sgc, 1, (ready(ConditionStatus.TRUE, "done"),))
    )
    changed = await ns.get_sgc("ltt")
    assert changed is not None
    [condition] = changed["status"]["conditions"]
    assert condition["status"] == "True" and condition["lastTransitionTime"] > old_time

    # The same update again writes nothing: no PATCH is sent (no watch event, no new version).
    kube_proxy.requests.clear()
    await env.run(
        status.update_sgc_status, StatusUpdate(sgc, 1, (ready(ConditionStatus.TRUE, "done"),))
    )
    assert [r.method for r in kube_proxy.sent()] == ["GET"]
    unchanged = await ns.get_sgc("ltt")
    assert unchanged is not None
    assert unchanged["metadata"]["resourceVersion"] == changed["metadata"]["resourceVersion"]


async def test_status_of_a_recreated_or_deleted_object_is_not_written(
    ns: Namespace, controller_here: Granted
) -> None:
    status = StatusActivities(controller_here.api)
    env = ActivityEnvironment()
    old = await ns.create_sgc("again")
    await ns.delete_sgc("again")
    await env.run(
        status.update_sgc_status, StatusUpdate(old, 1, (ready(ConditionStatus.TRUE, ""),))
    )
    new = await ns.create_sgc("again")
    assert new.uid != old.uid
    await env.run(
        status.update_sgc_status, StatusUpdate(old, 1, (ready(ConditionStatus.TRUE, ""),))
    )
    obj = await ns.get_sgc("again")
    assert obj is not None
    assert "status" not in obj or not obj["status"].get("conditions")


async def test_a_status_the_api_server_refuses_is_a_non_retryable_error(
    ns: Namespace, controller_here: Granted
) -> None:
    status = StatusActivities(controller_here.api)
    sgc = await ns.create_sgc("bad")
    empty_reason = ConditionUpdate("Ready", ConditionStatus.TRUE, "", "reason is required")
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(
            status.update_sgc_status, StatusUpdate(sgc, 1, (empty_reason,))
        )
    assert info.value.non_retryable
    assert f"{ns.name}/bad" in info.value.message and "HTTP 422" in info.value.message
    assert "status.conditions[0].reason" in info.value.message  # the API server names the field


# --- events --------------------------------------------------------------------------------------


async def test_repeated_events_aggregate_into_one_with_a_count(
    ns: Namespace, controller_here: Granted, kube_api: ApiClient, kube_cluster: Cluster
) -> None:
    events = EventActivities(controller_here.api)
    env = ActivityEnvironment()
    sgc = await ns.create_sgc("ev")
    waiting = EventInput(sgc, "Normal", "Reconciling", "waiting for the load balancer")
    await env.run(events.record_sgc_event, waiting)
    await env.run(events.record_sgc_event, waiting)
    await env.run(events.record_sgc_event, waiting)
    await env.run(
        events.record_sgc_event, EventInput(sgc, "Normal", "Reconciled", "egress via 1.2.3.0/31")
    )
    core = kubernetes_asyncio.client.CoreV1Api(kube_api)
    # What `kubectl describe` asks for: the events of this object, by field selector.
    listed = await core.list_namespaced_event(
        ns.name, field_selector=f"involvedObject.uid={sgc.uid}"
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

    # And what a user reads there: both, the repeated one counted.
    described = await kube_cluster.control_plane.kubectl("describe", "sgc", "-n", ns.name, "ev")
    events_table = described.split("Events:", 1)[1]
    assert "Reconciling" in events_table and "(x3 over" in events_table
    assert "egress via 1.2.3.0/31" in events_table


# --- finalizer -----------------------------------------------------------------------------------


async def test_finalizer_removal_keeps_other_finalizers_and_is_idempotent(
    ns: Namespace, controller_here: Granted
) -> None:
    finalizers = FinalizerActivities(controller_here.api)
    env = ActivityEnvironment()
    sgc = await ns.create_sgc("fin", finalizers=[kube_names.SGC_FINALIZER, "example.com/other"])
    await ns.delete_sgc("fin")
    await env.run(finalizers.remove_sgc_finalizer, sgc)
    obj = await ns.get_sgc("fin")
    assert obj is not None and obj["metadata"]["finalizers"] == ["example.com/other"]
    assert obj["metadata"]["deletionTimestamp"]  # still being deleted, held by the other one
    await env.run(finalizers.remove_sgc_finalizer, sgc)  # absent: nothing to do

    only_ours = await ns.create_sgc("fin2", finalizers=[kube_names.SGC_FINALIZER])
    await ns.delete_sgc("fin2")
    await env.run(finalizers.remove_sgc_finalizer, only_ours)
    assert await ns.get_sgc("fin2") is None  # the deletion completed
    await env.run(finalizers.remove_sgc_finalizer, only_ours)  # 404: done


async def test_finalizer_of_a_recreated_object_is_left_alone(
    ns: Namespace, controller_here: Granted
) -> None:
    finalizers = FinalizerActivities(controller_here.api)
    stale = SgcRef(ns.name, "reborn", "33333333-3333-3333-3333-333333333333")
    await ns.create_sgc("reborn", finalizers=[kube_names.SGC_FINALIZER])
    await ActivityEnvironment().run(finalizers.remove_sgc_finalizer, stale)
    obj = await ns.get_sgc("reborn")
    assert obj is not None and obj["metadata"]["finalizers"] == [kube_names.SGC_FINALIZER]


# --- pods' peers ---------------------------------------------------------------------------------


async def test_gateway_peers_are_the_pod_endpoints_that_name_the_configuration(
    ns: Namespace, controller_here: Granted
) -> None:
    sgc = await ns.create_sgc("peers")
    await ns.kube.create(pod_endpoint(ns.name, "web-1", "peers", "10.244.1.8/32", "K2="))
    await ns.kube.create(pod_endpoint(ns.name, "web-0", "peers", "10.244.1.7/32", "K1="))
    await ns.kube.create(pod_endpoint(ns.name, "other", "elsewhere", "10.244.1.9/32", "K3="))
    await ns.kube.create(pod_endpoint(ns.name, "keyless", "peers", "10.244.1.10/32", ""))

    found = await ActivityEnvironment().run(
        PodEndpointActivities(controller_here.api).list_gateway_peers,
        ListPeersInput.of(sgc, from_watch_cache=False),
    )

    assert found.as_table().rows() == (
        GatewayPeer("K1=", "10.244.1.7", f"{ns.name}/web-0"),
        GatewayPeer("K2=", "10.244.1.8", f"{ns.name}/web-1"),
    )
    assert found.skipped == (f"{ns.name}/keyless: podPublicKey is empty",)


def pod_endpoint(namespace: str, name: str, sgc: str, ip: str, key: str) -> dict[str, Any]:
    return {
        "apiVersion": SGC_API,
        "kind": "PodEndpoint",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"staticGatewayConfiguration": sgc, "podIpAddress": ip, "podPublicKey": key},
    }


async def test_a_pass_after_a_watched_change_reads_the_watch_cache_and_the_periodic_one_the_api(
    ns: Namespace, controller_here: Granted
) -> None:
    sgc = await ns.create_sgc("cached")
    await ns.kube.create(pod_endpoint(ns.name, "web-0", "cached", "10.244.1.7/32", "K1="))
    cache = ObjectCache()
    activities = PodEndpointActivities(controller_here.api, cache)
    env = ActivityEnvironment()
    cached = ListPeersInput.of(sgc, from_watch_cache=True)
    listed = ListPeersInput.of(sgc, from_watch_cache=False)

    # Before its first listing the cache is not trusted: the API server answers.
    assert len((await env.run(activities.list_gateway_peers, cached)).as_table().rows()) == 1

    source = CachingSource(
        KubeListWatch(
            CustomObjectsApi(controller_here.api).list_cluster_custom_object,
            kube_names.API_GROUP,
            kube_names.API_VERSION,
            kube_names.POD_ENDPOINT_PLURAL,
        ),
        cache,
    )
    created = False
    async with aclosing(list_then_watch(source)) as events:
        # The listing fills the cache (every namespace's PodEndpoints); web-1 arrives by watch.
        async for event in events:
            cache.apply(event)
            if not created:
                await ns.kube.create(
                    pod_endpoint(ns.name, "web-1", "cached", "10.244.1.8/32", "K2=")
                )
                created = True
            if len(cache.objects(ns.name)) == 2:
                break
    # No watch any more: what the API server holds from now on differs from the cache.
    await ns.kube.delete(SGC_API, "PodEndpoint", "web-0", ns.name)

    from_cache = await env.run(activities.list_gateway_peers, cached)
    from_api = await env.run(activities.list_gateway_peers, listed)

    assert [p.pod_endpoint for p in from_cache.as_table().rows()] == [
        f"{ns.name}/web-0",
        f"{ns.name}/web-1",
    ]
    assert [p.pod_endpoint for p in from_api.as_table().rows()] == [f"{ns.name}/web-1"]


# --- through a real worker -----------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeInput:
    sgc: SgcRef
    secret_namespace: str
    teardown: bool


@workflow.defn(name="KubeActivitiesProbe")
class KubeActivitiesProbe:
    """Calls the Kubernetes activities by name, as GatewayConfigWorkflow does."""

    @workflow.run
    async def run(self, request: ProbeInput) -> GatewayKey | None:
        sgc = request.sgc
        keyed = GatewayKeyInput(sgc, request.secret_namespace)
        timeout = timedelta(seconds=10)
        if request.teardown:
            await workflow.execute_activity(
                DELETE_GATEWAY_KEY, keyed, start_to_close_timeout=timeout
            )
            await workflow.execute_activity(
                REMOVE_SGC_FINALIZER, sgc, start_to_close_timeout=timeout
            )
            return None
        key: GatewayKey = await workflow.execute_activity(
            ENSURE_GATEWAY_KEY, keyed, result_type=GatewayKey, start_to_close_timeout=timeout
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
    ns: Namespace, controller_here: Granted, temporal_server: TemporalDevServer
) -> None:
    sgc = await ns.create_sgc("probe", finalizers=[kube_names.SGC_FINALIZER])
    client = await Client.connect(temporal_server.address)
    queue = f"kube-activities-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[KubeActivitiesProbe],
        activities=kube_activities(controller_here.api),
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        provision = await client.start_workflow(
            KubeActivitiesProbe.run,
            ProbeInput(sgc, ns.name, teardown=False),
            id=f"probe-{sgc.uid}",
            task_queue=queue,
        )
        key = await provision.result()
        assert key is not None
        secret = await ns.secret(f"sgw-{sgc.uid}")
        assert secret is not None
        private_key = b64(secret["data"], "PrivateKey")
        obj = await ns.get_sgc("probe")
        assert obj is not None
        assert obj["status"]["gatewayServerProfile"]["publicKey"] == key.public_key

        texts = payload_texts(json.loads((await provision.fetch_history()).to_json()))
        assert any(key.public_key in text for text in texts)  # the scan does see payloads
        assert not any(private_key in text for text in texts)

        await client.execute_workflow(
            KubeActivitiesProbe.run,
            ProbeInput(sgc, ns.name, teardown=True),
            id=f"teardown-{sgc.uid}",
            task_queue=queue,
        )
    assert await ns.secret(f"sgw-{sgc.uid}") is None
    obj = await ns.get_sgc("probe")  # not being deleted: only the finalizer goes
    assert obj is not None and not obj["metadata"].get("finalizers")
