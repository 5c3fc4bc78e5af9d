"""Applying one configuration on a gateway node with the real Dataplane (wireguard-go where there
is no kernel module), on a stand-in node of throwaway namespaces. Needs root.

Each run applies a fresh configuration (new port, new secondary IP) on a node that already holds
one other configuration, then removes it. Figures (p50 / p90 over --runs):

  fresh apply, total             everything, including starting wireguard-go and waiting for its
                                 UAPI socket
  fresh apply, wireguard step    the interface step alone (daemon start + move + address + key)
  fresh apply minus that step    namespace check, plumbing (iptables, veth, routes) and peers
  fresh apply, daemon pre-started
                                 the whole apply for a fresh configuration whose wireguard-go was
                                 started beforehand under the name the dataplane adopts: the
                                 honest "apply excluding wireguard-go start" (target p50 < 100 ms)
  re-apply, nothing to change    the drift check every workflow re-apply pays
  re-apply repairing a chain     one SNAT chain flushed by hand, then re-applied

    .venv/bin/python bench/agent_apply.py [--runs N] [--peers N]
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

from pyroute2 import netns

from agent import wireguard_uapi
from agent.gateway_dataplane import AppliedGateway, Dataplane, open_dataplane
from agent.node_settings import GatewaySetup, NodeSettings
from agent.peer_plan import PeerSpec
from agent.wireguard_keys import generate_private_key, public_key_of
from agent.wireguard_userspace import birth_name

PRIMARY = "10.1.0.4"
FRONTEND = "10.1.0.100"


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def make_node(tag: str) -> None:
    host, internet = f"{tag}-h", f"{tag}-i"
    for name in (host, internet):
        netns.create(name)
    sh("ip", "-n", host, "link", "add", f"{tag}e", "type", "veth", "peer", "name", f"{tag}i",
       "netns", internet)  # fmt: skip
    for ns, dev, address in (
        (host, f"{tag}e", f"{PRIMARY}/24"),
        (internet, f"{tag}i", "10.1.0.1/24"),
    ):
        sh("ip", "-n", ns, "addr", "add", address, "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")


def setup(port: int) -> GatewaySetup:
    secondary = str(ipaddress.IPv4Address("10.1.0.0") + (port - 6000) % 200 + 10)
    return GatewaySetup(f"bench-{port}", port, FRONTEND, PRIMARY, secondary, generate_private_key())


def peers(count: int) -> list[PeerSpec]:
    base = ipaddress.IPv4Address("10.244.0.1")
    return [PeerSpec(public_key_of(generate_private_key()), base + n) for n in range(count)]


async def timed(call: Callable[[], Awaitable[AppliedGateway]]) -> tuple[float, AppliedGateway]:
    start = time.perf_counter()
    applied = await call()
    return time.perf_counter() - start, applied


def prestart_daemon(tag: str, settings: NodeSettings, port: int) -> subprocess.Popen[bytes]:
    """wireguard-go in the node's namespace under the birth name the dataplane adopts."""
    birth = birth_name(settings.socket_tag, port)
    process = subprocess.Popen(
        ["ip", "netns", "exec", f"{tag}-h", settings.wireguard_go_path, "-f", birth],
        env={**os.environ, "WG_PROCESS_FOREGROUND": "1", "LOG_LEVEL": "error"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    path = wireguard_uapi.socket_path(birth)
    deadline = time.monotonic() + 5
    while True:  # waiting for a just-started daemon, outside the timed section
        try:
            if wireguard_uapi.reply_errno(wireguard_uapi.call(path, "get=1\n\n")) == 0:
                return process
        except (FileNotFoundError, ConnectionRefusedError):
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            process.wait()
            raise RuntimeError(f"wireguard-go {birth} did not start")
        time.sleep(0.002)


def row(label: str, seconds: Sequence[float]) -> None:
    ms = sorted(value * 1000 for value in seconds)
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    print(f"{label:<44} p50 {statistics.median(ms):7.1f} ms   p90 {p90:7.1f} ms")


async def bench(
    dataplane: Dataplane, tag: str, settings: NodeSettings, args: argparse.Namespace
) -> None:
    await dataplane.apply(setup(6999), peers(args.peers))  # the node's other configuration
    fresh: list[float] = []
    step_wg: list[float] = []
    rest: list[float] = []
    prestarted: list[float] = []
    noop: list[float] = []
    repair: list[float] = []
    noop_steps: dict[str, list[float]] = {}
    for run in range(args.runs):
        port = 6000 + 2 * run
        wanted = peers(args.peers)
        a = setup(port)
        seconds, applied = await timed(lambda: dataplane.apply(a, wanted))  # noqa: B023
        assert any("created" in change for change in applied.changes), applied.changes
        steps = dict(applied.step_seconds)
        fresh.append(seconds)
        step_wg.append(steps["wireguard"])
        rest.append(seconds - steps["wireguard"])

        seconds, applied = await timed(lambda: dataplane.apply(a, wanted))  # noqa: B023
        assert applied.changes == (), applied.changes
        noop.append(seconds)
        for label, step in applied.step_seconds:
            noop_steps.setdefault(label, []).append(step)

        sh("ip", "netns", "exec", settings.gateway_netns, "iptables", "-t", "nat", "-F",
           f"EGRESS-GATEWAY-SNAT-{port}")  # fmt: skip
        seconds, applied = await timed(lambda: dataplane.apply(a, wanted))  # noqa: B023
        assert applied.changes == (f"rewrote chain EGRESS-GATEWAY-SNAT-{port}",), applied.changes
        repair.append(seconds)

        b = setup(port + 1)
        daemon = prestart_daemon(tag, settings, port + 1)
        try:
            seconds, applied = await timed(lambda: dataplane.apply(b, wanted))  # noqa: B023
            assert not any("created wg" in change for change in applied.changes), applied.changes
            prestarted.append(seconds)
            await dataplane.remove(b.sgc_uid, b.listen_port, b.secondary_ip)
        finally:
            daemon.kill()  # already gone after remove; by PID, ours
            daemon.wait()
        await dataplane.remove(a.sgc_uid, a.listen_port, a.secondary_ip)

    print(f"{args.runs} runs, {args.peers} peers per configuration, one other configuration")
    row("fresh apply, total (with wireguard-go start)", fresh)
    row("fresh apply, wireguard step", step_wg)
    row("fresh apply minus the wireguard step", rest)
    row("fresh apply, daemon pre-started", prestarted)
    row("re-apply, nothing to change", noop)
    for label, figures in noop_steps.items():
        row(f"  of which step {label}", figures)
    row("re-apply repairing a flushed SNAT chain", repair)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--peers", type=int, default=10)
    args = parser.parse_args()

    tag = "b" + uuid.uuid4().hex[:5]
    settings = NodeSettings(gateway_netns=f"{tag}-g", host_interface=f"{tag}e", socket_tag=tag)
    make_node(tag)
    dataplane = open_dataplane(settings, host_netns=f"{tag}-h")
    try:
        await bench(dataplane, tag, settings, args)
    finally:
        await dataplane.remove_orphans([])  # stops this bench's wireguard-go daemons by PID
        await dataplane.close()
        for name in (f"{tag}-h", f"{tag}-i", f"{tag}-g"):
            if name in netns.listnetns():
                netns.remove(name)


if __name__ == "__main__":
    asyncio.run(main())
