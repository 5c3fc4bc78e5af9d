"""IMDS at 169.254.169.254 inside the fabric's node namespaces (sim/fabric/imds_relay.py), on real
namespaces: each node reaches its own VM's IMDS emulator there, azure-identity's
ManagedIdentityCredential finds it with nothing configured (no AZURE_POD_IDENTITY_AUTHORITY_HOST),
and an address that belongs to no node gets no answer.

The relay runs on the test's event loop, so the clients inside the namespaces are asyncio
subprocesses (a blocking wait would stop the relay too).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sim.arm.seed import seed_topology
from sim.arm.store import Store, Transaction
from sim.fabric.arm_view import read_arm_network
from sim.fabric.imds_relay import IMDS_ADDRESS, ImdsRelay, Target, routes_for_nodes
from sim.fabric.network import Fabric, netns_command
from sim.fabric.plan import FabricPlan, NodePlan, plan_fabric
from sim.imds import ImdsEmulator, InstanceMetadata
from sim.topology import Topology

pytestmark = pytest.mark.needs_root

CLIENT_IP = "10.244.0.9"

# Reads one IMDS path the way the agent would; prints the body, or "refused: <error>".
READ = """
import sys, urllib.request
request = urllib.request.Request(sys.argv[1], headers={"Metadata": "true"})
try:
    with urllib.request.urlopen(request, timeout=5) as response:
        print(response.read().decode())
except OSError as exc:
    print(f"refused: {exc}")
"""

# What any Azure SDK program on the node does: no configuration at all.
TOKEN = """
from azure.identity import ManagedIdentityCredential
credential = ManagedIdentityCredential()
print(credential.get_token("https://management.azure.com/.default").token.count("."))
"""

COMPUTER_NAME = (
    f"http://{IMDS_ADDRESS}/metadata/instance/compute/osProfile/computerName"
    "?api-version=2021-10-01&format=text"
)


@dataclass
class World:
    plan: FabricPlan
    fabric: Fabric
    relay: ImdsRelay
    imds: dict[str, ImdsEmulator]  # by node name

    def node(self, index: int) -> NodePlan:
        return self.plan.nodes[index]


@pytest.fixture
async def world(net_tag: str, tmp_path: Path) -> AsyncIterator[World]:
    store = Store()
    tx = Transaction(store)
    seed_topology(tx, Topology())
    tx.commit()
    network = read_arm_network(store)
    plan = plan_fabric(net_tag, network.node_specs(), outbound_ip=network.outbound_ip)
    fabric = Fabric(plan, tmp_path / "network")
    # One IMDS per VM for the first two nodes (a gateway node and the next one).
    emulators = {
        node.name: ImdsEmulator(instance=InstanceMetadata(computer_name=node.name))
        for node in plan.nodes[:2]
    }
    relay: ImdsRelay | None = None
    try:
        await asyncio.to_thread(fabric.build)
        for emulator in emulators.values():
            await emulator.start()
        targets = {
            name: Target("127.0.0.1", int(e.url.rsplit(":", 1)[1])) for name, e in emulators.items()
        }
        relay = ImdsRelay(plan.router_netns, routes_for_nodes(plan.nodes, targets))
        await relay.start()
        yield World(plan, fabric, relay, emulators)
    finally:
        if relay is not None:
            await relay.stop()
        for emulator in emulators.values():
            await emulator.stop()
        await asyncio.to_thread(fabric.destroy)


async def _exec(argv: list[str]) -> str:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AZURE_", "IDENTITY_", "MSI_", "IMDS_"))
    }
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


async def _run_in(netns: str, code: str, *args: str) -> str:
    return await _exec(netns_command(netns, [sys.executable, "-c", code, *args]))


async def test_each_node_reads_its_own_vms_imds_at_the_link_local_address(world: World) -> None:
    first, second = world.node(0), world.node(1)

    assert await _run_in(first.netns, READ, COMPUTER_NAME) == first.name
    assert await _run_in(second.netns, READ, COMPUTER_NAME) == second.name


async def test_managed_identity_credential_finds_it_with_nothing_configured(
    world: World,
) -> None:
    node = world.node(0)

    dots = await _run_in(node.netns, TOKEN)

    assert dots == "2"  # a JWT-shaped token
    (request,) = world.imds[node.name].token_requests
    assert request.protocol == "imds"
    assert request.resource == "https://management.azure.com"
    assert world.imds[world.node(1).name].token_requests == []


async def test_an_address_of_no_node_gets_no_answer(world: World) -> None:
    client = await asyncio.to_thread(world.fabric.add_client, "c", CLIENT_IP)

    answer = await _run_in(client.netns, READ, COMPUTER_NAME)

    assert answer.startswith("refused:")
    assert world.relay.refused == [CLIENT_IP]


async def test_stopping_the_relay_takes_the_address_away(world: World) -> None:
    node = world.node(0)
    await world.relay.stop()

    answer = await _run_in(node.netns, READ, COMPUTER_NAME)

    assert answer.startswith("refused:")
    addresses = await _exec(["ip", "-n", world.plan.router_netns, "-o", "addr", "show", "lo"])
    assert IMDS_ADDRESS not in addresses
