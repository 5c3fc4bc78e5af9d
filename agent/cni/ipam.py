"""`kube-egress-cni-ipam`: upstream's IPAM plugin type, kept so that a conflist naming it works.

ADD reports the addresses the main plugin gave the pod's main interface (CNI_IFNAME, in
CNI_NETNS): its IPv4 address and, when it has one, its IPv6 link-local address. It allocates
nothing, so DEL, CHECK and GC have nothing to do. kube-egress-cni does not need to call it
(prevResult already has the pod's address, and wg0 needs no address of its own); it stays
because upstream's conflist entry names it (`"ipam": {"type": "kube-egress-cni-ipam"}`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from agent.cni import pod_netns
from agent.cni.cni_protocol import (
    DATAPLANE_FAILED,
    INVALID_NETWORK_CONFIG,
    LATEST_VERSION,
    SUPPORTED_VERSIONS,
    UNKNOWN_CONTAINER,
    CniError,
    decode_config,
    error_json,
    needs_version,
    output,
    read_invocation,
    version_tuple,
)


def main() -> int:
    try:
        stdin = sys.stdin.buffer.read()
    except (OSError, ValueError):
        stdin = b""
    code, text = run(os.environ, stdin)
    if text:
        sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return code


def run(environ: Mapping[str, str], stdin: bytes) -> tuple[int, str]:
    version = LATEST_VERSION
    try:
        invocation = read_invocation(environ)
        if invocation.command == "VERSION":
            return 0, output(
                {"cniVersion": LATEST_VERSION, "supportedVersions": SUPPORTED_VERSIONS}
            )
        raw = decode_config(stdin)
        version = str(raw["cniVersion"])
        if invocation.command == "ADD":
            return 0, output(add(invocation.netns, invocation.ifname, version))
        if invocation.command == "CHECK":
            needs_version("CHECK", version, "0.4.0")
        elif invocation.command in ("GC", "STATUS"):
            needs_version(invocation.command, version, "1.1.0")
        return 0, ""
    except CniError as err:
        return 1, output(error_json(err, version))


def add(netns: str, ifname: str, version: str) -> dict[str, Any]:
    try:
        pod_netns.enter(netns)
    except pod_netns.NetnsMissing as err:
        raise CniError(UNKNOWN_CONTAINER, str(err)) from None
    try:
        text = pod_netns.run([pod_netns.find_tool("ip"), "-j", "addr", "show", "dev", ifname])
    except pod_netns.CommandFailed as err:
        raise CniError(DATAPLANE_FAILED, f"reading {ifname}'s addresses failed: {err}") from None
    return ipam_result(pod_netns_addresses(text), ifname, version)


def pod_netns_addresses(text: str) -> list[Mapping[str, Any]]:
    links = json.loads(text)
    return [info for link in links for info in link.get("addr_info", [])]


def ipam_result(addresses: list[Mapping[str, Any]], ifname: str, version: str) -> dict[str, Any]:
    """The IPv4 address (required) and the IPv6 link-local one (if any) of the interface."""
    ipv4 = [a for a in addresses if a.get("family") == "inet" and a.get("scope") == "global"]
    link_local = [a for a in addresses if a.get("family") == "inet6" and a.get("scope") == "link"]
    if not ipv4:
        raise CniError(INVALID_NETWORK_CONFIG, f"{ifname} has no IPv4 address")
    ips: list[dict[str, str]] = [
        {"address": f"{ipv4[0]['local']}/{ipv4[0]['prefixlen']}", "version": "4"}
    ]
    if link_local:
        ips.append(
            {"address": f"{link_local[0]['local']}/{link_local[0]['prefixlen']}", "version": "6"}
        )
    if version_tuple(version) >= (1, 0, 0):  # 1.0 dropped the per-address "version"
        for ip in ips:
            del ip["version"]
    return {"cniVersion": version, "ips": ips}


if __name__ == "__main__":
    sys.exit(main())
