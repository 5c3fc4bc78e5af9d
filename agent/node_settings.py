"""Where a gateway agent puts things on its node: names that are fixed per node.

Production uses the defaults (the names the Go implementation uses, which users know from
troubleshooting). The dev stack and tests run several agents on one machine, so they give each
node its own gateway namespace name and WireGuard socket tag (wireguard-go's socket directory
/var/run/wireguard is shared by all namespaces).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from contracts import kube_names


class WireguardBackend(StrEnum):
    AUTO = "auto"  # kernel module when present, wireguard-go otherwise
    KERNEL = "kernel"
    USERSPACE = "wireguard-go"


@dataclass(frozen=True)
class NodeSettings:
    gateway_netns: str = kube_names.GATEWAY_NETNS
    host_interface: str = "eth0"  # where the load balancer frontend IP goes
    wireguard_backend: WireguardBackend = WireguardBackend.AUTO
    # Distinguishes this node's wireguard-go sockets from other agents' on the same machine;
    # "" in production (one agent per machine).
    socket_tag: str = ""
    wireguard_go_path: str = "wireguard-go"


@dataclass(frozen=True)
class GatewaySetup:
    """Everything the dataplane needs to build one configuration's gateway on this node."""

    sgc_uid: str
    listen_port: int
    frontend_ip: str
    primary_ip: str
    secondary_ip: str
    private_key: bytes  # 32 raw bytes, read from the Secret; never logged

    def __repr__(self) -> str:
        return (
            f"GatewaySetup(sgc_uid={self.sgc_uid!r}, listen_port={self.listen_port}, "
            f"frontend_ip={self.frontend_ip!r}, primary_ip={self.primary_ip!r}, "
            f"secondary_ip={self.secondary_ip!r}, private_key=<redacted>)"
        )


def interface_name(listen_port: int) -> str:
    return f"{kube_names.GATEWAY_WIREGUARD_INTERFACE_PREFIX}{listen_port}"
