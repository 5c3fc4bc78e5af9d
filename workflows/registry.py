"""The workflow classes the controller's worker registers (and the replayer replays)."""

from __future__ import annotations

from typing import Final

from workflows.gateway_config import GatewayConfigWorkflow
from workflows.gateway_pool import GatewayPoolWorkflow
from workflows.load_balancer import LoadBalancerWorkflow

WORKFLOWS: Final[tuple[type, ...]] = (
    GatewayConfigWorkflow,
    LoadBalancerWorkflow,
    GatewayPoolWorkflow,
)
