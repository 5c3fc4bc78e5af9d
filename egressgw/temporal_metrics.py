"""Temporal's metrics on the process's /metrics: the SDK's own (`temporal_*`: polls, task and
schedule-to-start latencies, slots, failures) and what workflows record through their
replay-safe meter (workflows/pass_metrics.py).

Temporal's core hands every metric update to a `MetricBuffer`; `TemporalMetrics` drains it every
second and on each scrape (a buffer left full drops updates), keeps the totals and yields them as
Prometheus families. A metric the catalog (contracts/metric_catalog.py) defines keeps exactly the
catalog's labels and buckets: the workflow meter's own attributes (service_name, workflow_type,
task_queue) are dropped. The SDK's metrics keep their attributes except `service_name` (the same
on all); their counters get Prometheus' `_total` suffix and their durations are seconds.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    BufferedMetricUpdate,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

from contracts.metric_catalog import MetricKind, MetricSpec

log = logging.getLogger(__name__)

# Updates held between drains: a busy worker makes a few hundred a second.
BUFFER_SIZE: Final = 100_000
DRAIN_INTERVAL_SECONDS: Final = 1.0
# For the SDK's own histograms (all durations, in seconds).
SDK_BUCKETS: Final = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_SAME_ON_ALL: Final = frozenset({"service_name"})

LabelKey = tuple[tuple[str, str], ...]


class _Buckets:
    """One histogram series: counts per bucket (the last is +Inf), the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        # A value equal to a bound belongs to that bucket (le = "less or equal").
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, int]]:
        running, out = 0, []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append((floatToGoString(bound), running))  # type: ignore[no-untyped-call]
        return out


@dataclass
class _Series:
    kind: MetricKind
    help: str
    spec: MetricSpec | None
    values: dict[LabelKey, float] = field(default_factory=dict)
    histograms: dict[LabelKey, _Buckets] = field(default_factory=dict)

    def key(self, attributes: Mapping[str, object]) -> LabelKey:
        if self.spec is not None:
            return tuple((name, str(attributes.get(name, ""))) for name in self.spec.labels)
        return tuple(sorted((k, str(v)) for k, v in attributes.items() if k not in _SAME_ON_ALL))

    def apply(self, attributes: Mapping[str, object], value: float) -> None:
        key = self.key(attributes)
        if self.kind is MetricKind.COUNTER:
            self.values[key] = self.values.get(key, 0.0) + value
        elif self.kind is MetricKind.GAUGE:
            self.values[key] = value
        else:
            buckets = self.histograms.get(key)
            if buckets is None:
                bounds = self.spec.buckets if self.spec is not None else SDK_BUCKETS
                buckets = self.histograms[key] = _Buckets(bounds)
            buckets.observe(value)

    def family(self, name: str) -> Metric:
        if self.kind is MetricKind.HISTOGRAM:
            family = Metric(name, self.help, "histogram")
            for key, buckets in self.histograms.items():
                labels = dict(key)
                for le, count in buckets.cumulative():
                    family.add_sample(f"{name}_bucket", {**labels, "le": le}, count)
                family.add_sample(f"{name}_count", labels, sum(buckets.counts))
                family.add_sample(f"{name}_sum", labels, buckets.total)
            return family
        if self.kind is MetricKind.GAUGE:
            family, sample = Metric(name, self.help, "gauge"), name
        elif name.endswith("_total"):
            family, sample = Metric(name.removesuffix("_total"), self.help, "counter"), name
        elif self.spec is not None:
            # Upstream's own counter name without _total (controller_reconcile_fail_count):
            # kept as it is, so their queries work; typed unknown, which the name allows.
            family, sample = Metric(name, self.help, "unknown"), name
        else:
            family, sample = Metric(name, self.help, "counter"), f"{name}_total"
        for key, value in self.values.items():
            family.add_sample(sample, dict(key), value)
        return family


def _kind(update: BufferedMetricUpdate) -> MetricKind:
    kind = update.metric.kind
    if kind == BUFFERED_METRIC_KIND_COUNTER:
        return MetricKind.COUNTER
    if kind == BUFFERED_METRIC_KIND_GAUGE:
        return MetricKind.GAUGE
    return MetricKind.HISTOGRAM


class TemporalMetrics(Collector):
    """The Runtime to connect Temporal clients with (`runtime`), and a collector of what it
    records. One per process: a client connected with another runtime is not seen."""

    def __init__(self, specs: Iterable[MetricSpec], buffer_size: int = BUFFER_SIZE) -> None:
        self.buffer = MetricBuffer(buffer_size, MetricBufferDurationFormat.SECONDS)
        self.runtime = Runtime(telemetry=TelemetryConfig(metrics=self.buffer))
        self._specs = {spec.name: spec for spec in specs}
        self._series: dict[str, _Series] = {}
        self._lock = threading.Lock()  # scrapes collect in a thread, the drain task in the loop

    def drain(self) -> None:
        with self._lock:
            for update in self.buffer.retrieve_updates():
                name = update.metric.name
                series = self._series.get(name)
                if series is None:
                    spec = self._specs.get(name)
                    series = self._series[name] = _Series(
                        kind=spec.kind if spec is not None else _kind(update),
                        help=spec.help if spec is not None else (update.metric.description or name),
                        spec=spec,
                    )
                series.apply(update.attributes, float(update.value))

    def collect(self) -> Iterator[Metric]:
        self.drain()
        with self._lock:
            families = [series.family(name) for name, series in sorted(self._series.items())]
        yield from families

    async def drain_until(self, stop: asyncio.Event) -> None:
        """Drain every DRAIN_INTERVAL_SECONDS until `stop`, so the buffer never fills between
        scrapes."""
        while not stop.is_set():
            try:
                self.drain()
            except Exception:  # a bad update must not end the draining; the next one may pass
                log.warning("draining Temporal's metrics failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=DRAIN_INTERVAL_SECONDS)
