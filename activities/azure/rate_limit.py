"""The client-side ARM rate limit a cloud config asks for with `cloudProviderRateLimit`.

Two token buckets, one for reads (GET and HEAD) and one for writes (every other method), shared by
the network and compute clients of one process: a bucket holds up to `bucket` tokens, starts full
and refills at `qps` tokens a second, and every request that leaves the process takes one token.

A request that finds its bucket empty waits for its token when that comes within
`MAX_WAIT_SECONDS`. Otherwise it is held back at once with `RateLimitReached`, which
`errors.classify` turns into a retryable throttling failure whose next_retry_delay is the time
until a token is due: the activity fails and the workflow's retry policy tries it again, as the Go
implementation retries a call its own limiter refused. The wait is pacing, not a retry loop, and
it is kept short because an Azure activity heartbeats only while it polls a long-running
operation: a long wait here would look like a lost worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from azure.core.exceptions import AzureError
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy
from azure.core.rest import AsyncHttpResponse, HttpRequest

# Well below the Azure activities' 15 s heartbeat timeout, also for an activity that makes a few
# calls in a row before it starts a long-running operation.
MAX_WAIT_SECONDS: Final = 5.0
_READ_METHODS: Final = frozenset({"GET", "HEAD"})


class RateLimitReached(AzureError):
    """A request this process held back: its own rate limit allows no request now."""

    def __init__(self, kind: str, retry_after_seconds: float) -> None:
        self.kind = kind  # "read" or "write"
        self.retry_after_seconds = retry_after_seconds
        super().__init__(
            f"the client-side ARM rate limit for {kind}s (cloudProviderRateLimit) allows no "
            f"request for {retry_after_seconds:.1f}s"
        )


@dataclass
class TokenBucket:
    """`capacity` tokens at most, refilled at `rate` tokens a second; starts full."""

    rate: float
    capacity: int
    clock: Callable[[], float] = time.monotonic
    _tokens: float = field(init=False, repr=False)
    _stamp: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.capacity < 1:
            raise ValueError(
                f"a token bucket needs rate > 0 and capacity >= 1, got {self.rate} and "
                f"{self.capacity}"
            )
        self._tokens = float(self.capacity)
        self._stamp = self.clock()

    def _refill(self) -> None:
        now = self.clock()
        elapsed = max(0.0, now - self._stamp)
        self._tokens = min(float(self.capacity), self._tokens + elapsed * self.rate)
        self._stamp = now

    def next_token_in(self) -> float:
        """Seconds until a token is free for a new request (0 when one is there now)."""
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self.rate)

    def reserve(self, max_wait: float) -> float | None:
        """Take a token and return how long to wait before using it (0 when one was there), or
        None, taking nothing, when that wait would exceed `max_wait`. Tokens taken ahead of time
        queue waiters in order."""
        wait = self.next_token_in()
        if wait > max_wait:
            return None
        self._tokens -= 1.0
        return wait


class ArmRateLimitPolicy(AsyncHTTPPolicy[HttpRequest, AsyncHttpResponse]):
    """An azure-core pipeline policy that paces requests with a read and a write bucket."""

    def __init__(
        self,
        reads: TokenBucket,
        writes: TokenBucket,
        *,
        max_wait: float = MAX_WAIT_SECONDS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__()
        self._reads = reads
        self._writes = writes
        self._max_wait = max_wait
        self._sleep = sleep

    async def send(
        self, request: PipelineRequest[HttpRequest]
    ) -> PipelineResponse[HttpRequest, AsyncHttpResponse]:
        is_read = request.http_request.method.upper() in _READ_METHODS
        kind, bucket = ("read", self._reads) if is_read else ("write", self._writes)
        wait = bucket.reserve(self._max_wait)
        if wait is None:
            raise RateLimitReached(kind, bucket.next_token_in())
        if wait > 0:
            await self._sleep(wait)
        return await self.next.send(request)


def arm_rate_limit_policy(
    qps: float, bucket: int, qps_write: float, bucket_write: int
) -> ArmRateLimitPolicy:
    """The policy for a cloud config's read and write limits (one per process)."""
    return ArmRateLimitPolicy(TokenBucket(qps, bucket), TokenBucket(qps_write, bucket_write))
