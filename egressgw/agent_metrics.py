"""The agent's /metrics: peers per gateway and gateways on the node, read from its node
activities at each scrape (agent/node_activities.py), and Temporal's SDK metrics of the node's
worker (egressgw/temporal_metrics.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from contracts import metric_catalog as catalog
from egressgw.listen_address import ListenAddress
from egressgw.process_telemetry import ProcessTelemetry
from egressgw.temporal_metrics import TemporalMetrics

GatewayPeers = Callable[[], Mapping[tuple[str, str], int]]


class NodeGatewaysCollector(Collector):
    def __init__(self, gateway_peers: GatewayPeers) -> None:
        self._gateway_peers = gateway_peers

    def collect(self) -> Iterator[Metric]:
        counts = dict(self._gateway_peers())
        peers = GaugeMetricFamily(
            catalog.GATEWAY_PEERS.name,
            catalog.GATEWAY_PEERS.help,
            labels=catalog.GATEWAY_PEERS.labels,
        )
        for (namespace, name), count in sorted(counts.items()):
            peers.add_metric([namespace, name], count)
        yield peers
        yield GaugeMetricFamily(catalog.NODE_GATEWAYS.name, catalog.NODE_GATEWAYS.help, len(counts))


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.temporal = TemporalMetrics(())
        self.registry.register(self.temporal)

    def watch(self, gateway_peers: GatewayPeers) -> None:
        """Serve the node's gateways from now on (once its activities exist)."""
        self.registry.register(NodeGatewaysCollector(gateway_peers))


def agent_telemetry(address: ListenAddress | None) -> tuple[ProcessTelemetry, AgentMetrics | None]:
    if address is None:
        return ProcessTelemetry(None, None), None
    metrics = AgentMetrics()
    return ProcessTelemetry(address, metrics.registry, metrics.temporal), metrics
