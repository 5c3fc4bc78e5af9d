"""How Kubernetes API failures become Temporal outcomes, and the key Secret's decisions."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from kubernetes_asyncio.client.exceptions import ApiException
from multidict import CIMultiDict, CIMultiDictProxy

from activities.kube.errors import CONFLICT_ERROR, REJECTED_ERROR, UNAVAILABLE_ERROR, activity_error
from activities.kube.gateway_keys import new_key_pair, secret_data, secret_repairs, stored_key_pair
from contracts import kube_names
from contracts.activity_io import SgcRef


def api_exception(status: int, message: str = "", retry_after: str | None = None) -> ApiException:
    exc = ApiException(status=status, reason="Reason")
    exc.body = json.dumps({"kind": "Status", "code": status, "message": message}).encode()
    exc.headers = CIMultiDictProxy(
        CIMultiDict({"Retry-After": retry_after} if retry_after is not None else {})
    )
    return exc


def test_conflicts_and_server_trouble_retry_and_throttling_honours_retry_after() -> None:
    conflict = activity_error(api_exception(409, "the object has been modified"), "update status")
    assert not conflict.non_retryable and conflict.type == CONFLICT_ERROR
    throttled = activity_error(api_exception(429, "slow down", retry_after="3"), "create Event")
    assert not throttled.non_retryable and throttled.type == UNAVAILABLE_ERROR
    assert throttled.next_retry_delay == timedelta(seconds=3)
    broken = activity_error(api_exception(503), "read Secret ns/x")
    assert not broken.non_retryable and broken.next_retry_delay is None


def test_other_client_errors_stop_with_the_api_servers_message() -> None:
    refused = activity_error(
        api_exception(403, 'secrets is forbidden: User "sa" cannot create resource "secrets"'),
        "create Secret egressgw-system/sgw-1",
    )
    assert refused.non_retryable and refused.type == REJECTED_ERROR
    assert refused.message == (
        "create Secret egressgw-system/sgw-1: HTTP 403: "
        'secrets is forbidden: User "sa" cannot create resource "secrets"'
    )


def test_a_stored_key_is_kept_and_its_public_key_derived() -> None:
    pair = new_key_pair()
    assert len(base64.b64decode(pair.private_key)) == 32
    assert pair.private_key not in repr(pair)
    sgc = SgcRef("ns", "gw", "u1")
    labels = {
        kube_names.SECRET_OWNER_NAMESPACE_LABEL: "ns",
        kube_names.SECRET_OWNER_NAME_LABEL: "gw",
    }
    assert stored_key_pair(secret_data(pair)) == pair
    kept, patch = secret_repairs(sgc, labels, secret_data(pair))
    assert kept == pair and patch == {}
    wrong_public = {**secret_data(pair), "PublicKey": secret_data(new_key_pair())["PublicKey"]}
    kept, patch = secret_repairs(sgc, labels, wrong_public)
    assert kept == pair and patch == {"data": {"PublicKey": secret_data(pair)["PublicKey"]}}


@pytest.mark.parametrize(
    "data",
    [
        None,
        {},
        {"PrivateKey": "!!!"},
        {"PrivateKey": base64.b64encode(b"short").decode()},
        {"PrivateKey": base64.b64encode(base64.b64encode(b"x" * 31)).decode()},
    ],
)
def test_a_missing_or_invalid_private_key_is_replaced(data: dict[str, str] | None) -> None:
    assert stored_key_pair(data) is None
    pair, patch = secret_repairs(SgcRef("ns", "gw", "u1"), {}, data)
    assert patch["data"] == secret_data(pair)
    assert patch["metadata"]["labels"][kube_names.SECRET_OWNER_NAME_LABEL] == "gw"
