"""GatewayConfigWorkflow's decisions, called directly."""

from __future__ import annotations

from dataclasses import replace

import pytest

from contracts import kube_names
from contracts.activity_io import GatewayKey, SgcRef
from contracts.azure_state import GatewayPool, NodeAddress, PoolKind, PublicPrefix
from contracts.conditions import ConditionStatus
from contracts.gateway_config import GatewayVmssProfile, StaticGatewayConfigurationSpec
from contracts.spec_validation import validate_spec
from contracts.workflow_io import AppliedConfiguration, ConfigurationStatus, SpecDelivery
from workflows import gateway_config_decisions as decide
from workflows.gateway_config_decisions import Phase, PrefixKind, TeardownStep

UID = "0b9c3a52-6a0e-4c1e-9d55-0c8f3c1f2a11"
SGC = SgcRef("team-a", "egress", UID)
PROFILE = GatewayVmssProfile("rg", "vmss", 31)
SPEC = StaticGatewayConfigurationSpec(gateway_vmss_profile=PROFILE)


def delivery(
    generation: int = 1, *, uid: str = UID, deleting: bool = False, **spec: object
) -> SpecDelivery:
    return SpecDelivery(
        sgc=replace(SGC, uid=uid),
        generation=generation,
        spec=replace(SPEC, **spec),  # type: ignore[arg-type]
        deleting=deleting,
    )


def pool(name: str = "vmss", *, prefix_length: int = 31, instances: int = 2) -> GatewayPool:
    return GatewayPool(PoolKind.VMSS, "sub", "rg", name, "lbpool-" + name, prefix_length, instances)


# --- Deliveries ----------------------------------------------------------------------------------


def test_first_delivery_is_accepted() -> None:
    assert decide.accept_delivery(None, delivery(1))


def test_same_or_older_generation_is_ignored() -> None:
    current = delivery(3)
    assert not decide.accept_delivery(current, delivery(3))
    assert not decide.accept_delivery(current, delivery(2))
    assert decide.accept_delivery(current, delivery(4))


def test_deletion_is_accepted_once_and_then_sticks() -> None:
    current = delivery(3)
    assert decide.accept_delivery(current, delivery(3, deleting=True))
    deleting = delivery(3, deleting=True)
    assert not decide.accept_delivery(deleting, delivery(3, deleting=True))
    assert not decide.accept_delivery(deleting, delivery(4))


def test_a_recreated_object_is_always_new() -> None:
    deleting = delivery(5, deleting=True)
    assert decide.accept_delivery(deleting, delivery(1, uid="another-uid"))


def test_carried_delivery_is_redone_only_when_not_settled() -> None:
    d = delivery(2)
    ready = ConfigurationStatus(phase=Phase.READY, observed_generation=2)
    assert not decide.reconcile_wanted(ready, d)
    assert decide.reconcile_wanted(replace(ready, observed_generation=1), d)
    assert decide.reconcile_wanted(replace(ready, phase=Phase.PROVISIONING), d)
    assert decide.reconcile_wanted(ready, delivery(2, deleting=True))
    assert not decide.reconcile_wanted(ready, None)


@pytest.mark.parametrize(
    ("phase", "due"),
    [(Phase.READY, True), (Phase.DEGRADED, True), (Phase.INVALID, False), (Phase.PENDING, False)],
)
def test_drift_timer_runs_for_ready_and_degraded(phase: Phase, due: bool) -> None:
    assert decide.drift_check_due(ConfigurationStatus(phase=phase, observed_generation=1)) is due


# --- Prefix and pool -----------------------------------------------------------------------------


def test_prefix_plan_per_mode() -> None:
    managed = decide.plan_prefix(delivery())
    assert managed == decide.PrefixPlan(PrefixKind.MANAGED, managed_name=f"egressgateway-{UID}")
    byo_id = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/publicIPPrefixes/p"
    byo = decide.plan_prefix(delivery(public_ip_prefix_id=byo_id))
    assert byo == decide.PrefixPlan(PrefixKind.BYO, byo_id=byo_id)
    assert decide.plan_prefix(delivery(provision_public_ips=False)).kind is PrefixKind.NONE


def test_prefix_capacity() -> None:
    d = delivery()
    assert decide.prefix_capacity_error(d, pool(prefix_length=31, instances=2)) is None
    too_small = decide.prefix_capacity_error(d, pool(prefix_length=31, instances=3))
    assert too_small is not None and "holds 2 addresses" in too_small and "3 instances" in too_small
    no_size = decide.prefix_capacity_error(d, pool(prefix_length=0))
    assert no_size is not None and "publicIpPrefixSize" in no_size
    private = delivery(provision_public_ips=False)
    assert decide.prefix_capacity_error(private, pool(prefix_length=0, instances=9)) is None


def test_same_pool_ignores_case() -> None:
    assert decide.same_pool(pool("VMSS"), pool("vmss"))
    assert not decide.same_pool(pool("a"), pool("b"))
    assert decide.same_pool(None, None)
    assert not decide.same_pool(None, pool())


# --- Spec changes, compensation, teardown -------------------------------------------------------


def applied(**fields: object) -> AppliedConfiguration:
    return AppliedConfiguration(sgc=SGC, **fields)  # type: ignore[arg-type]


def test_pool_move_releases_the_old_pool_after() -> None:
    before = applied(pool=pool("old"), rule_registered=True)
    after = applied(pool=pool("new"), rule_registered=True)
    assert decide.plan_release(before, after) == decide.Release(old_pool=pool("old"))
    assert decide.plan_release(after, after) == decide.Release()


def test_managed_to_byo_or_private_deletes_the_managed_prefix() -> None:
    name = f"egressgateway-{UID}"
    before = applied(pool=pool(), managed_prefix=name)
    assert decide.plan_release(before, applied(pool=pool())).managed_prefix == name
    assert decide.plan_release(before, before).managed_prefix == ""


def test_created_by_run_is_only_what_was_new() -> None:
    before = applied(key_secret="sgw-x", rule_registered=True, pool=pool("old"))
    after = applied(
        key_secret="sgw-x", rule_registered=True, pool=pool("new"), managed_prefix="egressgateway-x"
    )
    created = decide.created_by_run(before, after)
    assert decide.teardown_steps(created) == (
        TeardownStep.REMOVE_IP_CONFIG,
        TeardownStep.DELETE_MANAGED_PREFIX,
    )
    assert created.pool == pool("new")


def test_teardown_order_is_rule_ipconfig_prefix_secret() -> None:
    full = applied(
        key_secret="sgw-x", rule_registered=True, pool=pool(), managed_prefix="egressgateway-x"
    )
    assert decide.teardown_steps(full) == (
        TeardownStep.REMOVE_RULE,
        TeardownStep.REMOVE_IP_CONFIG,
        TeardownStep.DELETE_MANAGED_PREFIX,
        TeardownStep.DELETE_KEY,
    )
    assert decide.teardown_steps(applied()) == ()


def test_without_step_resumes_teardown_and_restores_on_compensation() -> None:
    record = applied(key_secret="sgw-x", rule_registered=True, pool=pool("new"))
    after_rule = decide.without_step(record, TeardownStep.REMOVE_RULE)
    assert decide.teardown_steps(after_rule) == (
        TeardownStep.REMOVE_IP_CONFIG,
        TeardownStep.DELETE_KEY,
    )
    before = applied(pool=pool("old"))
    restored = decide.without_step(record, TeardownStep.REMOVE_IP_CONFIG, restore=before)
    assert restored.pool == pool("old")


# --- Status, conditions, events ------------------------------------------------------------------


def conditions_by_type(update: object) -> dict[str, tuple[ConditionStatus, str, str]]:
    return {c.type: (c.status, c.reason, c.message) for c in update.conditions}  # type: ignore[attr-defined]


def test_invalid_spec_status_names_the_field() -> None:
    bad = delivery(2, gateway_nodepool_name="pool")  # both a nodepool and a VMSS profile
    errors = validate_spec(bad.spec)
    update = decide.invalid_status(bad, errors)
    conditions = conditions_by_type(update)
    degraded = conditions[kube_names.CONDITION_DEGRADED]
    assert degraded[0] is ConditionStatus.TRUE
    assert degraded[1] == kube_names.REASON_INVALID_SPEC
    assert "spec: exactly one of spec.gatewayNodepoolName" in degraded[2]
    assert conditions[kube_names.CONDITION_READY][0] is ConditionStatus.FALSE
    assert update.observed_generation == 2


def provisioned(prefix: PublicPrefix | None) -> decide.Provisioned:
    nodes = (
        NodeAddress("node-b", "10.224.0.5", "10.224.0.10"),
        NodeAddress("node-a", "10.224.0.4", "10.224.0.9"),
    )
    key = GatewayKey("cHVibGlj", f"sgw-{UID}", "kube-system")
    return decide.Provisioned(key, pool(), "10.225.0.4", 6000, prefix, nodes)


def test_ready_status_public_mode() -> None:
    prefix = PublicPrefix("/id", "egressgateway-x", "20.1.2.0/31", 31, managed=True)
    update = decide.ready_status(delivery(3), provisioned(prefix))
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
    update = decide.ready_status(delivery(), provisioned(None))
    assert update.egress_ip_prefix == "10.224.0.9,10.224.0.10"


def test_failure_message_keeps_azures_words() -> None:
    causes = ["Activity task failed", "AzureInvalidParameter: (InvalidParameter) Bad prefix length"]
    message = decide.failure_message("load balancer rule ‖ public IP prefix", causes)
    assert message == (
        "load balancer rule ‖ public IP prefix failed:"
        " AzureInvalidParameter: (InvalidParameter) Bad prefix length"
    )
    update = decide.failed_status(delivery(), message)
    assert conditions_by_type(update)[kube_names.CONDITION_DEGRADED] == (
        ConditionStatus.TRUE,
        kube_names.REASON_AZURE_ERROR,
        message,
    )


def test_cancellation_message_names_the_step() -> None:
    text = decide.cancelled_message("ipConfig on gateway pool vmss")
    assert text.startswith("provisioning was cancelled during ipConfig on gateway pool vmss")


OWN_UID = "0b0e6f5c-3c0a-4a53-9a7e-2f4ad3b1c0de"
OTHER_UID = "7d1c2b3a-9e8f-4d6c-8b5a-1f2e3d4c5b6a"


def test_drift_event_only_when_something_changed() -> None:
    assert decide.drift_event_message((), OWN_UID) is None
    assert decide.drift_event_message(("", ""), OWN_UID) is None
    text = decide.drift_event_message(
        ("added ipConfig x to instance 1", "added ipConfig x to instance 1"), OWN_UID
    )
    assert text == "repaired drift: added ipConfig x to instance 1"


def test_drift_event_leaves_out_other_configurations_changes_of_the_same_batch() -> None:
    changes = (
        f"added rule {OTHER_UID} on port 6001",
        f"added probe {OTHER_UID}",
        f"added ipConfig egressgateway-{OTHER_UID}",
        f"added ipConfig egressgateway-{OWN_UID}",
        f"replaced probe {OWN_UID.upper()}",
        "added backend pool 5f0c1d2e-aaaa-bbbb-cccc-0123456789ab to the primary ipConfig",
    )
    text = decide.drift_event_message(changes, OWN_UID)
    assert text is not None
    assert OTHER_UID not in text
    assert f"added ipConfig egressgateway-{OWN_UID}" in text
    assert f"replaced probe {OWN_UID.upper()}" in text
    assert "added backend pool" in text  # shared by every configuration on the pool
    assert decide.drift_event_message(changes[:3], OWN_UID) is None


def test_current_details_show_object_generation_and_step() -> None:
    text = decide.current_details(Phase.PROVISIONING, delivery(4), "ipConfig on gateway pool vmss")
    assert "team-a/egress" in text and "generation 4" in text and "ipConfig on gateway pool" in text
    assert "waiting" in decide.current_details(Phase.PENDING, None, "")
