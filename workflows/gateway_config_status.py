"""How GatewayConfigWorkflow's outcome reads: the status and conditions written to the
StaticGatewayConfiguration, the messages of its Events, and the Web UI's current details. Pure
functions over contracts data and the decisions of workflows/gateway_config_decisions.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from contracts import kube_names
from contracts.activity_io import ConditionUpdate, ResourceChange, StatusUpdate
from contracts.azure_state import NodeAddress, PublicPrefix
from contracts.conditions import ConditionStatus
from contracts.spec_validation import FieldError, describe_field_errors
from contracts.workflow_io import ConfigurationStatus, SpecDelivery
from workflows.gateway_config_decisions import Phase, Provisioned

# Not in kube_names: only this workflow records it, after a drift check changed something.
EVENT_DRIFT_REPAIRED: Final = "DriftRepaired"
# Recorded when an agent refuses some of the pods' peers (the rest are applied).
EVENT_PEERS_REJECTED: Final = "GatewayPeersRejected"


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


def ready_message(provisioned: Provisioned) -> str:
    egress = egress_ip_prefix(provisioned.prefix, provisioned.nodes)
    return (
        f"egress {egress} through gateway pool {provisioned.pool.name}"
        f" ({len(provisioned.nodes)} nodes), server {provisioned.frontend_ip}:{provisioned.port}"
    )


def nodes_message(provisioned: Provisioned) -> str:
    problems = provisioned.node_problems
    if not problems:
        return ""
    return (
        f"{len(problems)} of {len(provisioned.nodes)} gateway nodes not configured: "
        + "; ".join(f"{p.node_name}: {p.reason}" for p in problems)
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


def failed_status(delivery: SpecDelivery, message: str, reason: str) -> StatusUpdate:
    """`reason` (Degraded's) says where the failure came from: failure_types.failure_reason."""
    return StatusUpdate(
        sgc=delivery.sgc,
        observed_generation=delivery.generation,
        conditions=_conditions(
            (ConditionStatus.FALSE, kube_names.REASON_PROVISIONING_FAILED, message),
            (ConditionStatus.FALSE, kube_names.REASON_PROVISIONING_FAILED, message),
            (ConditionStatus.TRUE, reason, message),
        ),
    )


def delete_failed_status(delivery: SpecDelivery, message: str, reason: str) -> StatusUpdate:
    return StatusUpdate(
        sgc=delivery.sgc,
        observed_generation=delivery.generation,
        conditions=_conditions(
            (ConditionStatus.FALSE, kube_names.REASON_DELETING, message),
            (ConditionStatus.TRUE, kube_names.REASON_DELETING, "deletion will be retried"),
            (ConditionStatus.TRUE, reason, message),
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


def drift_event_message(repairs: Sequence[ResourceChange], owner_uid: str) -> str | None:
    """The Event text for a drift check that changed something of this configuration's (its own
    rule, probe or ipConfig, or something configurations share); None when nothing of it
    drifted. A batch also carries other configurations' changes, which must not show here."""
    unique = list(dict.fromkeys(r.description for r in repairs if r.concerns(owner_uid)))
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
