"""Turning an observed StaticGatewayConfiguration into a message for its workflow.

Delivery is signal-with-start on the ID derived from the object, with USE_EXISTING: whichever
controller replica gets there first starts the workflow, every other delivery only signals it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)

from contracts import resource_names, search_attributes
from contracts.activity_io import SgcRef
from contracts.gateway_config import StaticGatewayConfiguration
from contracts.workflow_io import (
    DELIVER_SPEC,
    GATEWAY_CONFIG_WORKFLOW,
    NODES_CHANGED,
    ControllerSettings,
    GatewayConfigInput,
    SpecDelivery,
)
from kubeclient.list_watch import WatchEvent

DeliveryKey = tuple[str, int, bool]


def spec_delivery(raw: Mapping[str, Any], *, gone: bool = False) -> SpecDelivery:
    """The delivery for one observed state; `gone`: the object no longer exists (DELETED).

    Raises contracts.raw_fields.ObjectFormatError for an object that does not parse.
    """
    sgc = StaticGatewayConfiguration.from_object(raw)
    meta = sgc.metadata
    return SpecDelivery(
        sgc=SgcRef(meta.namespace, meta.name, meta.uid),
        generation=meta.generation,
        spec=sgc.spec,
        deleting=gone or meta.is_deleting,
    )


def event_delivery(event: WatchEvent) -> SpecDelivery:
    return spec_delivery(event.object, gone=event.type == "DELETED")


def delivery_key(delivery: SpecDelivery) -> DeliveryKey:
    return (delivery.sgc.uid, delivery.generation, delivery.deleting)


def already_delivered(last_sent: DeliveryKey | None, delivery: SpecDelivery) -> bool:
    """Whether sending `delivery` would tell the workflow nothing new (the workflow also dedups;
    this saves the round trip on relists and on our own status and finalizer writes)."""
    if last_sent is None:
        return False
    uid, _generation, deleting = last_sent
    if uid != delivery.sgc.uid:
        return False
    if deleting:
        return True  # once deletion was delivered, later states of this uid change nothing
    return last_sent == delivery_key(delivery)


def workflow_id(sgc: SgcRef) -> str:
    return resource_names.gateway_config_workflow_id(sgc.namespace, sgc.name)


async def deliver_spec(
    client: Client, settings: ControllerSettings, delivery: SpecDelivery
) -> None:
    sgc = delivery.sgc
    await client.start_workflow(
        GATEWAY_CONFIG_WORKFLOW,
        GatewayConfigInput(namespace=sgc.namespace, name=sgc.name, settings=settings),
        id=workflow_id(sgc),
        task_queue=settings.task_queue,
        start_signal=DELIVER_SPEC,
        start_signal_args=[delivery],
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(search_attributes.NAMESPACE, sgc.namespace),
                SearchAttributePair(search_attributes.NAME, sgc.name),
            ]
        ),
    )


async def request_resync(
    client: Client, settings: ControllerSettings, delivery: SpecDelivery
) -> None:
    """Make the configuration's workflow run a full pass although its generation is unchanged
    (something it created, e.g. the key Secret, was removed behind its back).

    The workflow ignores a delivery it has seen, so the delivery only makes sure the workflow
    exists; the `nodes_changed` signal is what triggers the re-check of every step.
    """
    await deliver_spec(client, settings, delivery)
    await client.get_workflow_handle(workflow_id(delivery.sgc)).signal(NODES_CHANGED)
