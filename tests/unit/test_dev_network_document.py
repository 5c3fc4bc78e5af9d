"""network.json: what it tells a node runtime about each node, and the same fabric plan read back
from it (also from the document of an older stack)."""

from __future__ import annotations

from pathlib import Path

from egressgw.dev.node_network import fabric_plan, network_document, node_cni
from sim.fabric.network import Fabric
from sim.fabric.plan import GATEWAY, REGULAR, NodeSpec, plan_fabric

SPECS = [
    NodeSpec("aks-gwpool-12345678-vmss000000", "10.224.0.4", 16),
    NodeSpec("aks-nodepool1-31415926-vmss000000", "10.224.0.8", 16, REGULAR),
]


def test_each_node_has_its_namespace_role_pod_cidr_and_cni_directories(tmp_path: Path) -> None:
    plan = plan_fabric("egw", SPECS, outbound_ip="20.240.128.1")
    fabric = Fabric(plan, tmp_path / "network")

    document = network_document(fabric, "", {}, tmp_path / "nodes")

    assert document["outbound_ip"] == "20.240.128.1"
    assert (document["pod_cidr"], document["client_cidr"]) == ("10.244.0.0/16", "10.244.0.0/20")
    gateway, regular = document["nodes"]
    assert (gateway["role"], regular["role"]) == (GATEWAY, REGULAR)
    assert gateway["gateway_netns"] == "egw-gwpool-0-gw" and "gateway_netns" not in regular
    assert regular["netns"] == "egw-nodepool1-0"
    assert regular["pod_cidr"] == "10.244.17.0/24"
    cni_root = tmp_path / "nodes" / "aks-nodepool1-31415926-vmss000000" / "cni"
    assert regular["cni"] == {
        "conf_dir": str(cni_root / "net.d"),
        "bin_dir": str(cni_root / "bin"),
        "data_dir": str(cni_root / "ipam"),
        "conflist": str(cni_root / "net.d" / "10-pods.conflist"),
    }
    assert node_cni(tmp_path / "nodes", regular["name"]).conf_dir == cni_root / "net.d"
    assert fabric_plan(document) == plan


def test_an_older_document_still_gives_the_plan_that_tears_its_network_down(
    tmp_path: Path,
) -> None:
    plan = plan_fabric("egw", SPECS[:1])
    document = network_document(Fabric(plan, tmp_path), "", {})
    for key in ("client_cidr", "client_gateway_ip", "outbound_ip"):
        del document[key]
    for node in document["nodes"]:
        del node["role"], node["pod_cidr"]

    assert fabric_plan(document) == plan
