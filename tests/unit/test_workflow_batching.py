"""The single writers' batching decisions, called directly."""

from __future__ import annotations

from contracts.activity_io import (
    AppliedRule,
    ApplyLoadBalancerResult,
    LoadBalancerRule,
    MemberAddresses,
    PoolIpConfig,
    PoolMember,
)
from contracts.azure_state import NodeAddress
from contracts.workflow_io import RuleResult
from workflows import single_writer_batch as batching
from workflows.single_writer_batch import Change


def rule(owner: str, pool: str = "p1") -> LoadBalancerRule:
    return LoadBalancerRule(owner, pool, f"/gw/{owner}")


def test_batch_of_new_owners_applies_once_with_all_of_them() -> None:
    current = {"a": rule("a")}
    batch = [Change(1, "b", rule("b")), Change(2, "c", rule("c", "p2"))]
    plan = batching.plan_batch(current, batch, answered={"a"})
    assert plan.apply
    assert batching.rules_input(plan.registrations) == (rule("a"), rule("b"), rule("c", "p2"))


def test_repeated_ensure_of_an_answered_owner_needs_no_azure_call() -> None:
    current = {"a": rule("a")}
    plan = batching.plan_batch(current, [Change(1, "a", rule("a"))], answered={"a"})
    assert not plan.apply


def test_after_continue_as_new_an_ensure_reads_azure_again() -> None:
    current = {"a": rule("a")}
    assert batching.plan_batch(current, [Change(1, "a", rule("a"))], answered=()).apply


def test_verify_and_removal_always_apply() -> None:
    current = {"a": rule("a")}
    assert batching.plan_batch(current, [Change(1, "a", rule("a"), verify=True)], {"a"}).apply
    unknown_removal = batching.plan_batch(current, [Change(1, "zz", None)], {"a"})
    assert unknown_removal.apply and dict(unknown_removal.registrations) == current


def test_removal_and_reregistration_in_one_batch_keep_the_last_word() -> None:
    current = {"a": rule("a")}
    batch = [Change(1, "a", None), Change(2, "a", rule("a", "p9"))]
    plan = batching.plan_batch(current, batch, {"a"})
    assert dict(plan.registrations) == {"a": rule("a", "p9")}


def test_members_changed_forces_a_pass() -> None:
    assert batching.plan_batch({}, [], (), resync=True).apply
    assert not batching.plan_batch({}, [], ()).apply


def test_rule_answers() -> None:
    applied = ApplyLoadBalancerResult(
        rules=(AppliedRule("a", "10.0.0.4", 6000), AppliedRule("b", "10.0.0.5", 6000)),
        changes=("added rule b on port 6000",),
    )
    results = batching.rule_results(applied)
    assert batching.rule_answer("b", results, fresh=True) == RuleResult(
        "10.0.0.5", 6000, ("added rule b on port 6000",)
    )
    # A cached answer reports no repairs: nothing was applied for it.
    assert batching.rule_answer("b", results, fresh=False) == RuleResult("10.0.0.5", 6000)
    missing = batching.rule_answer("zz", results, fresh=True)
    assert isinstance(missing, str) and "zz" in missing


def test_pool_answer_collects_each_members_address_for_the_owner() -> None:
    members = (
        MemberAddresses(PoolMember("1", "node-b"), "10.0.0.5", (("a", "10.0.0.7"),), ("x",)),
        MemberAddresses(
            PoolMember("0", "node-a"), "10.0.0.4", (("a", "10.0.0.6"), ("b", "10.0.0.8"))
        ),
    )
    changes = batching.pass_changes(("model",), members)
    assert changes == ("model", "x")
    answer = batching.pool_answer("a", members, changes)
    assert answer.nodes == (
        NodeAddress("node-a", "10.0.0.4", "10.0.0.6"),
        NodeAddress("node-b", "10.0.0.5", "10.0.0.7"),
    )
    assert batching.pool_answer("b", members, ()).nodes == (
        NodeAddress("node-a", "10.0.0.4", "10.0.0.8"),
    )


def test_ip_configs_input_is_stable() -> None:
    regs = {
        "b": PoolIpConfig("b", "egressgateway-b", ""),
        "a": PoolIpConfig("a", "egressgateway-a", ""),
    }
    assert [c.owner_uid for c in batching.ip_configs_input(regs)] == ["a", "b"]
