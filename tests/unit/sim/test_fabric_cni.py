"""A node's CNI configuration: the conflist it renders and what installing it leaves on disk."""

from __future__ import annotations

import json
from pathlib import Path

from sim.fabric.cni import (
    CONFLIST_NAME,
    PLUGINS,
    NodeCni,
    clear_leases,
    install_node_cni,
    render_conflist,
)


def test_conflist_is_a_bridge_with_host_local_over_the_pod_cidr_then_loopback() -> None:
    conflist = render_conflist("10.244.20.0/24", Path("/state/nodes/n1/cni/ipam"))

    assert conflist["cniVersion"] == "1.0.0"
    bridge, loopback = conflist["plugins"]
    assert loopback == {"type": "loopback"}
    assert bridge["type"] == "bridge"
    assert (bridge["bridge"], bridge["isGateway"], bridge["ipMasq"]) == ("cni0", True, False)
    assert bridge["ipam"] == {
        "type": "host-local",
        "ranges": [[{"subnet": "10.244.20.0/24"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "/state/nodes/n1/cni/ipam",
    }


def _plugins(tmp_path: Path, name: str) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    for plugin in PLUGINS:
        (directory / plugin).write_text("#!/bin/sh\n")
    return directory


def test_install_writes_the_conflist_and_links_the_plugins(tmp_path: Path) -> None:
    cni = NodeCni.under(tmp_path / "nodes" / "n1" / "cni")
    plugins = _plugins(tmp_path, "bin-v1")

    written = install_node_cni(cni, "10.244.20.0/24", plugins)

    assert written == cni.conf_dir / CONFLIST_NAME
    assert json.loads(written.read_text()) == render_conflist("10.244.20.0/24", cni.data_dir)
    assert {p.name: p.readlink() for p in cni.bin_dir.iterdir()} == {
        plugin: plugins / plugin for plugin in PLUGINS
    }
    assert cni.data_dir.is_dir()


def test_installing_again_updates_what_changed_and_keeps_other_files(tmp_path: Path) -> None:
    cni = NodeCni.under(tmp_path / "cni")
    install_node_cni(cni, "10.244.20.0/24", _plugins(tmp_path, "bin-v1"))
    # What another plugin's installer adds (the egress CNI and its manager's conflist).
    (cni.bin_dir / "kube-egress-cni").write_text("#!/bin/sh\n")
    (cni.conf_dir / "01-egressgateway.conflist").write_text("{}")
    newer = _plugins(tmp_path, "bin-v2")

    install_node_cni(cni, "10.244.21.0/24", newer)

    assert json.loads(cni.conflist.read_text())["plugins"][0]["ipam"]["ranges"] == [
        [{"subnet": "10.244.21.0/24"}]
    ]
    assert (cni.bin_dir / "bridge").readlink() == newer / "bridge"
    assert sorted(p.name for p in cni.conf_dir.iterdir()) == [
        "01-egressgateway.conflist",
        CONFLIST_NAME,
    ]
    assert (cni.bin_dir / "kube-egress-cni").is_file()


def test_clearing_leases_forgets_handed_out_addresses(tmp_path: Path) -> None:
    cni = NodeCni.under(tmp_path / "cni")
    install_node_cni(cni, "10.244.20.0/24", _plugins(tmp_path, "bin"))
    (cni.data_dir / "pods").mkdir()
    (cni.data_dir / "pods" / "10.244.20.2").write_text("cid\neth0")

    clear_leases([cni, NodeCni.under(tmp_path / "never-installed")])

    assert not cni.data_dir.exists()
    assert cni.conflist.exists()
