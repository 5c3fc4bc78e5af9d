"""The state decisions of GatewayConfigWorkflow, as pure functions over contracts data: which
deliveries are new, what to create (pool, prefix), what a spec change releases, what a failed pass
compensates and in which order a configuration is torn down.

How the outcome reads (status, conditions, messages, the Web UI's details) is rendered by
workflows/gateway_config_status.py. Unit tests call both directly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from contracts import resource_names
from contracts.activity_io import GatewayKey
from contracts.azure_state import GatewayPool, NodeAddress, PublicPrefix
from contracts.spec_validation import MAX_AZURE_PREFIX_LENGTH, MIN_AZURE_PREFIX_LENGTH
from contracts.workflow_io import (
    AppliedConfiguration,
    ConfigurationStatus,
    NodeProblem,
    SpecDelivery,
)


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


def prefix_length_error(delivery: SpecDelivery, pool: GatewayPool) -> str | None:
    """Why a managed prefix of the pool's length can never be created (Azure offers /28 to
    /31), or None. A VMSS profile's size is refused by validation already; this catches a
    nodepool's tag. A bring-your-own prefix is the user's: its length is only compared."""
    if plan_prefix(delivery).kind is not PrefixKind.MANAGED or pool.prefix_length <= 0:
        return None
    if MIN_AZURE_PREFIX_LENGTH <= pool.prefix_length <= MAX_AZURE_PREFIX_LENGTH:
        return None
    return (
        f"gateway pool {pool.name} asks for a /{pool.prefix_length} public IP prefix (tag"
        f" {resource_names.TAG_GATEWAY_IP_PREFIX_SIZE}), but Azure offers /"
        f"{MIN_AZURE_PREFIX_LENGTH} to /{MAX_AZURE_PREFIX_LENGTH}"
    )


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


def teardown_steps(
    record: AppliedConfiguration, *, ip_config_first: bool = True
) -> tuple[TeardownStep, ...]:
    """Deletion and compensation order (docs/control-plane.md): the gateways on the nodes,
    ipConfig, rule and probe, public IPs and managed prefix (no ipConfig may point at it any
    more), then the Secret.

    The ipConfig goes before the rule: the pool's primary ipConfigs reference the load balancer
    backend pool while any of our ipConfigs remain, and the pool's last rule takes that backend
    pool with it, after which Azure refuses the scale set's next write (InvalidResourceReference).
    `ip_config_first=False` is 0.1.0's order (rule first), which histories recorded by it replay.
    """
    steps: list[TeardownStep] = []
    if record.node_gateways:
        # First, so no node keeps serving a rule that is going away.
        steps.append(TeardownStep.REMOVE_NODE_GATEWAYS)
    azure = [
        (TeardownStep.REMOVE_RULE, record.rule_registered),
        (TeardownStep.REMOVE_IP_CONFIG, record.pool is not None),
    ]
    if ip_config_first:
        azure.reverse()
    steps += [step for step, wanted in azure if wanted]
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


# --- A provisioned configuration -----------------------------------------------------------------


@dataclass(frozen=True)
class Provisioned:
    """What a successful pass found out, for the status and the workflow's own result."""

    key: GatewayKey
    pool: GatewayPool
    frontend_ip: str
    port: int
    prefix: PublicPrefix | None
    nodes: tuple[NodeAddress, ...]
    # Nodes whose agent did not configure the gateway; Azure is provisioned regardless.
    node_problems: tuple[NodeProblem, ...] = ()


def provisioned_phase(provisioned: Provisioned) -> Phase:
    return Phase.DEGRADED if provisioned.node_problems else Phase.READY
