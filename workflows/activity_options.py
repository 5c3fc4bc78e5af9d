"""Timeouts and retry policies per kind of activity the workflows call.

Retries come from these policies, never from loops in activities. Each policy is bounded, so a
dependency that never recovers surfaces as a failure the workflow reports and compensates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from temporalio.common import RetryPolicy


@dataclass(frozen=True)
class ActivityOptions:
    start_to_close: timedelta
    retry: RetryPolicy
    heartbeat: timedelta | None = None


# ARM calls: long-running operations heartbeat about once a second while they poll, so a lost
# worker is noticed within the heartbeat timeout and the retry resumes the poll elsewhere;
# 429/5xx/409/412 retry (with Retry-After as next_retry_delay).
AZURE: Final = ActivityOptions(
    start_to_close=timedelta(minutes=10),
    heartbeat=timedelta(seconds=15),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=10,
    ),
)

# Kubernetes API calls are short; 409 conflicts on status writes retry after a re-read.
KUBE: Final = ActivityOptions(
    start_to_close=timedelta(seconds=30),
    retry=RetryPolicy(
        initial_interval=timedelta(milliseconds=500),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=8,
    ),
)

# Waiting for a single-writer workflow's answer: the activity signals its request and completes
# asynchronously when the single writer answers (activities/temporal/single_writers.py), so it
# has no heartbeat (nothing runs while it waits) and a start-to-close long enough for the single
# writer's own Azure retries. Its attempts cover a failed signal-with-start (Temporal frontend
# unavailable) and an answer lost on the way (the attempt times out and submits again).
SINGLE_WRITER: Final = ActivityOptions(
    start_to_close=timedelta(minutes=30),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=10,
    ),
)
