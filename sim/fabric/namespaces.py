"""Netlink, conntrack, sysctl and nftables work inside the fabric's namespaces (pyroute2; `sysctl`
and `nft` via `ip netns exec`, for the per-namespace /proc/sys and ruleset).

"Already exists" on create and "not found" on delete count as success, decided here only.
"""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterable
from contextlib import closing
from typing import Any

from pyroute2 import Conntrack, NetlinkError, NetNS, netns
from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

_GONE = (errno.ENOENT, errno.ESRCH, errno.ENODEV, errno.EADDRNOTAVAIL)
SCOPE_LINK = 253


class NftError(RuntimeError):
    """nft refused a ruleset."""


def exists(name: str) -> bool:
    return name in netns.listnetns()


def create(name: str) -> None:
    if not exists(name):
        netns.create(name)


def remove(name: str) -> None:
    """Remove a namespace; the veth ends inside it go with it, and so do their peers."""
    if exists(name):
        try:
            netns.remove(name)
        except OSError as exc:
            if exc.errno not in _GONE:
                raise


def open_handle(name: str) -> Any:
    return NetNS(name)


def sysctl(name: str, settings: dict[str, str]) -> None:
    subprocess.run(
        ["ip", "netns", "exec", name, "sysctl", "-q", "-w"]
        + [f"{key}={value}" for key, value in settings.items()],
        check=True,
        capture_output=True,
    )


def index(ipr: Any, ifname: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise FileNotFoundError(f"no link {ifname}")
    return int(found[0])


def add_veth(ipr: Any, ifname: str, peer_name: str, peer_netns: str) -> None:
    """A veth pair from `ipr`'s namespace to `peer_netns`, the peer created in place (no
    temporary name in any other namespace)."""
    if ipr.link_lookup(ifname=ifname):
        return
    ipr.link("add", ifname=ifname, kind="veth", peer={"ifname": peer_name, "net_ns_fd": peer_netns})


def up(ipr: Any, ifname: str) -> None:
    ipr.link("set", index=index(ipr, ifname), state="up")


def add_address(ipr: Any, ifname: str, address: str, prefix_len: int) -> None:
    try:
        ipr.addr("add", index=index(ipr, ifname), address=address, prefixlen=prefix_len)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise


def set_route(ipr: Any, dst: str, **kwargs: Any) -> None:
    """Add or replace a route (`dst` "a.b.c.d/n" or "default"); link names in `oif` resolved."""
    if isinstance(kwargs.get("oif"), str):
        kwargs["oif"] = index(ipr, kwargs["oif"])
    ipr.route("replace", dst=dst, **kwargs)


def delete_route(ipr: Any, dst: str, **kwargs: Any) -> None:
    try:
        ipr.route("del", dst=dst, **kwargs)
    except NetlinkError as exc:
        if exc.code not in _GONE:
            raise


def routes_by_protocol(ipr: Any, protocol: int, table: int = 254) -> dict[str, str]:
    """Host routes of `protocol` in `table`: destination -> gateway ("" when on-link)."""
    out: dict[str, str] = {}
    for route in ipr.route("dump", table=table):
        if route.get("proto") == protocol and route.get("dst_len") == 32 and route.get("dst"):
            out[str(route.get("dst"))] = str(route.get("gateway") or "")
    return out


def add_rule(ipr: Any, fwmark: int, table: int, priority: int) -> None:
    try:
        ipr.rule("add", fwmark=fwmark, fwmask=0xFFFFFFFF, table=table, priority=priority)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise


def apply_nft(name: str, text: str) -> None:
    """Load a ruleset (`nft -f -` syntax) in namespace `name`, as one transaction."""
    done = subprocess.run(
        ["ip", "netns", "exec", name, "nft", "-f", "-"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise NftError(f"nft in {name} refused the ruleset: {done.stderr.strip()}")


def forget_flows_from(name: str, sources: Iterable[str]) -> int:
    """Delete the tracked flows in namespace `name` whose original source is one of `sources`, so
    that their next packets meet the current NAT rules; how many went."""
    wanted = list(sources)
    if not wanted:
        return 0
    gone = 0
    with closing(Conntrack(netns=name)) as conntrack:
        for source in wanted:
            for entry in list(conntrack.dump_entries(tuple_orig=NFCTAttrTuple(saddr=source))):
                try:
                    conntrack.delete(entry)
                except NetlinkError as exc:
                    if exc.code not in _GONE:
                        raise
                    continue
                gone += 1
    return gone
