"""The workflow tests share the session's Temporal dev server (tests/fixtures/workflow_stack.py):
each gets a resource group of its own, so its single writers are its own too."""

from __future__ import annotations

import pytest

from sim.topology import Topology
from tests.fixtures.workflow_stack import own_resource_group_topology


@pytest.fixture
def arm_topology() -> Topology:
    return own_resource_group_topology()
