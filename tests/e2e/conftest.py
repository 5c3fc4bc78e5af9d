"""Fixtures for the end-to-end control-plane tests (tests/e2e/control_plane.py holds the parts)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sim.arm.server import ArmEmulator
from sim.topology import Topology
from tests.e2e.control_plane import ControlPlane, control_plane


@pytest.fixture
async def plane(
    tmp_path: Path, arm_emulator: ArmEmulator, arm_topology: Topology, kubeconfig_path: Path
) -> AsyncIterator[ControlPlane]:
    """Its own Temporal dev server, the emulators, and no controller yet."""
    async with control_plane(
        tmp_path / "plane", arm_emulator, arm_topology, kubeconfig_path
    ) as made:
        yield made
