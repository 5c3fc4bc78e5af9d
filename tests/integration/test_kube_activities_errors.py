"""How Kubernetes API failures become Temporal outcomes, against the real API server: a real
conflict (a concurrent write lands just before the activity's write, through the proxy of
tests/fixtures/kube_proxy.py), a real 403 (a component without the permission), throttling and
server trouble answered by the proxy; and the key Secret's decisions."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient
from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.kube.errors import (
    CONFLICT_ERROR,
    DENIED_ERROR,
    UNAVAILABLE_ERROR,
)
from activities.kube.events import EventActivities
from activities.kube.gateway_keys import (
    GatewayKeyActivities,
    new_key_pair,
    secret_data,
    secret_repairs,
    stored_key_pair,
)
from activities.kube.status import StatusActivities
from contracts import kube_names
from contracts.activity_io import (
    RECORD_SGC_EVENT,
    ConditionUpdate,
    EventInput,
    GatewayKeyInput,
    SgcRef,
    StatusUpdate,
)
from contracts.conditions import ConditionStatus
from egressgw.dev.temporal_server import TemporalDevServer
from tests.fixtures.cluster import KubeObjects
from tests.fixtures.kube_grants import Granted
from tests.fixtures.kube_proxy import KubeProxy

SGC_API = kube_names.GROUP_VERSION


async def create_sgc(kube: KubeObjects, namespace: str, name: str) -> SgcRef:
    created = await kube.create(
        {
            "apiVersion": SGC_API,
            "kind": kube_names.SGC_KIND,
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"gatewayNodepoolName": "gwpool"},
        }
    )
    return SgcRef(namespace, name, created["metadata"]["uid"])


def ready(message: str) -> ConditionUpdate:
    return ConditionUpdate(kube_names.CONDITION_READY, ConditionStatus.TRUE, "Provisioned", message)


async def test_a_status_write_that_lost_a_race_is_a_retryable_conflict_and_the_retry_keeps_both(
    kube: KubeObjects,
    kube_namespace: str,
    kube_proxy: KubeProxy,
    controller_via_proxy: ApiClient,
) -> None:
    sgc = await create_sgc(kube, kube_namespace, "raced")
    status = StatusActivities(controller_via_proxy)

    async def someone_else_writes() -> None:
        await kube.patch(
            SGC_API,
            kube_names.SGC_KIND,
            "raced",
            {"metadata": {"labels": {"team": "a"}}},
            kube_namespace,
        )

    # The activity has read the object; before its write arrives, another writer changes it.
    kube_proxy.before_next(
        "PATCH", "*/staticgatewayconfigurations/raced/status", someone_else_writes
    )
    update = StatusUpdate(sgc, 1, (ready("egress via 20.0.0.0/31"),))
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(status.update_sgc_status, update)
    assert info.value.type == CONFLICT_ERROR and not info.value.non_retryable
    assert "HTTP 409" in info.value.message and f"{kube_namespace}/raced" in info.value.message

    await ActivityEnvironment().run(status.update_sgc_status, update)  # the retry
    obj = await kube.get(SGC_API, kube_names.SGC_KIND, "raced", kube_namespace)
    assert obj is not None
    assert obj["metadata"]["labels"] == {"team": "a"}
    assert obj["status"]["conditions"][0]["message"] == "egress via 20.0.0.0/31"


async def test_a_call_the_component_may_not_make_is_retried_with_the_api_servers_message(
    kube: KubeObjects, kube_namespace: str, agent_here: Granted
) -> None:
    # The agent may read key Secrets but never create one: a real 403 from RBAC. Retryable (the
    # activity's policy bounds it): a restarted API server denies for seconds what it allows.
    sgc = await create_sgc(kube, kube_namespace, "forbidden")
    keys = GatewayKeyActivities(agent_here.api)
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(
            keys.ensure_gateway_key, GatewayKeyInput(sgc, kube_namespace)
        )
    assert not info.value.non_retryable and info.value.type == DENIED_ERROR
    assert info.value.message.startswith(
        f"create Secret {kube_namespace}/sgw-{sgc.uid}: HTTP 403: "
    )
    assert f'User "{agent_here.user}" cannot create resource "secrets"' in info.value.message
    assert await kube.get("v1", "Secret", f"sgw-{sgc.uid}", kube_namespace) is None


async def test_server_trouble_is_retryable_without_a_delay_of_its_own(
    kube: KubeObjects,
    kube_namespace: str,
    kube_proxy: KubeProxy,
    controller_via_proxy: ApiClient,
) -> None:
    sgc = await create_sgc(kube, kube_namespace, "unwell")
    kube_proxy.answer_next("GET", "*/secrets/sgw-*", 503, message="etcdserver: leader changed")
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(
            GatewayKeyActivities(controller_via_proxy).ensure_gateway_key,
            GatewayKeyInput(sgc, kube_namespace),
        )
    assert not info.value.non_retryable and info.value.type == UNAVAILABLE_ERROR
    assert info.value.next_retry_delay is None
    assert info.value.message == (
        f"read Secret {kube_namespace}/sgw-{sgc.uid}: HTTP 503: etcdserver: leader changed"
    )


@dataclass(frozen=True)
class EventProbeInput:
    event: EventInput


@workflow.defn(name="KubeThrottlingProbe")
class EventProbe:
    """Records one event with a quick retry policy: only the server's Retry-After slows it."""

    @workflow.run
    async def run(self, request: EventProbeInput) -> None:
        await workflow.execute_activity(
            RECORD_SGC_EVENT,
            request.event,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )


async def test_throttling_is_retried_after_the_servers_retry_after(
    kube: KubeObjects,
    kube_namespace: str,
    kube_proxy: KubeProxy,
    controller_via_proxy: ApiClient,
    temporal_server: TemporalDevServer,
) -> None:
    sgc = await create_sgc(kube, kube_namespace, "busy")
    kube_proxy.answer_next(
        "POST", "*/events", 429, message="too many requests", headers={"Retry-After": "2"}
    )
    client = await Client.connect(temporal_server.address)
    queue = f"kube-throttling-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[EventProbe],
        activities=[EventActivities(controller_via_proxy).record_sgc_event],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        await client.execute_workflow(
            EventProbe.run,
            EventProbeInput(EventInput(sgc, "Normal", "Reconciled", "ready")),
            id=f"throttled-{sgc.uid}",
            task_queue=queue,
        )
    refused, created = kube_proxy.sent("POST", "*/events")
    assert (refused.status, created.status) == (429, 201)
    assert created.at - refused.at >= 2.0  # not the policy's 100 ms
    events = await kube.list("v1", "Event", kube_namespace)
    assert [e["reason"] for e in events] == ["Reconciled"]


# --- the key Secret's decisions (pure) ----------------------------------------------------------


def test_a_stored_key_is_kept_and_its_public_key_derived() -> None:
    pair = new_key_pair()
    assert len(base64.b64decode(pair.private_key)) == 32
    assert pair.private_key not in repr(pair)
    sgc = SgcRef("ns", "gw", "u1")
    labels = {
        kube_names.SECRET_OWNER_NAMESPACE_LABEL: "ns",
        kube_names.SECRET_OWNER_NAME_LABEL: "gw",
    }
    assert stored_key_pair(secret_data(pair)) == pair
    kept, patch = secret_repairs(sgc, labels, secret_data(pair))
    assert kept == pair and patch == {}
    wrong_public = {**secret_data(pair), "PublicKey": secret_data(new_key_pair())["PublicKey"]}
    kept, patch = secret_repairs(sgc, labels, wrong_public)
    assert kept == pair and patch == {"data": {"PublicKey": secret_data(pair)["PublicKey"]}}


@pytest.mark.parametrize(
    "data",
    [
        None,
        {},
        {"PrivateKey": "!!!"},
        {"PrivateKey": base64.b64encode(b"short").decode()},
        {"PrivateKey": base64.b64encode(base64.b64encode(b"x" * 31)).decode()},
    ],
)
def test_a_missing_or_invalid_private_key_is_replaced(data: dict[str, Any] | None) -> None:
    assert stored_key_pair(data) is None
    pair, patch = secret_repairs(SgcRef("ns", "gw", "u1"), {}, data)
    assert patch["data"] == secret_data(pair)
    assert patch["metadata"]["labels"][kube_names.SECRET_OWNER_NAME_LABEL] == "gw"


def test_a_long_name_is_labelled_by_digest_and_annotated_whole() -> None:
    name = "n" * 253
    sgc = SgcRef("ns", name, "u1")
    pair = new_key_pair()
    short_labels = {
        kube_names.SECRET_OWNER_NAMESPACE_LABEL: "ns",
        kube_names.SECRET_OWNER_NAME_LABEL: name[:63],
    }

    kept, patch = secret_repairs(sgc, short_labels, secret_data(pair))

    assert kept == pair
    label = patch["metadata"]["labels"][kube_names.SECRET_OWNER_NAME_LABEL]
    assert len(label) == 63 and label != name[:63]
    assert patch["metadata"]["annotations"] == {kube_names.SECRET_OWNER_NAME_ANNOTATION: name}
    labels = {**short_labels, kube_names.SECRET_OWNER_NAME_LABEL: label}
    annotations = {kube_names.SECRET_OWNER_NAME_ANNOTATION: name}
    assert secret_repairs(sgc, labels, secret_data(pair), annotations) == (pair, {})
