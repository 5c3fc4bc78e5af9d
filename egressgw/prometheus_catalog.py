"""Prometheus instruments built from the specs of contracts/metric_catalog.py, so that a name,
its labels and its buckets are written once."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from contracts.metric_catalog import MetricKind, MetricSpec


def _check(spec: MetricSpec, kind: MetricKind) -> None:
    if spec.kind is not kind:
        raise ValueError(f"{spec.name} is a {spec.kind}, not a {kind}")


def counter(spec: MetricSpec, registry: CollectorRegistry) -> Counter:
    _check(spec, MetricKind.COUNTER)
    if not spec.name.endswith("_total"):
        # prometheus_client would expose it as <name>_total; such names come from workflows
        # only, through the Temporal bridge (egressgw/temporal_metrics.py), which keeps them.
        raise ValueError(f"{spec.name}: a process counter's name ends in _total")
    return Counter(spec.name, spec.help, spec.labels, registry=registry)


def gauge(spec: MetricSpec, registry: CollectorRegistry) -> Gauge:
    _check(spec, MetricKind.GAUGE)
    return Gauge(spec.name, spec.help, spec.labels, registry=registry)


def histogram(spec: MetricSpec, registry: CollectorRegistry) -> Histogram:
    _check(spec, MetricKind.HISTOGRAM)
    return Histogram(spec.name, spec.help, spec.labels, registry=registry, buckets=spec.buckets)
