"""How the dev stack runs its CNI managers (egressgw/dev/cni_managers.py): where each one's socket
and records go, its command line, and which Nodes still wait for theirs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from contracts import kube_names
from egressgw.cni_manager_flags import add_cni_manager_parser, cni_manager_options
from egressgw.dev.cni_managers import (
    UNIX_PATH_MAX,
    manager_command,
    manager_placements,
    socket_path,
    tainted_nodes,
)

NODE = "aks-nodepool1-31415926-vmss000000"


def test_each_regular_node_gets_its_own_socket_and_records_beside_its_cni_dirs(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    first, second = manager_placements(["n0", "n1"], state / "nodes", state)

    assert first.node_name == "n0"
    node = (state / "nodes" / "n0" / "cni").resolve()
    assert (first.conf_dir, first.bin_dir) == (node / "net.d", node / "bin")
    assert first.socket_path == node / "manager.sock"
    assert first.plugin_state_dir == node / "attachments"
    assert first.socket_path != second.socket_path
    assert first.plugin_state_dir != second.plugin_state_dir


def test_a_state_dir_too_deep_for_a_unix_socket_gets_a_short_socket_of_its_own(
    tmp_path: Path,
) -> None:
    deep = tmp_path / ("d" * 60) / "state"
    other = tmp_path / ("e" * 60) / "state"

    chosen = [socket_path(deep / "nodes" / NODE, deep, index) for index in (0, 1)]
    elsewhere = socket_path(other / "nodes" / NODE, other, 0)

    assert all(len(str(path)) <= UNIX_PATH_MAX for path in chosen)
    assert chosen[0] != chosen[1] and elsewhere not in chosen
    assert chosen[0] == socket_path(deep / "nodes" / NODE, deep, 0)  # stable across starts


def test_the_command_is_one_the_manager_accepts(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "cni-manager.kubeconfig"
    kubeconfig.write_text("{}")
    (placement,) = manager_placements([NODE], tmp_path / "nodes", tmp_path)
    cidrs = ("10.244.0.0/16", "10.96.0.0/16", "10.224.0.0/12")

    command = manager_command(placement, kubeconfig, cidrs)

    assert command[1:4] == ["-m", "egressgw", "cni-manager"]
    parser = argparse.ArgumentParser()
    add_cni_manager_parser(parser.add_subparsers(dest="command"))
    options = cni_manager_options(parser.parse_args(command[3:]), {})
    settings = options.settings
    assert (settings.node_name, settings.namespace) == (NODE, "egressgw-system")
    assert settings.socket_path == placement.socket_path
    assert (settings.conf_dir, settings.bin_dir) == (placement.conf_dir, placement.bin_dir)
    assert settings.plugin_state_dir == placement.plugin_state_dir
    assert settings.cluster_cidrs == cidrs
    assert options.kubeconfig == kubeconfig.resolve()


def test_nodes_wait_for_their_manager_while_they_carry_the_taint() -> None:
    def node(name: str, *keys: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name},
            "spec": {"taints": [{"key": key, "effect": "NoSchedule"} for key in keys]},
        }

    nodes: list[dict[str, Any]] = [
        node("waiting", kube_names.CNI_NOT_READY_TAINT_KEY, "example.com/other"),
        node("installed", "example.com/other"),
        {"metadata": {"name": "bare"}, "spec": {}},
        {"metadata": {"name": "no-spec"}},
    ]

    assert tainted_nodes(nodes) == {"waiting"}
