"""Whether a resource as read has an operation running on it: what decides that an activity waits
(a retryable, benign error) instead of writing over it."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.azure import errors
from activities.azure.long_operations import require_settled, running_state


def _resource(state: Any) -> dict[str, Any]:
    return {"name": "kubeegressgateway-ilb", "properties": {"provisioningState": state}}


@pytest.mark.parametrize("state", ["Creating", "Updating", "Deleting", "updating"])
def test_a_running_operation_is_waited_for(state: str) -> None:
    assert running_state(_resource(state)) == state
    with pytest.raises(ApplicationError) as raised:
        require_settled("load balancer kubeegressgateway-ilb", _resource(state))
    err = raised.value
    assert err.type == errors.OPERATION_IN_PROGRESS
    assert not err.non_retryable
    assert err.category == ApplicationErrorCategory.BENIGN
    assert f"load balancer kubeegressgateway-ilb is {state}" in err.message


@pytest.mark.parametrize("state", ["Succeeded", "Failed", "Canceled", None, 3])
def test_a_settled_or_absent_resource_is_written(state: Any) -> None:
    assert running_state(_resource(state)) is None
    require_settled("load balancer kubeegressgateway-ilb", _resource(state))
    require_settled("load balancer kubeegressgateway-ilb", None)
    assert running_state({"properties": None}) is None
