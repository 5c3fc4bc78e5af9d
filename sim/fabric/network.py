"""The running fabric: a VNet router namespace, one namespace per node (gateway and regular), an
"internet" namespace with the echo service, client namespaces, the emulated internal load balancer,
and the cluster's outbound SNAT.

    fabric = Fabric(plan_fabric("egw", arm_network.node_specs()), state_dir)
    fabric.build()
    fabric.sync_from_arm(arm.store)      # secondary-IP routes, edge NAT, load balancer rules
    fabric.start_probing()               # health probes every 5 s (Azure's interval)
    ...
    fabric.destroy()

Layout (router = `<prefix>-vnet`, forwarding on, rp_filter off):
- node `<prefix>-<suffix>`: `eth0` = veth to the router link of the same name as the namespace,
  primary IP with the subnet's prefix length, default route via the subnet's first host, which the
  router holds on lo (proxy ARP on the router link carries node-to-node traffic in the subnet).
  Forwarding is on, as on an AKS node, for the agent's gateway namespace and the pods behind it.
- pods: each node's pod CIDR (a /24 of 10.244.0.0/16) is routed by the router to the node's
  primary IP, as Azure CNI overlay and kubenet route them: pod traffic keeps its pod source
  address inside the VNet, so pods reach pods on other nodes and the gateway nodes directly. The
  node's CNI chain (sim/fabric/cni.py) puts its pods behind a bridge holding the CIDR's first host.
- edge: what leaves for the internet from an ipConfiguration's private IP that has a public IP
  in ARM (a public-mode configuration's secondary IP) is SNATed 1:1 to that public IP, as Azure's
  edge does (sim/fabric/edge.py); follows ARM with the secondary-IP routes.
- outbound: what leaves for the internet from a regular node's primary IP or from any pod CIDR is
  SNATed to the cluster's outbound public IP (sim/fabric/outbound.py); gateway nodes' addresses
  without a public IP (private mode) and clients leave unchanged.
- internet `<prefix>-inet`: 198.18.0.2 on `eth0`, the echo service on UDP and TCP.
- client `<prefix>-<name>`: its address /32 (from the clients' own slice of the pod range) on
  `eth0`, default via the clients' gateway.
- secondary IPs from ARM: `<ip>/32 via <node primary>` in the router (routing protocol
  ROUTE_PROTOCOL, so a sync finds its own routes again).
Processes started in these namespaces by others (agents, test servers) must be stopped by whoever
started them before destroy(): a namespace with processes left in it outlives its name.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyroute2 import NetlinkError

from sim.arm.store import ResourceView
from sim.fabric import edge, load_balancer, namespaces, outbound
from sim.fabric.arm_view import ArmNetwork, read_arm_network
from sim.fabric.echo import EchoRecord, read_records
from sim.fabric.load_balancer import LbRule
from sim.fabric.plan import (
    INTERNET_CIDR,
    INTERNET_LINK_NET,
    INTERNET_ROUTER_IP,
    NODE_INTERFACE,
    ROUTE_PROTOCOL,
    ClientPlan,
    FabricPlan,
    NodePlan,
    secondary_route_changes,
)
from sim.fabric.probes import (
    AZURE_PROBE_INTERVAL,
    PROBE_TIMEOUT,
    Prober,
    ProbeTarget,
    probe_all,
)

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
RULE_PRIORITY = 1000
ECHO_STOP_TIMEOUT = 5.0
# Azure's SDN learns a new secondary IP within seconds; one second keeps the dev stack snappy.
ARM_SYNC_INTERVAL = 1.0

_ROUTER_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
}
_NODE_SYSCTLS = {"net.ipv4.ip_forward": "1"}


def netns_command(netns: str, argv: list[str]) -> list[str]:
    """`argv` run inside `netns` (`ip netns exec` execs, so the Popen PID is the command's)."""
    return ["ip", "netns", "exec", netns, *argv]


class Fabric:
    def __init__(
        self,
        plan: FabricPlan,
        state_dir: Path,
        *,
        python: str = sys.executable,
        probe_interval: float = AZURE_PROBE_INTERVAL,
        probe_timeout: float = PROBE_TIMEOUT,
    ) -> None:
        self.plan = plan
        self.state_dir = Path(state_dir)
        self.records_path = self.state_dir / f"{plan.prefix}-echo.jsonl"
        self._python = python
        self._clients: dict[str, ClientPlan] = {}
        self._echo: subprocess.Popen[str] | None = None
        self._router: Any = None  # pyroute2 handle of the router namespace
        self._lock = threading.RLock()
        self._rules: tuple[LbRule, ...] = ()
        self._health: dict[ProbeTarget, bool] = {}
        self._applied = ""
        self._translations: dict[str, str] = {}  # the edge NAT now in the router
        self._probe_timeout = probe_timeout
        self._prober = Prober(
            plan.router_netns,
            self.probe_targets,
            self._take_results,
            interval=probe_interval,
            timeout=probe_timeout,
        )

    # Building and tearing down ---------------------------------------------------------------

    def build(self) -> None:
        """Create everything from scratch (leftovers of an earlier run with this prefix are
        removed first). On failure, whatever was made is removed again."""
        self.destroy()
        try:
            self._build_router()
            self._build_internet()
            for node in self.plan.nodes:
                self._build_node(node)
            self._apply_outbound()
            self._apply_edge({}, force=True)
            self._apply_rules(force=True)
            self._start_echo()
        except BaseException:
            self.destroy()
            raise

    def destroy(self) -> None:
        """Remove every namespace, link, process and nft table the fabric made (also after a
        half-done build); the echo records file is kept."""
        self._prober.stop()
        self._stop_echo()
        with self._lock:
            if self._router is not None:
                self._router.close()
                self._router = None
            self._applied = ""
            self._translations = {}
        for name in [c.netns for c in self._clients.values()] + list(
            reversed(self.plan.namespaces)
        ):
            namespaces.remove(name)
        self._clients.clear()

    def _router_handle(self) -> Any:
        if self._router is None:
            self._router = namespaces.open_handle(self.plan.router_netns)
        return self._router

    def _build_router(self) -> None:
        name = self.plan.router_netns
        namespaces.create(name)
        namespaces.sysctl(name, _ROUTER_SYSCTLS)
        ipr = self._router_handle()
        namespaces.up(ipr, "lo")
        for address in self.plan.router_addresses:
            namespaces.add_address(ipr, "lo", address, 32)

    def _build_internet(self) -> None:
        inet, link = self.plan.internet_netns, self.plan.internet_link
        prefix_len = int(INTERNET_LINK_NET.split("/")[1])
        namespaces.create(inet)
        router = self._router_handle()
        namespaces.add_veth(router, link, NODE_INTERFACE, inet)
        namespaces.add_address(router, link, INTERNET_ROUTER_IP, prefix_len)
        namespaces.up(router, link)
        namespaces.set_route(router, INTERNET_CIDR, gateway=self.plan.echo_ip, oif=link)
        with namespaces.open_handle(inet) as ipr:
            namespaces.up(ipr, "lo")
            namespaces.add_address(ipr, NODE_INTERFACE, self.plan.echo_ip, prefix_len)
            namespaces.up(ipr, NODE_INTERFACE)
            namespaces.set_route(ipr, "default", gateway=INTERNET_ROUTER_IP)

    def _build_node(self, node: NodePlan) -> None:
        namespaces.create(node.netns)
        namespaces.sysctl(node.netns, _NODE_SYSCTLS)
        router = self._router_handle()
        link = node.router_link
        namespaces.add_veth(router, link, NODE_INTERFACE, node.netns)
        namespaces.up(router, link)
        namespaces.sysctl(self.plan.router_netns, {f"net.ipv4.conf.{link}.proxy_arp": "1"})
        host = f"{node.primary_ip}/32"
        # Source of the router's own packets to the node (probes): the subnet's gateway.
        namespaces.set_route(
            router, host, oif=link, scope=namespaces.SCOPE_LINK, prefsrc=node.gateway_ip
        )
        # The node's own table for load-balanced flows: reach it, then send everything to it.
        namespaces.set_route(router, host, oif=link, scope=namespaces.SCOPE_LINK, table=node.mark)
        namespaces.set_route(router, "default", gateway=node.primary_ip, oif=link, table=node.mark)
        namespaces.add_rule(router, node.mark, node.mark, RULE_PRIORITY)
        # The node's pods, behind the node (its CNI bridge holds the CIDR's gateway address).
        namespaces.set_route(router, node.pod_cidr, gateway=node.primary_ip, oif=link)
        with namespaces.open_handle(node.netns) as ipr:
            namespaces.up(ipr, "lo")
            namespaces.add_address(ipr, NODE_INTERFACE, node.primary_ip, node.prefix_len)
            namespaces.up(ipr, NODE_INTERFACE)
            namespaces.set_route(ipr, "default", gateway=node.gateway_ip, oif=NODE_INTERFACE)

    def _apply_outbound(self) -> None:
        plan = self.plan
        text = outbound.render_outbound_nat(
            plan.internet_link, plan.outbound_sources, plan.outbound_ip
        )
        namespaces.apply_nft(plan.router_netns, text)

    # Clients -------------------------------------------------------------------------------

    def add_client(self, name: str, ip: str) -> ClientPlan:
        """A namespace `<prefix>-<name>` with `ip` (in the clients' range) on eth0, routed by
        the router; e.g. a pod that sends to the load balancer frontend."""
        client = self.plan.client(name, ip)
        if any(c.ip == ip and c.name != name for c in self._clients.values()):
            raise ValueError(f"client address {ip} is taken")
        self._clients[name] = client
        namespaces.create(client.netns)
        with self._lock:
            router = self._router_handle()
            namespaces.add_veth(router, client.router_link, NODE_INTERFACE, client.netns)
            namespaces.up(router, client.router_link)
            namespaces.set_route(
                router, f"{ip}/32", oif=client.router_link, scope=namespaces.SCOPE_LINK
            )
        with namespaces.open_handle(client.netns) as ipr:
            namespaces.up(ipr, "lo")
            namespaces.add_address(ipr, NODE_INTERFACE, ip, 32)
            namespaces.up(ipr, NODE_INTERFACE)
            namespaces.set_route(
                ipr, f"{client.gateway_ip}/32", oif=NODE_INTERFACE, scope=namespaces.SCOPE_LINK
            )
            namespaces.set_route(ipr, "default", gateway=client.gateway_ip, oif=NODE_INTERFACE)
        return client

    def remove_client(self, name: str) -> None:
        client = self._clients.pop(name, None)
        if client is not None:
            namespaces.remove(client.netns)

    # State from ARM ----------------------------------------------------------------------

    def sync_from_arm(self, view: ResourceView) -> ArmNetwork:
        """Read the ARM emulator's records (e.g. `ArmEmulator.store`, on its thread) and make the
        router's secondary-IP routes, the edge NAT and the load balancer match them."""
        network = read_arm_network(view)
        self.apply(network)
        return network

    async def follow_arm(self, view: ResourceView, interval: float = ARM_SYNC_INTERVAL) -> None:
        """Keep syncing until cancelled. Run it on the ARM emulator's event loop: the records are
        read there, between requests, and the netlink/nft work happens on a worker thread."""
        while True:
            network = read_arm_network(view)
            try:
                await asyncio.to_thread(self.apply, network)
            except (OSError, RuntimeError, NetlinkError):
                # The stack keeps running; the next round tries again with fresh state.
                log.exception("syncing the fabric from ARM failed")
            await asyncio.sleep(interval)

    def apply(self, network: ArmNetwork) -> None:
        """Make routes, edge NAT and load balancer match `network` (read from ARM by the
        caller)."""
        with self._lock:
            # The translation first: a secondary IP's replies can only come back once its route
            # is there, so nothing answered ever leaves untranslated in between.
            primaries = {n.primary_ip for n in self.plan.nodes}
            self._apply_edge(network.public_translations(primaries))
            self._sync_routes(network.secondary_routes())
            self._rules = network.rules
            self._apply_rules()

    @property
    def translations(self) -> dict[str, str]:
        """The edge NAT in place: private IP -> public IP."""
        with self._lock:
            return dict(self._translations)

    def _apply_edge(self, translations: Mapping[str, str], *, force: bool = False) -> None:
        wanted = dict(translations)
        if wanted == self._translations and not force:
            return
        text = edge.render_edge_nat(self.plan.internet_link, wanted)
        namespaces.apply_nft(self.plan.router_netns, text)
        # Flows already tracked keep the translation they started with; Azure's edge applies
        # the new one to every packet at once.
        namespaces.forget_flows_from(
            self.plan.router_netns, edge.changed_sources(self._translations, wanted)
        )
        self._translations = wanted

    def _sync_routes(self, wanted: Mapping[str, str]) -> None:
        desired: dict[str, str] = {}
        for secondary, primary in wanted.items():
            if self.plan.node_by_ip(primary) is not None:
                desired[secondary] = primary
            else:
                log.warning("secondary IP %s is on a node outside the fabric", secondary)
        router = self._router_handle()
        current = namespaces.routes_by_protocol(router, ROUTE_PROTOCOL)
        to_set, to_delete = secondary_route_changes(current, desired)
        for address in to_delete:
            namespaces.delete_route(router, f"{address}/32", proto=ROUTE_PROTOCOL)
        for address, primary in sorted(to_set.items()):
            node = self.plan.node_by_ip(primary)
            assert node is not None
            namespaces.set_route(
                router,
                f"{address}/32",
                gateway=primary,
                oif=node.router_link,
                proto=ROUTE_PROTOCOL,
            )

    # Load balancer and probes ------------------------------------------------------------

    @property
    def rules(self) -> tuple[LbRule, ...]:
        with self._lock:
            return self._rules

    def health(self) -> dict[ProbeTarget, bool]:
        with self._lock:
            return dict(self._health)

    def serving_backends(self, rule: LbRule) -> tuple[str, ...]:
        """The backends that receive the rule's flows now."""
        with self._lock:
            return load_balancer.eligible_backends(rule, self._health)

    def probe_targets(self) -> list[ProbeTarget]:
        with self._lock:
            return list(dict.fromkeys(t for r in self._rules for t in r.probe_targets()))

    def probe_once(self) -> dict[ProbeTarget, bool]:
        """One round of probes, applied at once (what each poll of start_probing does)."""
        results = probe_all(self.plan.router_netns, self.probe_targets(), self._probe_timeout)
        self._take_results(results)
        return results

    def start_probing(self) -> None:
        self._prober.start()

    def stop_probing(self) -> None:
        self._prober.stop()

    @property
    def probe_rounds(self) -> int:
        return self._prober.rounds

    def _take_results(self, results: Mapping[ProbeTarget, bool]) -> None:
        with self._lock:
            current = {t for r in self._rules for t in r.probe_targets()}
            self._health = {t: up for t, up in {**self._health, **results}.items() if t in current}
            self._apply_rules()

    def _apply_rules(self, *, force: bool = False) -> None:
        marks = {node.primary_ip: node.mark for node in self.plan.nodes}
        text = load_balancer.render_ruleset(self._rules, marks, self._health)
        if text != self._applied or force:
            namespaces.apply_nft(self.plan.router_netns, text)
            self._applied = text

    # Echo --------------------------------------------------------------------------------

    @property
    def echo_pid(self) -> int | None:
        return None if self._echo is None else self._echo.pid

    def echo_records(self) -> list[EchoRecord]:
        return read_records(self.records_path)

    def _start_echo(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        argv = [
            self._python,
            "-m",
            "sim.fabric.echo",
            "--host",
            self.plan.echo_ip,
            "--port",
            str(self.plan.echo_port),
            "--records",
            str(self.records_path),
        ]
        self._echo = subprocess.Popen(
            netns_command(self.plan.internet_netns, argv),
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO_ROOT,
        )
        assert self._echo.stdout is not None
        if self._echo.stdout.readline().strip() != "ready":
            self._stop_echo()
            raise RuntimeError("the echo service exited before it was ready")

    def _stop_echo(self) -> None:
        proc, self._echo = self._echo, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(ECHO_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
