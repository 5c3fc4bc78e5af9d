"""Azure's edge in the fabric, its pure parts: which public IP each private IP leaves with, read
from the ARM emulator's records as the controller writes them (a VMSS model's
publicIPAddressConfiguration from a prefix, a VM pool NIC's public IP resource), and the nftables
table that translates them."""

from __future__ import annotations

import ipaddress
import json
import time
from typing import Any

from sim.arm import ids, lro
from sim.arm.api import ArmApi, ArmRequest
from sim.arm.seed import seed_topology
from sim.arm.store import Store, Transaction
from sim.fabric.arm_view import read_arm_network
from sim.fabric.edge import changed_sources, render_edge_nat
from sim.topology import Topology

TOPO = Topology()
RG = TOPO.resource_group_id
API_VERSION = {"api-version": "2024-07-01"}
PREFIX_ID = f"{RG}/providers/Microsoft.Network/publicIPPrefixes/egressgateway-prefix"


# --- the nftables table ------------------------------------------------------------------------


def test_edge_table_maps_each_private_ip_to_its_public_ip_on_the_internet_link() -> None:
    text = render_edge_nat("egw-inet", {"10.224.0.9": "20.240.0.1", "10.224.0.10": "20.240.0.0"})

    assert text.startswith("table ip fabric_edge {}\ndelete table ip fabric_edge\n")
    assert "type nat hook postrouting priority srcnat - 1;" in text
    (rule,) = [line.strip() for line in text.splitlines() if "snat" in line]
    assert rule == (
        'oifname "egw-inet" snat ip to ip saddr map '
        "{ 10.224.0.10 : 20.240.0.0, 10.224.0.9 : 20.240.0.1 }"
    )


def test_edge_table_without_translations_has_no_rule() -> None:
    text = render_edge_nat("egw-inet", {})
    assert "postrouting" in text and "snat" not in text


def test_flows_are_forgotten_for_added_changed_and_removed_translations() -> None:
    before = {"10.0.0.1": "20.0.0.1", "10.0.0.2": "20.0.0.2", "10.0.0.3": "20.0.0.3"}
    after = {"10.0.0.1": "20.0.0.1", "10.0.0.2": "20.0.0.9", "10.0.0.4": "20.0.0.4"}
    assert changed_sources(before, after) == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
    assert changed_sources(after, after) == []


# --- reading ARM -------------------------------------------------------------------------------


def _request(api: ArmApi, method: str, resource_id: str, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    answer = api.handle(ArmRequest(method, ids.parse_path(resource_id), API_VERSION, {}, raw), None)
    assert answer.status < 300, answer.body
    # Let the operation finish, so the next write to the same resource is not a conflict.
    lro.settle(api.store, time.time() + 3600)


def _arm() -> tuple[Store, ArmApi]:
    store = Store()
    tx = Transaction(store)
    seed_topology(tx, TOPO)
    tx.commit()
    return store, ArmApi(store, lambda: "https://127.0.0.1", lambda: None, 100)


def _prefix(api: ArmApi, store: Store, length: int) -> ipaddress.IPv4Network:
    body = {"location": TOPO.location, "properties": {"prefixLength": length}}
    _request(api, "PUT", PREFIX_ID, body)
    record = store.get(PREFIX_ID)
    assert record is not None
    return ipaddress.IPv4Network(record.properties["ipPrefix"])


def _with_secondary(configs: list[dict[str, Any]], extra: dict[str, Any]) -> list[dict[str, Any]]:
    subnet = configs[0]["properties"]["subnet"]
    secondary = {"name": "egressgateway-uid", "properties": {"subnet": subnet, **extra}}
    return [configs[0], secondary]


def test_vmss_instances_secondary_ips_translate_to_distinct_addresses_of_the_prefix() -> None:
    """What the controller does in public mode on a VMSS: the model's new ipConfig asks for a
    public IP from the prefix, then every instance gets the model."""
    store, api = _arm()
    prefix = _prefix(api, store, 31)
    pool = TOPO.vmss_pools[0]
    vmss_id = TOPO.vmss_id(pool)
    vmss = store.get(vmss_id)
    assert vmss is not None
    nic_configs = api.render(vmss)["properties"]["virtualMachineProfile"]["networkProfile"][
        "networkInterfaceConfigurations"
    ]
    nic_props = nic_configs[0]["properties"]
    nic_props["ipConfigurations"] = _with_secondary(
        nic_props["ipConfigurations"],
        {
            "publicIPAddressConfiguration": {
                "name": "egressgateway-uid",
                "properties": {"publicIPPrefix": {"id": PREFIX_ID}},
            }
        },
    )
    profile = {"networkProfile": {"networkInterfaceConfigurations": nic_configs}}
    body = {"location": TOPO.location, "properties": {"virtualMachineProfile": profile}}
    _request(api, "PUT", vmss_id, body)
    # Before the instances get the model, nothing has a public IP.
    assert read_arm_network(store).public_translations() == {}

    instance_ids = [str(i) for i in range(pool.instance_count)]
    _request(api, "POST", f"{vmss_id}/manualupgrade", {"instanceIds": instance_ids})
    network = read_arm_network(store)

    names = {pool.computer_name(i) for i in range(pool.instance_count)}
    gateways = [n for n in network.nodes if n.name in names]
    translations = network.public_translations()
    assert set(translations) == {ip for n in gateways for ip in n.secondary_ips}
    assert all(ipaddress.IPv4Address(ip) in prefix for ip in translations.values())
    assert len(set(translations.values())) == 2  # a /31: one address each
    # Deterministic: the same model applied again keeps every address.
    _request(api, "POST", f"{vmss_id}/manualupgrade", {"instanceIds": instance_ids})
    assert read_arm_network(store).public_translations() == translations
    # Only the nodes asked about.
    first = gateways[0]
    assert set(network.public_translations({first.primary_ip})) == set(first.secondary_ips)


def test_vm_pool_nic_translates_only_while_its_ipconfig_has_the_public_ip() -> None:
    """A VM pool NIC: the controller creates a public IP from the prefix and attaches it to the
    secondary ipConfig; a private-mode ipConfig has none."""
    store, api = _arm()
    prefix = _prefix(api, store, 30)
    pip_id = f"{RG}/providers/Microsoft.Network/publicIPAddresses/egressgateway-prefix-1"
    _request(
        api,
        "PUT",
        pip_id,
        {
            "location": TOPO.location,
            "sku": {"name": "Standard", "tier": "Regional"},
            "properties": {
                "publicIPAllocationMethod": "Static",
                "publicIPPrefix": {"id": PREFIX_ID},
            },
        },
    )
    pip = store.get(pip_id)
    assert pip is not None and ipaddress.IPv4Address(pip.properties["ipAddress"]) in prefix
    nic_id = f"{RG}/providers/Microsoft.Network/networkInterfaces/{TOPO.vm_pools[0].nic_name(0)}"
    nic = store.get(nic_id)
    assert nic is not None
    configs = api.render(nic)["properties"]["ipConfigurations"]

    def put_nic(extra: dict[str, Any]) -> dict[str, str]:
        body = {
            "location": TOPO.location,
            "properties": {"ipConfigurations": _with_secondary(configs, extra)},
        }
        _request(api, "PUT", nic_id, body)
        return read_arm_network(store).public_translations()

    public = put_nic({"publicIPAddress": {"id": pip_id}})
    (node,) = [n for n in read_arm_network(store).nodes if n.name == TOPO.vm_pools[0].vm_name(0)]
    assert public == {node.secondary_ips[0]: pip.properties["ipAddress"]}

    assert put_nic({}) == {}  # the same ipConfig in private mode
