"""The `ApplicationError` types that activities raise and workflows read, and where each failure
came from: Azure, Kubernetes, the gateway pool lookup or the bring-your-own prefix check.

The Degraded condition's reason says that source (kube_names.REASON_*), so a user reading
`AzureError` knows Azure answered, and one reading `KubernetesError` knows it did not get that far.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from contracts import kube_names

# Kubernetes API failures (activities/kube/errors.py).
KUBE_CONFLICT: Final = "KubeConflict"
KUBE_UNAVAILABLE: Final = "KubeUnavailable"
KUBE_REJECTED: Final = "KubeRejected"
KUBE_DENIED: Final = "KubeDenied"

# Azure's own answers are typed `Azure<something>` (activities/azure/errors.py: AzureThrottled,
# AzureConflict, Azure<Code> for a refusal, ...).
AZURE_PREFIX: Final = "Azure"
# Refusals and states the Azure activities decide themselves.
POOL_NOT_FOUND: Final = "GatewayPoolNotFound"
INVALID_POOL: Final = "InvalidGatewayPool"
INVALID_PREFIX: Final = "InvalidPublicIpPrefix"
LOAD_BALANCER_FULL: Final = "LoadBalancerPortsExhausted"
UNEXPECTED_STATE: Final = "UnexpectedAzureState"
# A single writer's apply failed (LoadBalancerWorkflow, GatewayPoolWorkflow): an Azure write.
LOAD_BALANCER_APPLY_FAILED: Final = "LoadBalancerApplyFailed"
GATEWAY_POOL_APPLY_FAILED: Final = "GatewayPoolApplyFailed"

_KUBERNETES: Final = frozenset({KUBE_CONFLICT, KUBE_UNAVAILABLE, KUBE_REJECTED, KUBE_DENIED})
_AZURE: Final = frozenset(
    {LOAD_BALANCER_FULL, UNEXPECTED_STATE, LOAD_BALANCER_APPLY_FAILED, GATEWAY_POOL_APPLY_FAILED}
)
_OWN_REASONS: Final = {
    POOL_NOT_FOUND: kube_names.REASON_GATEWAY_POOL_NOT_FOUND,
    INVALID_POOL: kube_names.REASON_INVALID_GATEWAY_POOL,
    INVALID_PREFIX: kube_names.REASON_INVALID_PUBLIC_IP_PREFIX,
}


def source_reason(error_type: str) -> str | None:
    """The condition reason for one error type; None for a type that names no source."""
    if error_type in _OWN_REASONS:
        return _OWN_REASONS[error_type]
    if error_type in _KUBERNETES:
        return kube_names.REASON_KUBERNETES_ERROR
    if error_type in _AZURE or error_type.startswith(AZURE_PREFIX):
        return kube_names.REASON_AZURE_ERROR
    return None


def failure_reason(error_types: Iterable[str]) -> str:
    """The reason for a failure whose chain carries `error_types`, outermost first: the innermost
    type that names a source decides (a single writer passes the original type on); a failure
    with none (a timeout, a crash) is `ProvisioningFailed`."""
    reason = kube_names.REASON_PROVISIONING_FAILED
    for error_type in error_types:
        reason = source_reason(error_type) or reason
    return reason
