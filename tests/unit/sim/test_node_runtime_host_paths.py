"""A node's paths kept elsewhere on the machine (sim/node_runtime/host_paths.py): what hostPath
volumes resolve to and how the CNI plugins are started."""

from __future__ import annotations

import pytest

from sim.node_runtime.host_paths import HostPathError, parse_host_path, plugin_argv, resolve

MAPS = [
    parse_host_path("/etc/cni/net.d=/state/n1/cni/net.d"),
    parse_host_path("/var/run/netns=/state/n1/netns"),
    parse_host_path("/var/run/egressgw/=/state/n1/run"),
]


def test_paths_under_a_mapping_resolve_into_its_directory() -> None:
    assert resolve(MAPS, "/etc/cni/net.d") == "/state/n1/cni/net.d"
    assert resolve(MAPS, "/etc/cni/net.d/01-egressgateway.conflist") == (
        "/state/n1/cni/net.d/01-egressgateway.conflist"
    )
    assert resolve(MAPS, "/var/run/egressgw/cni-manager.sock") == "/state/n1/run/cni-manager.sock"


def test_other_paths_stay_the_machines() -> None:
    assert resolve(MAPS, "/etc/cni") == "/etc/cni"
    assert resolve(MAPS, "/etc/cni/net.d2") == "/etc/cni/net.d2"
    assert resolve(MAPS, "/run/xtables.lock") == "/run/xtables.lock"


def test_the_longest_mapping_wins() -> None:
    maps = [parse_host_path("/var=/a"), parse_host_path("/var/run=/b")]
    assert resolve(maps, "/var/run/x") == "/b/x"
    assert resolve(maps, "/var/lib") == "/a/lib"


@pytest.mark.parametrize("text", ["/etc/cni", "etc=/x", "/etc=x", "/=/x"])
def test_malformed_mappings_are_refused(text: str) -> None:
    with pytest.raises(HostPathError):
        parse_host_path(text)


def test_plugins_run_with_the_mapped_directories_but_not_the_netns_dir() -> None:
    argv = plugin_argv(MAPS, ["nsenter", "--net=/var/run/netns/node", "/bin/plugin"])
    assert argv[:4] == ["unshare", "--mount", "--propagation", "private"]
    binds = argv[argv.index("sh", 5) + 1 : argv.index("nsenter")]
    # The plugin is handed namespaces by their machine paths (CNI_NETNS, the node's own).
    assert binds == [
        "/state/n1/cni/net.d",
        "/etc/cni/net.d",
        "/state/n1/run",
        "/var/run/egressgw",
    ]
    assert argv[-3:] == ["nsenter", "--net=/var/run/netns/node", "/bin/plugin"]


def test_without_mappings_the_plugin_runs_as_it_is() -> None:
    assert plugin_argv([], ["/bin/plugin"]) == ["/bin/plugin"]
    netns_only = [parse_host_path("/var/run/netns=/state/n1/netns")]
    assert plugin_argv(netns_only, ["/bin/plugin"]) == ["/bin/plugin"]
