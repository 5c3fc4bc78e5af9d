"""A node's CNI configuration: the network its pods join, and where the plugins are.

Each node has its own conf dir, bin dir and host-local data dir (the dev stack keeps them in
`DIR/nodes/<node>/cni/`, egressgw/dev/node_network.py). The chain is the reference plugins':

- `bridge`: a bridge `cni0` in the node's namespace holding the first host of the node's pod CIDR
  (`isGateway`), one veth per pod. No masquerade (`ipMasq` false): the node forwards pod traffic
  with its pod source address and the VNet router routes every pod CIDR to its node
  (sim/fabric/network.py); the internet-bound SNAT happens at the edge (sim/fabric/outbound.py).
  `bridge` rather than `ptp`: pods on one node talk over the bridge without a route per pod, and
  the node's pod CIDR is one connected route in the node.
- `host-local` IPAM over the node's pod CIDR, its leases in the node's own data dir, so that nodes
  on one machine never share state.
- `loopback`, which brings the pod's `lo` up and passes the bridge's result through.

Plugins run inside the node's namespace (the "host" namespace of the CNI spec), with CNI_PATH the
node's bin dir and CNI_NETNS the pod's namespace, e.g.
`ip netns exec <node netns> env CNI_COMMAND=ADD CNI_PATH=<bin dir> ... <bin dir>/bridge < conf`.
Other plugins (the egress CNI and its manager) may add their files to the conf and bin dirs.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

CNI_VERSION: Final = "1.0.0"
NETWORK_NAME: Final = "pods"
BRIDGE: Final = "cni0"
CONFLIST_NAME: Final = "10-pods.conflist"
PLUGINS: Final = ("bridge", "host-local", "loopback")


@dataclass(frozen=True)
class NodeCni:
    """Where one node's CNI configuration lives."""

    conf_dir: Path  # NETCONFPATH: the conflists, read in file-name order
    bin_dir: Path  # CNI_PATH: the plugin executables
    data_dir: Path  # host-local's leases

    @classmethod
    def under(cls, root: Path) -> NodeCni:
        return cls(root / "net.d", root / "bin", root / "ipam")

    @property
    def conflist(self) -> Path:
        return self.conf_dir / CONFLIST_NAME


def render_conflist(pod_cidr: str, data_dir: Path) -> dict[str, Any]:
    """The node's conflist: `bridge` + `host-local` over `pod_cidr`, then `loopback`."""
    network = ipaddress.IPv4Network(pod_cidr)
    return {
        "cniVersion": CNI_VERSION,
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": str(network)}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(data_dir),
                },
            },
            {"type": "loopback"},
        ],
    }


def install_node_cni(cni: NodeCni, pod_cidr: str, plugin_dir: Path) -> Path:
    """Write the node's conflist and link the plugins of `plugin_dir` into its bin dir (both
    replaced when they differ, other files left alone); returns the conflist's path."""
    for directory in (cni.conf_dir, cni.bin_dir, cni.data_dir):
        directory.mkdir(parents=True, exist_ok=True)
    for plugin in PLUGINS:
        _link(cni.bin_dir / plugin, plugin_dir / plugin)
    text = json.dumps(render_conflist(pod_cidr, cni.data_dir), indent=2) + "\n"
    if not cni.conflist.exists() or cni.conflist.read_text() != text:
        partial = cni.conflist.with_name(f".{cni.conflist.name}.tmp")
        partial.write_text(text)
        partial.replace(cni.conflist)
    return cni.conflist


def clear_leases(cnis: Iterable[NodeCni]) -> None:
    """Forget every pod address host-local handed out on these nodes: after the node network is
    rebuilt (or removed) no pod of before exists any more, as after a node's reboot."""
    for cni in cnis:
        if cni.data_dir.is_dir():
            shutil.rmtree(cni.data_dir)


def _link(path: Path, target: Path) -> None:
    if path.is_symlink() and path.readlink() == target:
        return
    partial = path.with_name(f".{path.name}.tmp")
    partial.unlink(missing_ok=True)
    partial.symlink_to(target)
    partial.replace(path)
