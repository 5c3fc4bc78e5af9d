"""State survives an emulator restart on the same state dir, including a running operation."""

from __future__ import annotations

import time
from pathlib import Path

from azure.identity import ClientSecretCredential
from azure.mgmt.network import NetworkManagementClient

from sim.arm.background import BackgroundArm
from sim.arm.server import ArmEmulator
from sim.topology import Topology
from tests.fixtures.arm import CLIENT_ID, CLIENT_SECRET, client_kwargs


def _client(emulator: ArmEmulator, topo: Topology) -> NetworkManagementClient:
    cred = ClientSecretCredential(
        topo.tenant_id,
        CLIENT_ID,
        CLIENT_SECRET,
        authority=f"127.0.0.1:{emulator.port}",
        disable_instance_discovery=True,
        connection_verify=str(emulator.ca_path),
    )
    return NetworkManagementClient(cred, topo.subscription_id, **client_kwargs(emulator))


def test_resources_and_operations_survive_restart(tmp_path: Path) -> None:
    topo = Topology()
    state = tmp_path / "arm"
    first = BackgroundArm(state, latency={"PUT publicIPPrefixes": 0.3})
    first.emulator.seed(topo)
    emulator = first.start()
    with _client(emulator, topo) as net:
        done = net.public_ip_prefixes.begin_create_or_update(
            topo.resource_group,
            "kept",
            {"location": topo.location, "properties": {"prefixLength": 31}},
        ).result()
        net.public_ip_prefixes.begin_create_or_update(
            topo.resource_group,
            "inflight",
            {"location": topo.location, "properties": {"prefixLength": 31}},
            polling=False,  # stop the emulator while the operation still runs
        )
    first.stop()
    time.sleep(0.35)
    second = BackgroundArm(state)
    second.emulator.seed(topo)  # idempotent: nothing duplicated, nothing reset
    emulator = second.start()
    try:
        with _client(emulator, topo) as net:
            kept = net.public_ip_prefixes.get(topo.resource_group, "kept")
            assert kept.ip_prefix == done.ip_prefix
            assert kept.etag == done.etag
            inflight = net.public_ip_prefixes.get(topo.resource_group, "inflight")
            assert inflight.provisioning_state == "Succeeded"
            assert inflight.ip_prefix != kept.ip_prefix
            vms = [n.name for n in net.network_interfaces.list(topo.resource_group)]
            assert len(vms) == sum(p.vm_count for p in topo.vm_pools)
        assert emulator.store.latency == {"PUT publicIPPrefixes": 0.3}
    finally:
        second.stop()
