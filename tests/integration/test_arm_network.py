"""Microsoft.Network through the real sync azure-mgmt-network client against the ARM emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network.models import BackendAddressPool, NetworkInterfaceIPConfiguration, Subnet

from sim.arm.server import ArmEmulator
from sim.topology import Topology

NetFactory = Callable[..., NetworkManagementClient]


def _lb_body(topo: Topology, subnet_id: str, lb: str = "lb1", **extra: Any) -> dict[str, Any]:
    lb_id = f"{topo.resource_group_id}/providers/Microsoft.Network/loadBalancers/{lb}"
    return {
        "location": topo.location,
        "sku": {"name": "Standard", "tier": "Regional"},
        "properties": {
            "frontendIPConfigurations": [
                {"name": "fe", "properties": {"subnet": {"id": subnet_id}}}
            ],
            "backendAddressPools": [{"name": "pool"}],
            "probes": [
                {
                    "name": "probe",
                    "properties": {"protocol": "Http", "port": 8082, "requestPath": "/gw/x"},
                }
            ],
            "loadBalancingRules": [
                {
                    "name": "rule",
                    "properties": {
                        "protocol": "Udp",
                        "frontendPort": 6000,
                        "backendPort": 6000,
                        "enableFloatingIP": True,
                        "frontendIPConfiguration": {"id": f"{lb_id}/frontendIPConfigurations/fe"},
                        "backendAddressPool": {"id": f"{lb_id}/backendAddressPools/pool"},
                        "probe": {"id": f"{lb_id}/probes/probe"},
                    },
                }
            ],
            **extra,
        },
    }


@pytest.fixture
def net(network_client: NetFactory) -> NetworkManagementClient:
    return network_client()


@pytest.fixture
def gateway_subnet_id(net: NetworkManagementClient, arm_topology: Topology) -> str:
    t = arm_topology
    return str(net.subnets.get(t.resource_group, t.vnet_name, t.gateway_subnet_name).id)


def test_seeded_vnet_lists_its_subnets(
    net: NetworkManagementClient, arm_topology: Topology
) -> None:
    t = arm_topology
    vnet = net.virtual_networks.get(t.resource_group, t.vnet_name)
    assert vnet.address_space.address_prefixes == [t.vnet_cidr]
    assert sorted(s.name for s in vnet.subnets) == sorted(
        [t.node_subnet_name, t.gateway_subnet_name]
    )
    names = [v.name for v in net.virtual_networks.list(t.resource_group)]
    assert names == [t.vnet_name]


def test_load_balancer_create_allocates_frontend_and_keeps_it(
    net: NetworkManagementClient, arm_topology: Topology, gateway_subnet_id: str
) -> None:
    t = arm_topology
    lb = net.load_balancers.begin_create_or_update(
        t.resource_group, "lb1", _lb_body(t, gateway_subnet_id)
    ).result()
    front = lb.frontend_ip_configurations[0]
    # The first four addresses of 10.225.0.0/24 are Azure's.
    assert front.private_ip_address == "10.225.0.4"
    assert front.private_ip_allocation_method == "Dynamic"
    assert lb.provisioning_state == "Succeeded"
    assert lb.etag
    # Replacing the LB (computed fields included, as a client echoing a GET does) keeps the address.
    again = net.load_balancers.begin_create_or_update(t.resource_group, "lb1", lb).result()
    assert again.frontend_ip_configurations[0].private_ip_address == "10.225.0.4"
    assert again.etag != lb.etag
    # A second LB on the same subnet gets the next address.
    other = net.load_balancers.begin_create_or_update(
        t.resource_group, "lb2", _lb_body(t, gateway_subnet_id, "lb2")
    ).result()
    assert other.frontend_ip_configurations[0].private_ip_address == "10.225.0.5"
    subnet = net.subnets.get(t.resource_group, t.vnet_name, t.gateway_subnet_name)
    assert len(subnet.ip_configurations) == 2
    # Deleting releases the address for the next one.
    net.load_balancers.begin_delete(t.resource_group, "lb1").result()
    with pytest.raises(ResourceNotFoundError):
        net.load_balancers.get(t.resource_group, "lb1")
    third = net.load_balancers.begin_create_or_update(
        t.resource_group, "lb3", _lb_body(t, gateway_subnet_id, "lb3")
    ).result()
    assert third.frontend_ip_configurations[0].private_ip_address == "10.225.0.4"


def test_static_frontend_is_honoured_or_refused_when_taken(
    net: NetworkManagementClient, arm_topology: Topology, gateway_subnet_id: str
) -> None:
    t = arm_topology
    body = _lb_body(t, gateway_subnet_id)
    fe = body["properties"]["frontendIPConfigurations"][0]["properties"]
    fe.update(privateIPAllocationMethod="Static", privateIPAddress="10.225.0.50")
    lb = net.load_balancers.begin_create_or_update(t.resource_group, "lb1", body).result()
    assert lb.frontend_ip_configurations[0].private_ip_address == "10.225.0.50"
    clash = _lb_body(t, gateway_subnet_id, "lb2")
    clash["properties"]["frontendIPConfigurations"][0]["properties"].update(
        privateIPAllocationMethod="Static", privateIPAddress="10.225.0.50"
    )
    with pytest.raises(HttpResponseError) as err:
        net.load_balancers.begin_create_or_update(t.resource_group, "lb2", clash).result()
    assert err.value.status_code == 400
    assert err.value.error.code == "PrivateIPAddressInUse"
    reserved = _lb_body(t, gateway_subnet_id, "lb3")
    reserved["properties"]["frontendIPConfigurations"][0]["properties"].update(
        privateIPAllocationMethod="Static", privateIPAddress="10.225.0.2"
    )
    with pytest.raises(HttpResponseError) as err:
        net.load_balancers.begin_create_or_update(t.resource_group, "lb3", reserved).result()
    assert err.value.error.code == "PrivateIPAddressInReservedRange"


def test_load_balancer_references_and_duplicate_rules_are_rejected(
    net: NetworkManagementClient, arm_topology: Topology, gateway_subnet_id: str
) -> None:
    t = arm_topology
    body = _lb_body(t, gateway_subnet_id)
    rule = body["properties"]["loadBalancingRules"][0]["properties"]
    missing = rule["probe"]["id"].replace("/probes/probe", "/probes/nope")
    rule["probe"]["id"] = missing
    with pytest.raises(HttpResponseError) as err:
        net.load_balancers.begin_create_or_update(t.resource_group, "lb1", body).result()
    assert err.value.status_code == 400
    assert err.value.error.code == "InvalidResourceReference"
    assert missing in err.value.error.message
    body = _lb_body(t, gateway_subnet_id)
    rules = body["properties"]["loadBalancingRules"]
    rules.append({**rules[0], "name": "rule2"})
    with pytest.raises(HttpResponseError) as err:
        net.load_balancers.begin_create_or_update(t.resource_group, "lb1", body).result()
    assert err.value.status_code == 400
    with pytest.raises(ResourceNotFoundError):
        net.load_balancers.get(t.resource_group, "lb1")


def test_stale_if_match_is_refused_with_412(
    net: NetworkManagementClient,
    arm_topology: Topology,
    gateway_subnet_id: str,
    arm_emulator: ArmEmulator,
) -> None:
    t = arm_topology
    lb = net.load_balancers.begin_create_or_update(
        t.resource_group, "lb1", _lb_body(t, gateway_subnet_id)
    ).result()
    updated = net.load_balancers.begin_create_or_update(
        t.resource_group, "lb1", lb, headers={"If-Match": lb.etag}
    ).result()
    with pytest.raises(HttpResponseError) as err:
        net.load_balancers.begin_create_or_update(
            t.resource_group, "lb1", lb, headers={"If-Match": lb.etag}
        ).result()
    assert err.value.status_code == 412
    assert err.value.error.code == "PreconditionFailed"
    assert net.load_balancers.get(t.resource_group, "lb1").etag == updated.etag
    puts = [e for e in arm_emulator.request_log.entries if e.method == "PUT"]
    assert [(e.status, e.if_match) for e in puts] == [
        (201, None),
        (200, lb.etag),
        (412, lb.etag),
    ]


def test_missing_resources_answer_arm_404_bodies(
    net: NetworkManagementClient, arm_topology: Topology
) -> None:
    t = arm_topology
    with pytest.raises(ResourceNotFoundError) as err:
        net.load_balancers.get(t.resource_group, "absent")
    assert err.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as err:
        net.load_balancers.get("no-such-rg", "absent")
    assert err.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(ResourceNotFoundError) as err:
        net.subnets.get(t.resource_group, "no-vnet", "s")
    assert err.value.error.code == "ParentResourceNotFound"


def test_resource_ids_are_case_insensitive_and_keep_creator_casing(
    net: NetworkManagementClient, arm_topology: Topology, gateway_subnet_id: str
) -> None:
    t = arm_topology
    net.load_balancers.begin_create_or_update(
        t.resource_group, "MyLB", _lb_body(t, gateway_subnet_id, "MyLB")
    ).result()
    got = net.load_balancers.get(t.resource_group.upper(), "mylb")
    assert got.name == "MyLB"
    assert got.id.endswith("/loadBalancers/MyLB")


def test_public_ip_prefix_allocation_and_delete_refused_while_in_use(
    net: NetworkManagementClient, arm_topology: Topology
) -> None:
    t = arm_topology
    rg = t.resource_group
    body = {"location": t.location, "sku": {"name": "Standard"}, "properties": {"prefixLength": 31}}
    p1 = net.public_ip_prefixes.begin_create_or_update(rg, "p1", body).result()
    p2 = net.public_ip_prefixes.begin_create_or_update(rg, "p2", body).result()
    assert p1.ip_prefix.endswith("/31") and p2.ip_prefix.endswith("/31")
    assert p1.ip_prefix != p2.ip_prefix
    addresses = []
    for name in ("a", "b"):
        pip = net.public_ip_addresses.begin_create_or_update(
            rg,
            name,
            {
                "location": t.location,
                "sku": {"name": "Standard"},
                "properties": {
                    "publicIPAllocationMethod": "Static",
                    "publicIPPrefix": {"id": p1.id},
                },
            },
        ).result()
        addresses.append(pip.ip_address)
    base = p1.ip_prefix.split("/")[0]
    assert addresses[0] == base and addresses[1] != base
    with pytest.raises(HttpResponseError) as err:
        net.public_ip_addresses.begin_create_or_update(
            rg,
            "c",
            {"location": t.location, "properties": {"publicIPPrefix": {"id": p1.id}}},
        ).result()
    assert err.value.error.code == "PublicIpPrefixOutOfIpAddresses"
    refreshed = net.public_ip_prefixes.get(rg, "p1")
    assert sorted(a.id.rsplit("/", 1)[1] for a in refreshed.public_ip_addresses) == ["a", "b"]
    with pytest.raises(HttpResponseError) as err:
        net.public_ip_prefixes.begin_delete(rg, "p1").result()
    assert err.value.status_code == 400
    assert err.value.error.code == "InUsePublicIpPrefixCannotBeDeleted"
    for name in ("a", "b"):
        net.public_ip_addresses.begin_delete(rg, name).result()
    net.public_ip_prefixes.begin_delete(rg, "p1").result()
    assert [p.name for p in net.public_ip_prefixes.list(rg)] == ["p2"]
    with pytest.raises(HttpResponseError) as err:
        net.public_ip_prefixes.begin_create_or_update(
            rg, "bad", {"location": t.location, "properties": {"prefixLength": 24}}
        ).result()
    assert err.value.status_code == 400


def test_nic_joins_backend_pool_and_gets_secondary_ip(
    net: NetworkManagementClient, arm_topology: Topology, gateway_subnet_id: str
) -> None:
    t = arm_topology
    lb = net.load_balancers.begin_create_or_update(
        t.resource_group, "lb1", _lb_body(t, gateway_subnet_id)
    ).result()
    pool_id = lb.backend_address_pools[0].id
    nic = net.network_interfaces.get(t.resource_group, t.vm_pools[0].nic_name(0))
    assert nic.tags["aks-managed-static-gateway-nic"] == "true"
    assert nic.virtual_machine is not None
    primary = nic.ip_configurations[0]
    node_subnet = primary.subnet.id
    nic.ip_configurations[0].load_balancer_backend_address_pools = [BackendAddressPool(id=pool_id)]
    nic.ip_configurations.append(
        NetworkInterfaceIPConfiguration(
            name="egressgateway-1",
            primary=False,
            private_ip_address_version="IPv4",
            subnet=Subnet(id=node_subnet),
        )
    )
    updated = net.network_interfaces.begin_create_or_update(
        t.resource_group, str(nic.name), nic
    ).result()
    by_name = {c.name: c for c in updated.ip_configurations}
    assert by_name["ipconfig1"].private_ip_address == primary.private_ip_address
    secondary = by_name["egressgateway-1"].private_ip_address
    assert secondary and secondary != primary.private_ip_address
    pool = net.load_balancers.get(t.resource_group, "lb1").backend_address_pools[0]
    assert [c.id for c in pool.backend_ip_configurations] == [by_name["ipconfig1"].id]
    updated.ip_configurations[1].load_balancer_backend_address_pools = [
        BackendAddressPool(id=pool_id.replace("/pool", "/nopool"))
    ]
    with pytest.raises(HttpResponseError) as err:
        net.network_interfaces.begin_create_or_update(
            t.resource_group, str(nic.name), updated
        ).result()
    assert err.value.error.code == "InvalidResourceReference"


def test_subnet_in_use_cannot_be_deleted(
    net: NetworkManagementClient, arm_topology: Topology
) -> None:
    t = arm_topology
    with pytest.raises(HttpResponseError) as err:
        net.subnets.begin_delete(t.resource_group, t.vnet_name, t.node_subnet_name).result()
    assert err.value.status_code == 409
    assert err.value.error.code == "InUseSubnetCannotBeDeleted"
    extra = net.subnets.begin_create_or_update(
        t.resource_group, t.vnet_name, "extra", {"properties": {"addressPrefix": "10.226.0.0/24"}}
    ).result()
    assert extra.address_prefix == "10.226.0.0/24"
    net.subnets.begin_delete(t.resource_group, t.vnet_name, "extra").result()
    names = [s.name for s in net.subnets.list(t.resource_group, t.vnet_name)]
    assert "extra" not in names


def test_tags_patch_and_paging(
    network_client: NetFactory, arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    net = network_client()
    t = arm_topology
    for i in range(7):
        net.public_ip_prefixes.begin_create_or_update(
            t.resource_group,
            f"p{i}",
            {"location": t.location, "properties": {"prefixLength": 30}},
        ).result()
    tagged = net.public_ip_prefixes.update_tags(t.resource_group, "p3", {"tags": {"k": "v"}})
    assert tagged.tags == {"k": "v"}
    assert tagged.prefix_length == 30
    arm_emulator.page_size = 3
    arm_emulator.request_log.clear()
    prefixes = list(net.public_ip_prefixes.list(t.resource_group))
    assert len(prefixes) == 7
    assert len({p.ip_prefix for p in prefixes}) == 7
    # Seven items in pages of three: the SDK followed nextLink twice.
    assert arm_emulator.request_log.reads() == 3


def test_load_balancer_and_nic_children_are_readable_on_their_own(
    net: NetworkManagementClient, arm_topology: Topology, gateway_subnet_id: str
) -> None:
    t = arm_topology
    net.load_balancers.begin_create_or_update(
        t.resource_group, "lb1", _lb_body(t, gateway_subnet_id)
    ).result()
    probes = list(net.load_balancer_probes.list(t.resource_group, "lb1"))
    assert [(p.name, p.port) for p in probes] == [("probe", 8082)]
    front = net.load_balancer_frontend_ip_configurations.get(t.resource_group, "lb1", "fe")
    assert front.private_ip_address == "10.225.0.4"
    assert [r.id.rsplit("/", 1)[1] for r in front.load_balancing_rules] == ["rule"]
    with pytest.raises(ResourceNotFoundError):
        net.load_balancer_backend_address_pools.get(t.resource_group, "lb1", "nope")
    configs = list(
        net.network_interface_ip_configurations.list(t.resource_group, t.vm_pools[0].nic_name(1))
    )
    assert [c.name for c in configs] == ["ipconfig1"]
    assert configs[0].primary is True


def test_small_subnet_fills_up_and_frees_on_delete(
    net: NetworkManagementClient, arm_topology: Topology
) -> None:
    t = arm_topology
    subnet = net.subnets.begin_create_or_update(
        t.resource_group, t.vnet_name, "tiny", {"properties": {"addressPrefix": "10.227.0.0/29"}}
    ).result()

    def nic(name: str) -> dict[str, Any]:
        config = {"name": "c", "properties": {"subnet": {"id": subnet.id}}}
        return {"location": t.location, "properties": {"ipConfigurations": [config]}}

    # A /29 has eight addresses; Azure keeps five of them (.0-.3 and the last).
    addresses = [
        net.network_interfaces.begin_create_or_update(t.resource_group, f"n{i}", nic(f"n{i}"))
        .result()
        .ip_configurations[0]
        .private_ip_address
        for i in range(3)
    ]
    assert addresses == ["10.227.0.4", "10.227.0.5", "10.227.0.6"]
    with pytest.raises(HttpResponseError) as err:
        net.network_interfaces.begin_create_or_update(t.resource_group, "n3", nic("n3")).result()
    assert err.value.error.code == "SubnetIsFull"
    net.network_interfaces.begin_delete(t.resource_group, "n1").result()
    again = net.network_interfaces.begin_create_or_update(
        t.resource_group, "n3", nic("n3")
    ).result()
    assert again.ip_configurations[0].private_ip_address == "10.227.0.5"
