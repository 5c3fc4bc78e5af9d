"""Where a failed pass failed, as the Degraded condition's reason tells it: Azure only when Azure
answered; Kubernetes, the gateway pool lookup and the bring-your-own prefix check each by name."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError

from activities.azure import errors as azure_errors
from activities.kube import errors as kube_errors
from contracts import kube_names
from contracts.failure_types import failure_reason
from workflows.failures import failure_types
from workflows.gateway_pool import APPLY_FAILED as POOL_APPLY_FAILED
from workflows.load_balancer import APPLY_FAILED as LB_APPLY_FAILED


@pytest.mark.parametrize(
    ("error_type", "reason"),
    [
        ("AzureInvalidPrefixLength", kube_names.REASON_AZURE_ERROR),
        (azure_errors.THROTTLED, kube_names.REASON_AZURE_ERROR),
        (azure_errors.OPERATION_FAILED, kube_names.REASON_AZURE_ERROR),
        (azure_errors.LOAD_BALANCER_FULL, kube_names.REASON_AZURE_ERROR),
        (LB_APPLY_FAILED, kube_names.REASON_AZURE_ERROR),
        (POOL_APPLY_FAILED, kube_names.REASON_AZURE_ERROR),
        (kube_errors.REJECTED_ERROR, kube_names.REASON_KUBERNETES_ERROR),
        (kube_errors.UNAVAILABLE_ERROR, kube_names.REASON_KUBERNETES_ERROR),
        (kube_errors.CONFLICT_ERROR, kube_names.REASON_KUBERNETES_ERROR),
        (azure_errors.POOL_NOT_FOUND, kube_names.REASON_GATEWAY_POOL_NOT_FOUND),
        (azure_errors.INVALID_POOL, kube_names.REASON_INVALID_GATEWAY_POOL),
        (azure_errors.INVALID_PREFIX, kube_names.REASON_INVALID_PUBLIC_IP_PREFIX),
        ("SomethingNobodyClassified", kube_names.REASON_PROVISIONING_FAILED),
    ],
)
def test_each_error_type_names_its_source(error_type: str, reason: str) -> None:
    assert failure_reason([error_type]) == reason


def test_the_innermost_typed_cause_decides() -> None:
    """A single writer re-raises the Azure error's type under its own activity's failure."""
    azure = ApplicationError("Azure said no", type="AzureBadRequest")
    wrapper = ApplicationError("ensure rule failed", type="SomethingNobodyClassified")
    wrapper.__cause__ = azure

    assert failure_types(wrapper) == ["SomethingNobodyClassified", "AzureBadRequest"]
    assert failure_reason(failure_types(wrapper)) == kube_names.REASON_AZURE_ERROR


def test_an_untyped_failure_is_provisioning_failed() -> None:
    assert failure_reason(failure_types(TimeoutError("activity timed out"))) == (
        kube_names.REASON_PROVISIONING_FAILED
    )
