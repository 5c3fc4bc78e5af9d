"""The single writers' batching decisions, called directly."""

from __future__ import annotations

from contracts.activity_io import (
    AppliedRule,
    ApplyLoadBalancerResult,
    LoadBalancerRule,
    MemberAddresses,
    PoolIpConfig,
    PoolMember,
    ResourceChange,
)
from contracts.azure_state import NodeAddress
from contracts.workflow_io import RequestFailed, RequestReply, RuleResult
from workflows import single_writer_batch as batching
from workflows.single_writer_batch import Change

ADDED_B = ResourceChange("added rule b on port 6000", "b")
MODEL = ResourceChange("VMSS gw model: added ipConfig egressgateway-a", "a")
X = ResourceChange("instance 1: updated (was Failed)")


def rule(owner: str, pool: str = "p1") -> LoadBalancerRule:
    return LoadBalancerRule(owner, pool, f"/gw/{owner}")


def test_batch_of_new_owners_applies_once_with_all_of_them() -> None:
    current = {"a": rule("a")}
    batch = [Change("b", rule("b"), False, "token"), Change("c", rule("c", "p2"), False, "token")]
    plan = batching.plan_batch(current, batch, answered={"a"})
    assert plan.apply
    assert batching.rules_input(plan.registrations) == (rule("a"), rule("b"), rule("c", "p2"))


def test_repeated_ensure_of_an_answered_owner_needs_no_azure_call() -> None:
    current = {"a": rule("a")}
    plan = batching.plan_batch(current, [Change("a", rule("a"), False, "token")], answered={"a"})
    assert not plan.apply


def test_after_continue_as_new_an_ensure_reads_azure_again() -> None:
    current = {"a": rule("a")}
    assert batching.plan_batch(current, [Change("a", rule("a"), False, "token")], answered=()).apply


def test_verify_and_removal_always_apply() -> None:
    current = {"a": rule("a")}
    assert batching.plan_batch(current, [Change("a", rule("a"), True, "token")], {"a"}).apply
    unknown_removal = batching.plan_batch(current, [Change("zz", None, False, "token")], {"a"})
    assert unknown_removal.apply and dict(unknown_removal.registrations) == current


def test_removal_and_reregistration_in_one_batch_keep_the_last_word() -> None:
    current = {"a": rule("a")}
    batch = [Change("a", None, False, "token"), Change("a", rule("a", "p9"), False, "token")]
    plan = batching.plan_batch(current, batch, {"a"})
    assert dict(plan.registrations) == {"a": rule("a", "p9")}


def test_members_changed_forces_a_pass() -> None:
    assert batching.plan_batch({}, [], (), resync=True).apply
    assert not batching.plan_batch({}, [], ()).apply


def test_rule_answers() -> None:
    applied = ApplyLoadBalancerResult(
        rules=(AppliedRule("a", "10.0.0.4", 6000), AppliedRule("b", "10.0.0.5", 6000)),
        changes=(ADDED_B,),
    )
    results = batching.rule_results(applied)
    answer = batching.rule_answer("b", results, fresh=True, failure_type="Failed")
    assert answer == RuleResult("10.0.0.5", 6000, (ADDED_B,))
    # A cached answer reports no repairs: nothing was applied for it.
    cached = batching.rule_answer("b", results, fresh=False, failure_type="Failed")
    assert cached == RuleResult("10.0.0.5", 6000)
    missing = batching.rule_answer("zz", results, fresh=True, failure_type="Failed")
    assert isinstance(missing, RequestFailed)
    assert "zz" in missing.message and missing.error_type == "Failed"


def test_replies_carry_results_failures_and_plain_completions() -> None:
    failure = RequestFailed("load balancer update failed: quota", "LoadBalancerApplyFailed")
    result = RuleResult("10.0.0.5", 6000)
    replies = batching.request_replies([("t1", result), ("t2", failure), ("t3", None)])
    assert replies == (
        RequestReply("t1", rule=result),
        RequestReply("t2", failure=failure),
        RequestReply("t3"),
    )


def test_pool_answer_collects_each_members_address_for_the_owner() -> None:
    members = (
        MemberAddresses(PoolMember("1", "node-b"), "10.0.0.5", (("a", "10.0.0.7"),), (X,)),
        MemberAddresses(
            PoolMember("0", "node-a"), "10.0.0.4", (("a", "10.0.0.6"), ("b", "10.0.0.8"))
        ),
    )
    changes = batching.pass_changes((MODEL,), members)
    assert changes == (MODEL, X)
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
