"""The client-side ARM rate limit (cloudProviderRateLimit): token buckets on a fake clock, the
pipeline policy in front of a recording transport, and how a held-back request is classified."""

from __future__ import annotations

from datetime import timedelta

import pytest
from azure.core.pipeline import PipelineContext, PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy
from azure.core.rest import AsyncHttpResponse, HttpRequest

from activities.azure.errors import THROTTLED, classify
from activities.azure.rate_limit import ArmRateLimitPolicy, RateLimitReached, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_starts_full_and_refills_at_its_rate_up_to_its_size() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, capacity=3, clock=clock)
    assert [bucket.reserve(0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve(0) is None
    assert bucket.next_token_in() == pytest.approx(0.5)

    clock.now += 1.0  # two tokens back
    assert [bucket.reserve(0) for _ in range(2)] == [0.0, 0.0]
    assert bucket.reserve(0) is None

    clock.now += 60.0  # never more than the bucket holds
    assert [bucket.reserve(0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve(0) is None


def test_waiters_queue_for_tokens_until_the_wait_would_be_too_long() -> None:
    bucket = TokenBucket(rate=4.0, capacity=1, clock=Clock())
    assert bucket.reserve(1.0) == 0.0
    assert bucket.reserve(1.0) == pytest.approx(0.25)
    assert bucket.reserve(1.0) == pytest.approx(0.5)
    assert bucket.reserve(0.6) is None  # the next token is 0.75 s away: nothing taken
    assert bucket.next_token_in() == pytest.approx(0.75)


def test_a_bucket_needs_a_rate_and_room_for_one_token() -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        TokenBucket(rate=0.0, capacity=1)
    with pytest.raises(ValueError, match="capacity >= 1"):
        TokenBucket(rate=1.0, capacity=0)


class Recorder(AsyncHTTPPolicy[HttpRequest, AsyncHttpResponse]):
    """Stands where the rest of the pipeline would be: records the methods that got through."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    async def send(
        self, request: PipelineRequest[HttpRequest]
    ) -> PipelineResponse[HttpRequest, AsyncHttpResponse]:
        self.sent.append(request.http_request.method)
        return PipelineResponse(request.http_request, None, request.context)  # type: ignore[arg-type]


def pipeline(reads: int, writes: int) -> tuple[ArmRateLimitPolicy, Recorder, list[float]]:
    clock = Clock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    policy = ArmRateLimitPolicy(
        TokenBucket(rate=1.0, capacity=reads, clock=clock),
        TokenBucket(rate=0.1, capacity=writes, clock=clock),
        max_wait=5.0,
        sleep=sleep,
    )
    recorder = Recorder()
    policy.next = recorder
    return policy, recorder, slept


async def send(policy: ArmRateLimitPolicy, method: str) -> None:
    request = HttpRequest(method, "https://management.azure.com/subscriptions/s")
    await policy.send(PipelineRequest(request, PipelineContext(None)))


async def test_reads_and_writes_draw_on_their_own_buckets() -> None:
    policy, recorder, slept = pipeline(reads=2, writes=1)
    for method in ("GET", "HEAD", "PUT"):
        await send(policy, method)
    assert slept == []

    await send(policy, "GET")  # the read bucket is empty: one token a second
    assert slept == [pytest.approx(1.0)]

    with pytest.raises(RateLimitReached) as caught:
        await send(policy, "DELETE")  # writes: one token every 10 s, longer than max_wait
    assert caught.value.kind == "write"
    assert caught.value.retry_after_seconds == pytest.approx(9.0)
    assert recorder.sent == ["GET", "HEAD", "PUT", "GET"]


async def test_a_held_back_request_is_a_retryable_throttle_with_the_delay_until_a_token() -> None:
    policy, _, _ = pipeline(reads=1, writes=1)
    await send(policy, "PATCH")
    with pytest.raises(RateLimitReached) as caught:
        await send(policy, "POST")

    failure = classify(caught.value, "updating load balancer kubeegressgateway-ilb")

    assert failure.type == THROTTLED
    assert not failure.non_retryable
    assert failure.next_retry_delay == timedelta(seconds=10)
    assert failure.message.startswith("updating load balancer kubeegressgateway-ilb held back:")
    assert "cloudProviderRateLimit" in failure.message
