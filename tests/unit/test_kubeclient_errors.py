"""What a failed Kubernetes API call is, as kubeclient/errors.py classifies it for every caller."""

from __future__ import annotations

import json
from datetime import timedelta

import aiohttp
import pytest
from kubernetes_asyncio.client.exceptions import ApiException
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from kubeclient.errors import (
    ApiErrorKind,
    api_error_kind,
    api_failure,
    describe_failure,
    is_conflict,
    is_not_found,
)


def api_exception(status: int, body: object, retry_after: str | None = None) -> ApiException:
    exc = ApiException(status=status, reason="Reason")
    exc.body = json.dumps(body).encode()
    exc.headers = CIMultiDictProxy(
        CIMultiDict({"Retry-After": retry_after} if retry_after is not None else {})
    )
    return exc


def status_body(code: int, message: str) -> dict[str, object]:
    return {"kind": "Status", "apiVersion": "v1", "code": code, "message": message}


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (404, ApiErrorKind.NOT_FOUND),
        (409, ApiErrorKind.CONFLICT),
        (410, ApiErrorKind.GONE),
        (429, ApiErrorKind.UNAVAILABLE),
        (500, ApiErrorKind.UNAVAILABLE),
        (503, ApiErrorKind.UNAVAILABLE),
        (0, ApiErrorKind.UNAVAILABLE),
        (400, ApiErrorKind.REJECTED),
        (401, ApiErrorKind.DENIED),
        (403, ApiErrorKind.DENIED),
        (422, ApiErrorKind.REJECTED),
    ],
)
def test_statuses_map_to_one_kind_each(status: int, kind: ApiErrorKind) -> None:
    assert api_error_kind(status) is kind


def test_an_api_exception_carries_the_servers_status_message_and_retry_after() -> None:
    failure = api_failure(api_exception(429, status_body(429, "slow down"), retry_after="3"))
    assert failure.kind is ApiErrorKind.UNAVAILABLE
    assert (failure.status, failure.reason, failure.message) == (429, "Reason", "slow down")
    assert failure.retry_after == timedelta(seconds=3)
    assert failure.describe() == "HTTP 429: slow down"
    conflict = api_exception(409, status_body(409, "the object has been modified"))
    assert is_conflict(conflict) and not is_not_found(conflict)
    assert is_not_found(api_exception(404, status_body(404, 'secrets "sgw-1" not found')))


def test_a_body_that_is_not_a_status_never_reaches_a_message() -> None:
    secret = {"kind": "Secret", "data": {"PrivateKey": "c2VjcmV0"}}
    failure = api_failure(api_exception(422, secret))
    assert failure.kind is ApiErrorKind.REJECTED and failure.message == ""
    assert "c2VjcmV0" not in describe_failure(api_exception(422, secret))


def test_a_long_status_message_is_capped() -> None:
    failure = api_failure(api_exception(422, status_body(422, "x" * 5000)))
    assert 0 < len(failure.message) <= 400


def test_an_aiohttp_response_error_is_classified_like_an_api_exception() -> None:
    url = URL("https://kube.example/api/v1/nodes")
    request = aiohttp.RequestInfo(url, "GET", CIMultiDictProxy(CIMultiDict()), url)
    exc = aiohttp.ClientResponseError(
        request,
        (),
        status=503,
        message="Service Unavailable",
        headers=CIMultiDictProxy(CIMultiDict({"Retry-After": "7"})),
    )
    failure = api_failure(exc)
    assert failure.kind is ApiErrorKind.UNAVAILABLE
    assert (failure.status, failure.reason) == (503, "Service Unavailable")
    assert failure.retry_after == timedelta(seconds=7)


@pytest.mark.parametrize(
    "exc",
    [aiohttp.ClientConnectionError("connection refused"), TimeoutError(), OSError("unreachable")],
)
def test_a_call_without_a_response_is_unavailable(exc: BaseException) -> None:
    failure = api_failure(exc)
    assert failure.kind is ApiErrorKind.UNAVAILABLE and failure.status == 0
    assert failure.reason.startswith(type(exc).__name__)
    assert describe_failure(exc).startswith(type(exc).__name__)
