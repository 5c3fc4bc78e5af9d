"""What the topology seeds into ARM and Kubernetes: a regular pool next to the gateway pools, the
cluster's outbound public IP, names and provider IDs that agree across both, and a seed that only
adds what an older state lacks."""

from __future__ import annotations

from dataclasses import replace

from contracts import kube_names
from egressgw.dev.kube_seed import gateway_nodes, regular_nodes
from sim.arm import ids
from sim.arm.seed import seed_topology
from sim.arm.store import Store, Transaction
from sim.fabric.arm_view import read_arm_network
from sim.fabric.plan import GATEWAY, REGULAR
from sim.topology import OUTBOUND_IP_TAG, OUTBOUND_IP_TAG_VALUE, Topology

TOPO = Topology()


def _seed(store: Store, topo: Topology) -> None:
    tx = Transaction(store)
    seed_topology(tx, topo)
    tx.commit()


def _seeded(topo: Topology = TOPO) -> Store:
    store = Store()
    _seed(store, topo)
    return store


def test_the_regular_pool_is_a_tagged_user_scale_set_without_gateway_tags() -> None:
    store = _seeded()
    (pool,) = TOPO.user_pools
    vmss = store.get(TOPO.vmss_id(pool))
    assert vmss is not None
    tags = vmss.body["tags"]
    assert tags["aks-managed-poolName"] == "nodepool1"
    assert tags["aks-managed-creationSource"] == f"vmssclient-{pool.vmss_name}"
    assert "aks-managed-gatewayIPPrefixSize" not in tags
    assert vmss.body["sku"]["capacity"] == pool.instance_count == 2
    assert pool.vmss_name.startswith("aks-nodepool1-") and pool.vmss_name.endswith("-vmss")


def test_instance_names_and_provider_ids_agree_between_arm_and_kubernetes() -> None:
    store = _seeded()
    instances = {r.id.lower(): r for r in store.of_type(ids.VMSS_VMS)}
    machines = {r.id.lower(): r for r in store.of_type(ids.VIRTUAL_MACHINES)}
    ips = {n.name: n.primary_ip for n in read_arm_network(store).nodes}

    gateways, regulars = gateway_nodes(TOPO, ips), regular_nodes(TOPO, ips)

    assert [n["metadata"]["name"] for n in regulars] == [
        "aks-nodepool1-31415926-vmss000000",
        "aks-nodepool1-31415926-vmss000001",
    ]
    for node in gateways + regulars:
        name = node["metadata"]["name"]
        arm_id = node["spec"]["providerID"].removeprefix("azure://").lower()
        machine = instances.get(arm_id) or machines[arm_id]
        assert machine.properties["osProfile"]["computerName"] == name
        (address,) = [
            a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"
        ]
        assert address == ips[name]
    for node in regulars:
        labels = node["metadata"]["labels"]
        assert labels[kube_names.AKS_AGENT_POOL_LABEL] == "nodepool1"
        assert labels[kube_names.AKS_MODE_LABEL] == "user"
        assert kube_names.GATEWAY_NODE_LABEL not in labels
        # Until the node's CNI manager has chained the plugin (it removes the taint).
        assert node["spec"]["taints"] == [
            {"key": kube_names.CNI_NOT_READY_TAINT_KEY, "effect": "NoSchedule"}
        ]
    roles = {n.name: n.role for n in read_arm_network(store).nodes}
    assert {roles[n["metadata"]["name"]] for n in gateways} == {GATEWAY}
    assert {roles[n["metadata"]["name"]] for n in regulars} == {REGULAR}


def test_the_outbound_public_ip_is_tagged_as_aks_tags_it() -> None:
    store = _seeded()
    pip = store.get(TOPO.outbound_ip_id)
    assert pip is not None
    assert pip.body["tags"] == {OUTBOUND_IP_TAG: OUTBOUND_IP_TAG_VALUE}
    assert pip.properties["ipAddress"] == read_arm_network(store).outbound_ip
    assert read_arm_network(_seeded(replace(TOPO, outbound_ip_name=""))).outbound_ip is None


def test_seeding_an_older_state_adds_the_new_resources_and_changes_nothing_else() -> None:
    older = replace(TOPO, user_pools=(), outbound_ip_name="")
    store = _seeded(older)
    before = {r.id: r.body for r in store.of_type(ids.VMSS_VMS)}
    before_nodes = read_arm_network(store).nodes

    _seed(store, TOPO)
    _seed(store, TOPO)  # and again: nothing more

    after = read_arm_network(store)
    assert after.nodes[: len(before_nodes)] == before_nodes  # gateway addresses kept
    assert [n.role for n in after.nodes[len(before_nodes) :]] == [REGULAR, REGULAR]
    assert after.outbound_ip is not None
    assert {r.id: r.body for r in store.of_type(ids.VMSS_VMS) if r.id in before} == before
    assert len(list(store.of_type(ids.PUBLIC_IP_ADDRESSES))) == 1
    # A fresh state gives the gateway nodes the same addresses as before regular pools existed.
    assert read_arm_network(_seeded()).nodes[: len(before_nodes)] == before_nodes
