"""What the network needs to know from the ARM emulator's records: the nodes with their role,
primary and secondary private IPs and the public IPs Azure's edge translates those to, the
internal load balancers' rules, and the cluster's outbound public IP.

A node is a gateway node when its VM or scale set carries a gateway tag (`aks-managed-
gatewayIPPrefixSize`) or its NIC is a pre-created gateway NIC (`aks-managed-static-gateway-nic`),
as the controller resolves gateway pools; every other VM or instance is a regular node.

Reads the emulator's in-process store (`ArmEmulator.store`, or any `ResourceView`); call it on
the thread that serves the emulator. Nothing here writes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sim.arm import ids
from sim.arm.store import Resource, ResourceView
from sim.fabric.load_balancer import LbRule
from sim.fabric.plan import GATEWAY, REGULAR, NodeSpec
from sim.fabric.probes import ProbeSpec
from sim.topology import OUTBOUND_IP_TAG, OUTBOUND_IP_TAG_VALUE

GATEWAY_MACHINE_TAG = "aks-managed-gatewayIPPrefixSize"
GATEWAY_NIC_TAG = "aks-managed-static-gateway-nic"


@dataclass(frozen=True)
class ArmNode:
    name: str  # the VM's computer name, which is the Kubernetes node name
    primary_ip: str
    prefix_len: int
    secondary_ips: tuple[str, ...]
    backend_pools: frozenset[str]  # lower-cased IDs of the backend pools the node is in
    role: str = GATEWAY
    # (private IP, public IP) of each ipConfiguration that has a public IP, by private IP
    public_ips: tuple[tuple[str, str], ...] = ()

    @property
    def spec(self) -> NodeSpec:
        return NodeSpec(self.name, self.primary_ip, self.prefix_len, self.role)


@dataclass(frozen=True)
class ArmNetwork:
    nodes: tuple[ArmNode, ...]
    rules: tuple[LbRule, ...]
    outbound_ip: str | None = None

    def node_specs(self) -> tuple[NodeSpec, ...]:
        return tuple(n.spec for n in self.nodes)

    def secondary_routes(self) -> dict[str, str]:
        """Secondary IP -> primary IP of the node whose NIC holds it."""
        return {ip: n.primary_ip for n in self.nodes for ip in n.secondary_ips}

    def public_translations(self, primary_ips: Collection[str] | None = None) -> dict[str, str]:
        """Private IP -> the public IP Azure's edge gives it on the way to the internet; with
        `primary_ips`, only those of the nodes with one of these primary IPs."""
        return {
            private: public
            for n in self.nodes
            if primary_ips is None or n.primary_ip in primary_ips
            for private, public in n.public_ips
        }


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _ref(props: dict[str, Any], key: str) -> str:
    return str(_obj(props.get(key)).get("id", "")).lower()


def _public_address(view: ResourceView, props: dict[str, Any]) -> str | None:
    """The address of the ipConfiguration's public IP: a standalone public IP resource, or on a
    VMSS instance NIC the one its publicIPAddressConfiguration made (both referenced by
    `publicIPAddress`). None without one, or while the referenced record has no address."""
    ref = _ref(props, "publicIPAddress")
    record = view.get(ref) if ref else None
    address = record.properties.get("ipAddress") if record is not None else None
    return address if isinstance(address, str) else None


def _prefix_len(view: ResourceView, subnet_id: str) -> int:
    subnet = view.get(subnet_id) if subnet_id else None
    prefix = subnet.properties.get("addressPrefix") if subnet is not None else None
    if isinstance(prefix, str):
        return ipaddress.IPv4Network(prefix, strict=False).prefixlen
    return 24


def _tags(resource: Resource) -> dict[str, Any]:
    return _obj(resource.body.get("tags"))


def _node(view: ResourceView, machine: Resource, name: str, nic_ids: list[str]) -> ArmNode | None:
    primary: tuple[str, int] | None = None
    secondaries: list[str] = []
    public: list[tuple[str, str]] = []
    pools: set[str] = set()
    gateway = GATEWAY_MACHINE_TAG in _tags(machine)
    for nic_id in nic_ids:
        nic = view.get(nic_id)
        if nic is None:
            continue
        gateway = gateway or GATEWAY_NIC_TAG in _tags(nic)
        for config in _list(nic.properties.get("ipConfigurations")):
            props = _obj(config.get("properties"))
            address = props.get("privateIPAddress")
            if not isinstance(address, str):
                continue
            pools.update(
                str(p.get("id", "")).lower()
                for p in _list(props.get("loadBalancerBackendAddressPools"))
            )
            if props.get("primary") and primary is None:
                primary = (address, _prefix_len(view, _ref(props, "subnet")))
            else:
                secondaries.append(address)
            public_address = _public_address(view, props)
            if public_address is not None:
                public.append((address, public_address))
    if primary is None:
        return None
    return ArmNode(
        name,
        primary[0],
        primary[1],
        tuple(sorted(secondaries)),
        frozenset(pools),
        GATEWAY if gateway else REGULAR,
        tuple(sorted(public)),
    )


def _nic_ids(machine: Resource) -> list[str]:
    network = _obj(machine.properties.get("networkProfile"))
    refs = _list(network.get("networkInterfaces"))
    # Primary NIC first: its primary ipConfiguration is the node's primary IP.
    refs.sort(key=lambda r: not _obj(r.get("properties")).get("primary", len(refs) == 1))
    return [str(r["id"]) for r in refs if isinstance(r.get("id"), str)]


def read_nodes(view: ResourceView) -> tuple[ArmNode, ...]:
    """Every VMSS instance and standalone VM that has a primary private IP."""
    nodes = []
    for type_ in (ids.VMSS_VMS, ids.VIRTUAL_MACHINES):
        for machine in view.of_type(type_):
            os_profile = _obj(machine.properties.get("osProfile"))
            name = str(os_profile.get("computerName") or machine.body.get("name", ""))
            node = _node(view, machine, name, _nic_ids(machine))
            if node is not None:
                nodes.append(node)
    return tuple(sorted(nodes, key=lambda n: n.name))


def _probe(props: dict[str, Any]) -> ProbeSpec | None:
    protocol = str(props.get("protocol", "")).lower()
    port = props.get("port")
    if not isinstance(port, int):
        return None
    if protocol in ("http", "https"):
        # The emulated probe speaks plain HTTP either way; gateways serve HTTP
        # (agent/probe_server.py).
        return ProbeSpec("http", port, str(props.get("requestPath") or "/"))
    return ProbeSpec("tcp", port)


def read_rules(view: ResourceView, nodes: tuple[ArmNode, ...]) -> tuple[LbRule, ...]:
    """Every load balancing rule with a private frontend IP, across all load balancers."""
    rules = []
    for lb in view.of_type(ids.LOAD_BALANCERS):
        props = lb.properties
        frontends = {
            str(f.get("id", "")).lower(): _obj(f.get("properties")).get("privateIPAddress")
            for f in _list(props.get("frontendIPConfigurations"))
        }
        probes = {
            str(p.get("id", "")).lower(): _probe(_obj(p.get("properties")))
            for p in _list(props.get("probes"))
        }
        for rule in _list(props.get("loadBalancingRules")):
            rprops = _obj(rule.get("properties"))
            frontend_ip = frontends.get(_ref(rprops, "frontendIPConfiguration"))
            port = rprops.get("frontendPort")
            if not isinstance(frontend_ip, str) or not isinstance(port, int):
                continue
            pool_ids = {_ref(rprops, "backendAddressPool")} | {
                str(p.get("id", "")).lower() for p in _list(rprops.get("backendAddressPools"))
            }
            pool_ids.discard("")
            backends = tuple(n.primary_ip for n in nodes if n.backend_pools & pool_ids)
            rules.append(
                LbRule(
                    name=str(rule.get("name", "")),
                    frontend_ip=frontend_ip,
                    protocol=str(rprops.get("protocol", "udp")).lower(),
                    port=port,
                    probe=probes.get(_ref(rprops, "probe")),
                    backends=backends,
                    floating_ip=bool(rprops.get("enableFloatingIP", False)),
                )
            )
    return tuple(rules)


def read_outbound_ip(view: ResourceView) -> str | None:
    """The address of the public IP AKS tags as the cluster's outbound IP (the first by ID when
    there are several); None when there is none."""
    found = sorted(
        (r.id.lower(), r.properties.get("ipAddress"))
        for r in view.of_type(ids.PUBLIC_IP_ADDRESSES)
        if _tags(r).get(OUTBOUND_IP_TAG) == OUTBOUND_IP_TAG_VALUE
    )
    return next((str(address) for _, address in found if isinstance(address, str)), None)


def read_arm_network(view: ResourceView) -> ArmNetwork:
    nodes = read_nodes(view)
    return ArmNetwork(nodes, read_rules(view, nodes), read_outbound_ip(view))
