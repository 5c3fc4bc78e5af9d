"""Every choice GatewayConfigWorkflow makes, as pure functions over contracts data.

The workflow only sequences activities; what to ignore, what to create, what to undo, which
condition and event to show and what the Web UI says all come from here, so unit tests can call
them directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from contracts import kube_names, resource_names
from contracts.activity_io import (
    ConditionUpdate,
    EventInput,
    GatewayKey,
    StatusUpdate,
)
from contracts.azure_state import GatewayPool, NodeAddress, PublicPrefix
from contracts.conditions import ConditionStatus
from contracts.spec_validation import FieldError, describe_field_errors
from contracts.workflow_io import AppliedConfiguration, ConfigurationStatus, SpecDelivery

# Not in kube_names: only this workflow records it, after a drift check changed something.
EVENT_DRIFT_REPAIRED: Final = "DriftRepaired"


class Phase(StrEnum):
    PENDING = "Pending"
    INVALID = "Invalid"
    PROVISIONING = "Provisioning"
    READY = "Ready"
    DEGRADED = "Degraded"
    DELETING = "Deleting"
    DELETED = "Deleted"


# --- Deliveries ----------------------------------------------------------------------------------


def accept_delivery(current: SpecDelivery | None, incoming: SpecDelivery) -> bool:
    """Whether `incoming` tells the workflow something new.

    Relists, controller restarts and two watchers deliver the same state again; an older
    generation can arrive after a newer one. A different uid is a recreated object: always new.
    Once deletion has been seen for a uid, nothing but another uid can undo it.
    """
    if current is None or current.sgc.uid != incoming.sgc.uid:
        return True
    if current.deleting:
        return False
    if incoming.deleting:
        return True
    return incoming.generation > current.generation


def reconcile_wanted(status: ConfigurationStatus, delivery: SpecDelivery | None) -> bool:
    """After continue-as-new: does the carried delivery still need a pass?"""
    if delivery is None:
        return False
    settled = (Phase.READY, Phase.INVALID, Phase.DEGRADED)
    return not (
        status.phase in settled
        and status.observed_generation == delivery.generation
        and not delivery.deleting
    )


def drift_check_due(status: ConfigurationStatus) -> bool:
    """Which phases the drift timer re-checks: a Degraded configuration also gets another try."""
    return status.phase in (Phase.READY, Phase.DEGRADED)


# --- Gateway pool and public IP prefix -----------------------------------------------------------


class PrefixKind(StrEnum):
    NONE = "none"  # private mode: the secondary private IPs are the egress addresses
    MANAGED = "managed"  # egressgateway-<uid>, created and deleted by us
    BYO = "byo"  # the user's spec.publicIpPrefixId, only checked


@dataclass(frozen=True)
class PrefixPlan:
    kind: PrefixKind
    managed_name: str = ""
    byo_id: str = ""


def plan_prefix(delivery: SpecDelivery) -> PrefixPlan:
    spec = delivery.spec
    if not spec.provision_public_ips:
        return PrefixPlan(PrefixKind.NONE)
    if spec.public_ip_prefix_id:
        return PrefixPlan(PrefixKind.BYO, byo_id=spec.public_ip_prefix_id)
    return PrefixPlan(
        PrefixKind.MANAGED, managed_name=resource_names.managed_resource_name(delivery.sgc.uid)
    )


def prefix_capacity_error(delivery: SpecDelivery, pool: GatewayPool) -> str | None:
    """Why the pool cannot get one public IP per instance from its prefix, or None if it can."""
    if not delivery.spec.provision_public_ips:
        return None
    if pool.prefix_length <= 0:
        return (
            f"gateway pool {pool.name} has no public IP prefix size: set"
            " spec.gatewayVmssProfile.publicIpPrefixSize or the pool's"
            f" {resource_names.TAG_GATEWAY_IP_PREFIX_SIZE} tag"
        )
    capacity = 2 ** (32 - pool.prefix_length)
    if capacity < pool.instance_count:
        return (
            f"a /{pool.prefix_length} public IP prefix holds {capacity} addresses but gateway"
            f" pool {pool.name} has {pool.instance_count} instances"
        )
    return None


def same_pool(a: GatewayPool | None, b: GatewayPool | None) -> bool:
    """One Azure pool, however its names are spelt (ARM names are case-insensitive)."""
    if a is None or b is None:
        return a is b
    return (a.kind, a.subscription_id.lower(), a.resource_group.lower(), a.name.lower()) == (
        b.kind,
        b.subscription_id.lower(),
        b.resource_group.lower(),
        b.name.lower(),
    )


# --- Spec changes, compensation and teardown -----------------------------------------------------


@dataclass(frozen=True)
class Release:
    """What a spec change leaves behind, released once the new state is in place."""

    old_pool: GatewayPool | None = None  # unregister our ipConfig from this pool
    managed_prefix: str = ""  # delete this prefix: no ipConfig points at it any more


def plan_release(before: AppliedConfiguration, after: AppliedConfiguration) -> Release:
    old_pool = before.pool if before.pool and not same_pool(before.pool, after.pool) else None
    prefix = (
        before.managed_prefix
        if before.managed_prefix and before.managed_prefix != after.managed_prefix
        else ""
    )
    return Release(old_pool=old_pool, managed_prefix=prefix)


def created_by_run(
    before: AppliedConfiguration, after: AppliedConfiguration
) -> AppliedConfiguration:
    """The part of `after` that this run added to `before`: exactly what compensation undoes."""
    return AppliedConfiguration(
        sgc=after.sgc,
        generation=after.generation,
        key_secret=after.key_secret if after.key_secret and not before.key_secret else "",
        pool=after.pool if after.pool and not same_pool(before.pool, after.pool) else None,
        rule_registered=after.rule_registered and not before.rule_registered,
        managed_prefix=(
            after.managed_prefix
            if after.managed_prefix and after.managed_prefix != before.managed_prefix
            else ""
        ),
    )


class TeardownStep(StrEnum):
    REMOVE_NODE_GATEWAYS = "remove the gateways from their nodes"
    REMOVE_RULE = "remove load balancer rule and probe"
    REMOVE_IP_CONFIG = "remove gateway pool ipConfig"
    DELETE_MANAGED_PREFIX = "delete managed public IP prefix and its public IPs"
    DELETE_KEY = "delete gateway key Secret"


def teardown_steps(record: AppliedConfiguration) -> tuple[TeardownStep, ...]:
    """Deletion and compensation order (docs/control-plane.md): rule and probe, ipConfig, public
    IPs and managed prefix (no ipConfig may point at it any more), then the Secret."""
    steps: list[TeardownStep] = []
    if record.node_gateways:
        # First, so no node keeps serving a rule that is going away.
        steps.append(TeardownStep.REMOVE_NODE_GATEWAYS)
    if record.rule_registered:
        steps.append(TeardownStep.REMOVE_RULE)
    if record.pool is not None:
        steps.append(TeardownStep.REMOVE_IP_CONFIG)
    if record.managed_prefix:
        steps.append(TeardownStep.DELETE_MANAGED_PREFIX)
    if record.key_secret:
        steps.append(TeardownStep.DELETE_KEY)
    return tuple(steps)


def without_step(
    record: AppliedConfiguration, step: TeardownStep, *, restore: AppliedConfiguration | None = None
) -> AppliedConfiguration:
    """The record once `step` is done, so a teardown interrupted part-way resumes where it was.

    Compensation passes `restore` (the record before the failed pass): an undone step puts back
    what was there before, e.g. the pool a move was leaving, instead of nothing.
    """
    base = restore or AppliedConfiguration(sgc=record.sgc)
    match step:
        case TeardownStep.REMOVE_NODE_GATEWAYS:
            return replace(record, node_gateways=base.node_gateways)
        case TeardownStep.REMOVE_RULE:
            return replace(record, rule_registered=base.rule_registered)
        case TeardownStep.REMOVE_IP_CONFIG:
            return replace(record, pool=base.pool, public_ip_prefix_id=base.public_ip_prefix_id)
        case TeardownStep.DELETE_MANAGED_PREFIX:
            return replace(record, managed_prefix=base.managed_prefix)
        case TeardownStep.DELETE_KEY:
            return replace(record, key_secret=base.key_secret)


def is_empty(record: AppliedConfiguration | None) -> bool:
    return record is None or not teardown_steps(record)


# --- Status, conditions and events ---------------------------------------------------------------


def egress_ip_prefix(prefix: PublicPrefix | None, nodes: Sequence[NodeAddress]) -> str:
    """The prefix CIDR in public mode; the gateways' secondary private IPs in private mode."""
    if prefix is not None:
        return prefix.cidr
    ips = sorted({node.secondary_ip for node in nodes if node.secondary_ip}, key=_ip_sort_key)
    return ",".join(ips)


def _ip_sort_key(ip: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in ip.split("."))
    except ValueError:
        return (1 << 16,)


def _conditions(
    ready: tuple[ConditionStatus, str, str],
    progressing: tuple[ConditionStatus, str, str],
    degraded: tuple[ConditionStatus, str, str],
) -> tuple[ConditionUpdate, ...]:
    return (
        ConditionUpdate(kube_names.CONDITION_READY, *ready),
        ConditionUpdate(kube_names.CONDITION_PROGRESSING, *progressing),
        ConditionUpdate(kube_names.CONDITION_DEGRADED, *degraded),
    )


def invalid_spec_message(errors: Iterable[FieldError]) -> str:
    return f"invalid spec: {describe_field_errors(list(errors))}"


def invalid_status(delivery: SpecDelivery, errors: Sequence[FieldError]) -> StatusUpdate:
    message = invalid_spec_message(errors)
    reason = kube_names.REASON_INVALID_SPEC
    return StatusUpdate(
        sgc=delivery.sgc,
        observed_generation=delivery.generation,
        conditions=_conditions(
            (ConditionStatus.FALSE, reason, message),
            (ConditionStatus.FALSE, reason, "waiting for a corrected spec"),
            (ConditionStatus.TRUE, reason, message),
        ),
    )


def provisioning_status(delivery: SpecDelivery) -> StatusUpdate:
    reason = kube_names.REASON_PROVISIONING
    message = f"provisioning generation {delivery.generation}"
    return StatusUpdate(
        sgc=delivery.sgc,
        observed_generation=delivery.generation,
        conditions=_conditions(
            (ConditionStatus.FALSE, reason, message),
            (ConditionStatus.TRUE, reason, message),
            (ConditionStatus.FALSE, kube_names.REASON_AS_EXPECTED, ""),
        ),
    )


@dataclass(frozen=True)
class Provisioned:
    """What a successful pass found out, for the status and the workflow's own result."""

    key: GatewayKey
    pool: GatewayPool
    frontend_ip: str
    port: int
    prefix: PublicPrefix | None
    nodes: tuple[NodeAddress, ...]
    # Nodes whose agent did not configure the gateway ("node: why"); Azure is provisioned.
    node_problems: tuple[str, ...] = ()


def ready_message(provisioned: Provisioned) -> str:
    egress = egress_ip_prefix(provisioned.prefix, provisioned.nodes)
    return (
        f"egress {egress} through gateway pool {provisioned.pool.name}"
        f" ({len(provisioned.nodes)} nodes), server {provisioned.frontend_ip}:{provisioned.port}"
    )


def provisioned_phase(provisioned: Provisioned) -> Phase:
    return Phase.DEGRADED if provisioned.node_problems else Phase.READY


def nodes_message(provisioned: Provisioned) -> str:
    problems = provisioned.node_problems
    if not problems:
        return ""
    return (
        f"{len(problems)} of {len(provisioned.nodes)} gateway nodes not configured: "
        + "; ".join(problems)
    )


def ready_status(delivery: SpecDelivery, provisioned: Provisioned) -> StatusUpdate:
    """Ready while at least one gateway node serves; Degraded names the nodes that do not."""
    reason = kube_names.REASON_PROVISIONED
    message = ready_message(provisioned)
    degraded: tuple[ConditionStatus, str, str] = (
        ConditionStatus.FALSE,
        kube_names.REASON_AS_EXPECTED,
        "",
    )
    ready: tuple[ConditionStatus, str, str] = (ConditionStatus.TRUE, reason, message)
    if provisioned.node_problems:
        problem = nodes_message(provisioned)
        degraded = (ConditionStatus.TRUE, kube_names.REASON_GATEWAY_NODES_NOT_READY, problem)
        if len(provisioned.node_problems) >= len(provisioned.nodes):
            ready = (ConditionStatus.FALSE, kube_names.REASON_GATEWAY_NODES_NOT_READY, problem)
    return StatusUpdate(
        sgc=delivery.sgc,
        observed_generation=delivery.generation,
        conditions=_conditions(
            ready,
            (ConditionStatus.FALSE, reason, message),
            degraded,
        ),
        egress_ip_prefix=egress_ip_prefix(provisioned.prefix, provisioned.nodes),
        server_ip=provisioned.frontend_ip,
        server_port=provisioned.port,
        key=provisioned.key,
    )


def failed_status(delivery: SpecDelivery, message: str) -> StatusUpdate:
    return StatusUpdate(
        sgc=delivery.sgc,
        observed_generation=delivery.generation,
        conditions=_conditions(
            (ConditionStatus.FALSE, kube_names.REASON_PROVISIONING_FAILED, message),
            (ConditionStatus.FALSE, kube_names.REASON_PROVISIONING_FAILED, message),
            (ConditionStatus.TRUE, kube_names.REASON_AZURE_ERROR, message),
        ),
    )


def delete_failed_status(delivery: SpecDelivery, message: str) -> StatusUpdate:
    return StatusUpdate(
        sgc=delivery.sgc,
        observed_generation=delivery.generation,
        conditions=_conditions(
            (ConditionStatus.FALSE, kube_names.REASON_DELETING, message),
            (ConditionStatus.TRUE, kube_names.REASON_DELETING, "deletion will be retried"),
            (ConditionStatus.TRUE, kube_names.REASON_AZURE_ERROR, message),
        ),
    )


def failure_message(step: str, causes: Sequence[str]) -> str:
    """One line for the Degraded condition: the step, then the innermost (Azure's) message.

    `causes` is the failure chain outermost first, e.g. ("Activity task failed",
    "AzureBadRequest: (InvalidPrefix) The prefix ..."); the wrappers add nothing for a user.
    """
    meaningful = [c for c in causes if c and c not in _WRAPPER_MESSAGES]
    detail = meaningful[-1] if meaningful else (causes[-1] if causes else "unknown error")
    return f"{step} failed: {detail}"


def cancelled_message(step: str) -> str:
    return f"provisioning was cancelled during {step}; what this pass created was removed"


_WRAPPER_MESSAGES: Final = frozenset({"Activity task failed", "Activity task timed out"})


def event(delivery: SpecDelivery, event_type: str, reason: str, message: str) -> EventInput:
    return EventInput(sgc=delivery.sgc, type=event_type, reason=reason, message=message)


# Changes that name the configuration they belong to: its rule, probe or ipConfig.
_OWNED_CHANGE: Final = re.compile(
    r"\b(?:rule|probe) (?P<uid>[0-9a-fA-F-]{36})\b"
    r"|ipConfig egressgateway-(?P<ip_uid>[0-9a-fA-F-]{36})\b"
)


def belongs_to(change: str, owner_uid: str) -> bool:
    """Whether a single writer's change concerns this configuration: its own rule, probe or
    ipConfig, or something shared (a frontend, a backend pool, an instance); a batch also carries
    other configurations' changes, which must not show up in this one's drift event."""
    owners = {m.group("uid") or m.group("ip_uid") for m in _OWNED_CHANGE.finditer(change)}
    return not owners or owner_uid.lower() in {o.lower() for o in owners}


def drift_event_message(repairs: Sequence[str], owner_uid: str) -> str | None:
    """The Event text for a drift check that changed something of this configuration's; None
    when nothing of it drifted."""
    unique = list(dict.fromkeys(r for r in repairs if r and belongs_to(r, owner_uid)))
    if not unique:
        return None
    return "repaired drift: " + "; ".join(unique)


def configuration_status(
    phase: Phase, delivery: SpecDelivery, message: str = "", provisioned: Provisioned | None = None
) -> ConfigurationStatus:
    if provisioned is None:
        return ConfigurationStatus(
            phase=phase, observed_generation=delivery.generation, message=message
        )
    return ConfigurationStatus(
        phase=phase,
        observed_generation=delivery.generation,
        message=message,
        egress_ip_prefix=egress_ip_prefix(provisioned.prefix, provisioned.nodes),
        frontend_ip=provisioned.frontend_ip,
        port=provisioned.port,
        nodes=provisioned.nodes,
        node_problems=provisioned.node_problems,
    )


def current_details(phase: Phase, delivery: SpecDelivery | None, step: str) -> str:
    """Markdown for the Web UI's Current Details: which object, which generation, which step."""
    if delivery is None:
        return f"**{phase}**: waiting for the first delivery"
    sgc = delivery.sgc
    return (
        f"**{phase}** `{sgc.namespace}/{sgc.name}` generation {delivery.generation}\n\n"
        f"- step: {step}\n- uid: `{sgc.uid}`"
    )
