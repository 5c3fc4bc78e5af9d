"""The load balancer frontend IP on the node's host interface (docs/node-agent.md).

Azure's internal load balancer delivers packets addressed to its frontend IP unchanged (floating
IP), so the node must own `<frontend>/32`. The address carries the label `<interface>:egress`, the
mark by which upstream's cleanUp() and ours tell our addresses from everyone else's.
"""

from __future__ import annotations

from socket import AF_INET

from agent.netns_handles import NetnsHandles
from agent.node_settings import NodeSettings

_LABEL_SUFFIX = ":egress"
_MAX_LABEL = 15  # IFNAMSIZ - 1: the kernel refuses longer labels


def egress_label(settings: NodeSettings) -> str:
    """`eth0:egress` on a standard node; cut to the kernel's limit for long interface names."""
    return f"{settings.host_interface}{_LABEL_SUFFIX}"[:_MAX_LABEL]


def _host_interface_index(settings: NodeSettings, handles: NetnsHandles) -> int:
    found: list[int] = handles.get().link_lookup(ifname=settings.host_interface)
    if not found:
        raise FileNotFoundError(f"host interface {settings.host_interface} does not exist")
    return found[0]


def _host_addresses(settings: NodeSettings, handles: NetnsHandles) -> list[tuple[str, int, str]]:
    """(address, prefix length, label) of every IPv4 address on the host interface."""
    index = _host_interface_index(settings, handles)
    return [
        (str(msg.get("IFA_LOCAL")), int(msg["prefixlen"]), str(msg.get("IFA_LABEL") or ""))
        for msg in handles.get().addr("dump", index=index, family=AF_INET)
    ]


def frontend_addresses(settings: NodeSettings, handles: NetnsHandles) -> frozenset[str]:
    """The /32 addresses on the host interface that carry our label."""
    label = egress_label(settings)
    return frozenset(
        address
        for address, prefix, found_label in _host_addresses(settings, handles)
        if prefix == 32 and found_label == label
    )


def ensure_frontend_address(
    frontend_ip: str, settings: NodeSettings, handles: NetnsHandles
) -> list[str]:
    if any(
        address == frontend_ip and prefix == 32
        for address, prefix, _ in _host_addresses(settings, handles)
    ):
        return []
    handles.get().addr(
        "add",
        index=_host_interface_index(settings, handles),
        address=frontend_ip,
        prefixlen=32,
        label=egress_label(settings),
    )
    return [f"added {frontend_ip}/32 to {settings.host_interface}"]


def remove_frontend_address(
    frontend_ip: str, settings: NodeSettings, handles: NetnsHandles
) -> list[str]:
    """Remove the address if it is ours (labelled); an unlabelled equal address is left alone."""
    if frontend_ip not in frontend_addresses(settings, handles):
        return []
    handles.get().addr(
        "del", index=_host_interface_index(settings, handles), address=frontend_ip, prefixlen=32
    )
    return [f"removed {frontend_ip}/32 from {settings.host_interface}"]


def remove_address_from_host_interface(
    address: str, settings: NodeSettings, handles: NetnsHandles
) -> list[str]:
    """As upstream does: a secondary IP must not sit on the host interface, or the host would
    answer for it instead of routing it into the gateway namespace."""
    changes: list[str] = []
    for found, prefix, _ in _host_addresses(settings, handles):
        if found == address:
            handles.get().addr(
                "del",
                index=_host_interface_index(settings, handles),
                address=found,
                prefixlen=prefix,
            )
            changes.append(f"removed {found}/{prefix} from {settings.host_interface}")
    return changes
