"""Instance metadata for the dev stack's nodes: one IMDS emulator per node VM (sim/imds.py, on
127.0.0.1) describing that VM as ARM knows it, reachable at 169.254.169.254 inside the node's
namespace and its pods' (sim/fabric/imds_relay.py), where every Azure client on a VM looks for
it (instance documents, managed identity tokens).

Each node's IMDS serves the VM's system-assigned identity, also the App Service way
(`ImdsEmulator.app_service_environment()`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sim.imds import ImdsEmulator, InstanceMetadata
from sim.topology import Topology

if TYPE_CHECKING:
    from sim.fabric.imds_relay import ImdsRelay
    from sim.fabric.plan import FabricPlan, NodePlan

_LOCALHOST = "127.0.0.1"


def instance_metadata(topology: Topology, node: NodePlan) -> InstanceMetadata:
    """What `node`'s VM says about itself: its scale set (or standalone VM), group, region,
    pool tag, primary address and subnet."""
    subnet = ipaddress.IPv4Network(topology.node_subnet_cidr)
    vm = InstanceMetadata(
        computer_name=node.name,
        name=node.name,
        resource_group_name=topology.resource_group,
        subscription_id=topology.subscription_id,
        location=topology.location,
        private_ip_address=node.primary_ip,
        subnet_address=str(subnet.network_address),
        subnet_prefix=str(subnet.prefixlen),
    )
    for scale_set in topology.scale_sets:
        for instance_id in range(scale_set.instance_count):
            if scale_set.computer_name(instance_id) == node.name:
                return dataclasses.replace(
                    vm,
                    name=f"{scale_set.vmss_name}_{instance_id}",
                    vm_scale_set_name=scale_set.vmss_name,
                    tags={"aks-managed-poolName": scale_set.pool_name},
                )
    for pool in topology.vm_pools:
        if node.name in (pool.vm_name(i) for i in range(pool.vm_count)):
            return dataclasses.replace(vm, tags={"aks-managed-poolName": pool.pool_name})
    return vm


class NodeMetadata:
    """The IMDS emulators of the plan's nodes and the relay that puts them at 169.254.169.254."""

    def __init__(self, topology: Topology, plan: FabricPlan) -> None:
        self.plan = plan
        self.emulators = {
            node.name: ImdsEmulator(_LOCALHOST, instance=instance_metadata(topology, node))
            for node in plan.nodes
        }
        self._relay: ImdsRelay | None = None

    async def start(self) -> None:
        from sim.fabric.imds_relay import ImdsRelay, Target, routes_for_nodes

        for emulator in self.emulators.values():
            await emulator.start()
        targets = {
            name: Target(_LOCALHOST, int(emulator.url.rsplit(":", 1)[1]))
            for name, emulator in self.emulators.items()
        }
        self._relay = ImdsRelay(self.plan.router_netns, routes_for_nodes(self.plan.nodes, targets))
        await self._relay.start()

    async def stop(self) -> None:
        relay, self._relay = self._relay, None
        if relay is not None:
            await relay.stop()
        await _stop_all(self.emulators.values())


async def _stop_all(emulators: Iterable[ImdsEmulator]) -> None:
    for emulator in emulators:
        await emulator.stop()
