"""GatewayConfigWorkflow's decisions, called directly."""

from __future__ import annotations

from dataclasses import replace

import pytest

from contracts.activity_io import SgcRef
from contracts.azure_state import GatewayPool, PoolKind
from contracts.gateway_config import GatewayVmssProfile, StaticGatewayConfigurationSpec
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


def test_a_managed_prefix_length_azure_does_not_offer_is_refused() -> None:
    """A nodepool's size tag is read at the pool lookup; a VMSS profile's size is refused by
    validation before that."""
    d = delivery()
    for length in (28, 31):
        assert decide.prefix_length_error(d, pool(prefix_length=length)) is None
    refused = decide.prefix_length_error(d, pool("gwpool", prefix_length=27))
    assert refused is not None
    assert "asks for a /27 public IP prefix" in refused and "Azure offers /28 to /31" in refused
    byo = delivery(public_ip_prefix_id="/subscriptions/s/resourceGroups/g/providers/p")
    assert decide.prefix_length_error(byo, pool(prefix_length=27)) is None  # the user's length
    private = delivery(provision_public_ips=False)
    assert decide.prefix_length_error(private, pool(prefix_length=27)) is None


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


def test_teardown_order_is_ipconfig_rule_prefix_secret() -> None:
    full = applied(
        key_secret="sgw-x", rule_registered=True, pool=pool(), managed_prefix="egressgateway-x"
    )
    # The ipConfig first: the pool's last rule takes the backend pool its ipConfigs reference.
    assert decide.teardown_steps(full) == (
        TeardownStep.REMOVE_IP_CONFIG,
        TeardownStep.REMOVE_RULE,
        TeardownStep.DELETE_MANAGED_PREFIX,
        TeardownStep.DELETE_KEY,
    )
    # 0.1.0's order, which its recorded histories replay.
    assert decide.teardown_steps(full, ip_config_first=False)[:2] == (
        TeardownStep.REMOVE_RULE,
        TeardownStep.REMOVE_IP_CONFIG,
    )
    assert decide.teardown_steps(applied()) == ()


def test_without_step_resumes_teardown_and_restores_on_compensation() -> None:
    record = applied(key_secret="sgw-x", rule_registered=True, pool=pool("new"))
    after_ip_config = decide.without_step(record, TeardownStep.REMOVE_IP_CONFIG)
    assert decide.teardown_steps(after_ip_config) == (
        TeardownStep.REMOVE_RULE,
        TeardownStep.DELETE_KEY,
    )
    before = applied(pool=pool("old"))
    restored = decide.without_step(record, TeardownStep.REMOVE_IP_CONFIG, restore=before)
    assert restored.pool == pool("old")
