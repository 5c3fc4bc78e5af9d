"""Gateway peer sync speed: one wg-<port> interface (wireguard-go where there is no kernel
module) in throwaway namespaces, timed for 1,000 new peers into an empty interface, a no-op
re-sync of the same 1,000, and replacing 100 of the 1,000. Target: under 1 s for 1,000.
Needs root. Prints one line per figure (median of --runs).
    .venv/bin/python bench/agent_peer_sync.py [--peers N] [--replace N] [--runs N]
"""

from __future__ import annotations

import argparse
import ipaddress
import statistics
import time
import uuid
from collections.abc import Callable

from pyroute2 import netns

from agent import wireguard_uapi
from agent.netns_handles import NetnsHandles
from agent.node_settings import NodeSettings
from agent.wireguard_devices import PeerSpec, WireguardDevices, open_wireguard
from agent.wireguard_keys import generate_private_key, public_key_of

PORT = 51820
NAME = f"wg-{PORT}"


def make_peers(count: int, first_host: int = 0) -> list[PeerSpec]:
    base = ipaddress.IPv4Address("10.128.0.0")
    return [
        PeerSpec(public_key_of(generate_private_key()), base + first_host + n) for n in range(count)
    ]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def one_run(devices: WireguardDevices, peers: int, replace: int) -> tuple[float, float, float]:
    devices.sync_peers(NAME, [])
    wanted = make_peers(peers)
    fresh = timed(lambda: devices.sync_peers(NAME, wanted))
    noop = timed(lambda: devices.sync_peers(NAME, wanted))
    replaced = wanted[replace:] + make_peers(replace, first_host=peers)
    swap = timed(lambda: devices.sync_peers(NAME, replaced))
    assert len(devices.peers(NAME)) == peers
    return fresh, noop, swap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, default=1000)
    parser.add_argument("--replace", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    tag = "b" + uuid.uuid4().hex[:5]
    host, gateway = f"{tag}-h", f"{tag}-gw"
    handles = NetnsHandles()
    handles.get(host, create=True)
    settings = NodeSettings(gateway_netns=gateway, socket_tag=tag)
    devices = open_wireguard(settings, handles, host_netns=host)
    try:
        devices.ensure_interface(
            NAME, owner="bench", listen_port=PORT, private_key=generate_private_key()
        )
        runs = [one_run(devices, args.peers, args.replace) for _ in range(args.runs)]
        print(f"backend: {devices.backend.value}, median of {args.runs} runs")
        labels = (
            f"sync {args.peers} new peers into an empty interface",
            f"no-op re-sync of {args.peers} peers",
            f"replace {args.replace} of {args.peers} peers",
        )
        for label, figures in zip(labels, zip(*runs, strict=True), strict=True):
            print(f"{label:<48} {statistics.median(figures) * 1000:8.1f} ms")
    finally:
        devices.delete_interface(NAME)
        devices.close()
        handles.close()
        wireguard_uapi.socket_path(f"wg{tag}{PORT}").unlink(missing_ok=True)
        for name in (host, gateway):
            if name in netns.listnetns():
                netns.remove(name)


if __name__ == "__main__":
    main()
