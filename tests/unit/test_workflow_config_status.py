"""How GatewayConfigWorkflow's outcome reads (status, conditions, messages, details), called
directly."""

from __future__ import annotations

from dataclasses import replace

from contracts import kube_names
from contracts.activity_io import GatewayKey, ResourceChange, SgcRef
from contracts.azure_state import GatewayPool, NodeAddress, PoolKind, PublicPrefix
from contracts.conditions import ConditionStatus
from contracts.failure_types import failure_reason
from contracts.gateway_config import GatewayVmssProfile, StaticGatewayConfigurationSpec
from contracts.spec_validation import validate_spec
from contracts.workflow_io import SpecDelivery
from workflows import gateway_config_status as render
from workflows.gateway_config_decisions import Phase, Provisioned

UID = "0b9c3a52-6a0e-4c1e-9d55-0c8f3c1f2a11"
SGC = SgcRef("team-a", "egress", UID)
SPEC = StaticGatewayConfigurationSpec(gateway_vmss_profile=GatewayVmssProfile("rg", "vmss", 31))


def delivery(generation: int = 1, **spec: object) -> SpecDelivery:
    return SpecDelivery(
        sgc=SGC,
        generation=generation,
        spec=replace(SPEC, **spec),  # type: ignore[arg-type]
    )


def pool() -> GatewayPool:
    return GatewayPool(PoolKind.VMSS, "sub", "rg", "vmss", "lbpool-vmss", 31, 2)


def conditions_by_type(update: object) -> dict[str, tuple[ConditionStatus, str, str]]:
    return {c.type: (c.status, c.reason, c.message) for c in update.conditions}  # type: ignore[attr-defined]


def test_invalid_spec_status_names_the_field() -> None:
    bad = delivery(2, gateway_nodepool_name="pool")  # both a nodepool and a VMSS profile
    errors = validate_spec(bad.spec)
    update = render.invalid_status(bad, errors)
    conditions = conditions_by_type(update)
    degraded = conditions[kube_names.CONDITION_DEGRADED]
    assert degraded[0] is ConditionStatus.TRUE
    assert degraded[1] == kube_names.REASON_INVALID_SPEC
    assert "spec: exactly one of spec.gatewayNodepoolName" in degraded[2]
    assert conditions[kube_names.CONDITION_READY][0] is ConditionStatus.FALSE
    assert update.observed_generation == 2


def provisioned(prefix: PublicPrefix | None) -> Provisioned:
    nodes = (
        NodeAddress("node-b", "10.224.0.5", "10.224.0.10"),
        NodeAddress("node-a", "10.224.0.4", "10.224.0.9"),
    )
    key = GatewayKey("cHVibGlj", f"sgw-{UID}", "kube-system")
    return Provisioned(key, pool(), "10.225.0.4", 6000, prefix, nodes)


def test_ready_status_public_mode() -> None:
    prefix = PublicPrefix("/id", "egressgateway-x", "20.1.2.0/31", 31, managed=True)
    update = render.ready_status(delivery(3), provisioned(prefix))
    assert update.egress_ip_prefix == "20.1.2.0/31"
    assert (update.server_ip, update.server_port) == ("10.225.0.4", 6000)
    assert update.key is not None and update.key.secret_name == f"sgw-{UID}"
    conditions = conditions_by_type(update)
    assert conditions[kube_names.CONDITION_READY][:2] == (
        ConditionStatus.TRUE,
        kube_names.REASON_PROVISIONED,
    )
    assert conditions[kube_names.CONDITION_DEGRADED][0] is ConditionStatus.FALSE


def test_ready_status_private_mode_lists_secondary_ips_in_order() -> None:
    update = render.ready_status(delivery(), provisioned(None))
    assert update.egress_ip_prefix == "10.224.0.9,10.224.0.10"


def test_failure_message_keeps_azures_words() -> None:
    causes = ["Activity task failed", "AzureInvalidParameter: (InvalidParameter) Bad prefix length"]
    message = render.failure_message("load balancer rule ‖ public IP prefix", causes)
    assert message == (
        "load balancer rule ‖ public IP prefix failed:"
        " AzureInvalidParameter: (InvalidParameter) Bad prefix length"
    )
    update = render.failed_status(delivery(), message, failure_reason(["AzureInvalidParameter"]))
    assert conditions_by_type(update)[kube_names.CONDITION_DEGRADED] == (
        ConditionStatus.TRUE,
        kube_names.REASON_AZURE_ERROR,
        message,
    )


def test_cancellation_message_names_the_step() -> None:
    text = render.cancelled_message("ipConfig on gateway pool vmss")
    assert text.startswith("provisioning was cancelled during ipConfig on gateway pool vmss")


OWN_UID = "0b0e6f5c-3c0a-4a53-9a7e-2f4ad3b1c0de"
OTHER_UID = "7d1c2b3a-9e8f-4d6c-8b5a-1f2e3d4c5b6a"


def test_drift_event_only_when_something_changed() -> None:
    assert render.drift_event_message((), OWN_UID) is None
    twice = ResourceChange("instance 1: added ipConfig x", OWN_UID)
    text = render.drift_event_message((twice, twice), OWN_UID)
    assert text == "repaired drift: instance 1: added ipConfig x"


def test_drift_event_leaves_out_other_configurations_changes_of_the_same_batch() -> None:
    changes = (
        ResourceChange(f"added rule {OTHER_UID} on port 6001", OTHER_UID),
        ResourceChange(f"added probe {OTHER_UID}", OTHER_UID),
        ResourceChange(f"added ipConfig egressgateway-{OTHER_UID}", OTHER_UID),
        ResourceChange(f"added ipConfig egressgateway-{OWN_UID}", OWN_UID),
        ResourceChange(f"replaced probe {OWN_UID.upper()}", OWN_UID.upper()),
        ResourceChange("added backend pool 5f0c1d2e to the primary ipConfig"),
    )
    text = render.drift_event_message(changes, OWN_UID)
    assert text is not None
    assert OTHER_UID not in text
    assert f"added ipConfig egressgateway-{OWN_UID}" in text
    assert f"replaced probe {OWN_UID.upper()}" in text
    assert "added backend pool" in text  # shared by every configuration on the pool
    assert render.drift_event_message(changes[:3], OWN_UID) is None


def test_current_details_show_object_generation_and_step() -> None:
    text = render.current_details(Phase.PROVISIONING, delivery(4), "ipConfig on gateway pool vmss")
    assert "team-a/egress" in text and "generation 4" in text and "ipConfig on gateway pool" in text
    assert "waiting" in render.current_details(Phase.PENDING, None, "")
