"""An annotated pod's attachment: what kube-egress-cni makes, checks and removes in the pod
(docs/pod-side.md). plugin.py decides whether a pod needs any of this and imports this module
only then, so that a pod without the annotation (most pods) does not pay for loading it.

set_up: wg0 (pod_wireguard) with the gateway as its one peer, the routes of the configuration's
defaultRoute and the ingress return path (pod_routes), after NicAdd; any failure undoes all of
it, NicDel included. clean_up (DEL, GC, and ADD finding an earlier attachment): removes whatever
of it is there. check (CHECK): compares the pod with what set_up makes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from agent.cni import attachment_state, pod_netns, pod_routes, pod_wireguard
from agent.cni.attachment_state import AttachmentRecord
from agent.cni.cni_protocol import (
    CHECK_FAILED,
    DATAPLANE_FAILED,
    INVALID_NETWORK_CONFIG,
    IO_FAILURE,
    UNKNOWN_CONTAINER,
    CniError,
    Invocation,
    PodAddress,
    PodRef,
)
from agent.cni.manager_api import GatewayProfile, ManagerError, NicAddRequest, NicDelRequest
from agent.cni.manager_client import ManagerClient, ManagerUnavailable, ask
from agent.cni.plugin_config import BACKEND_KERNEL, BACKEND_USERSPACE, PluginConfig
from agent.cni.pod_keys import PodKeyPair
from agent.cni.pod_netns import CommandFailed, NetnsMissing, NetnsTools, Observed
from agent.cni.pod_routes import DEFAULT, DefaultRoute, PodNetwork, RoutePlan
from agent.cni.pod_wireguard import KernelWireguard, UserspaceWireguard, WireguardFailed
from contracts import kube_names

Wireguard = UserspaceWireguard | KernelWireguard

PLUGIN_NAME = kube_names.CNI_PLUGIN_TYPE
WG = kube_names.POD_WIREGUARD_INTERFACE


# --- ADD -----------------------------------------------------------------------------------------


def set_up(
    invocation: Invocation,
    config: PluginConfig,
    prev: Mapping[str, Any],
    pod: PodRef,
    pod_uid: str,
    address: PodAddress,
    gateway: str,
    client: ManagerClient,
    log: TextIO,
) -> dict[str, Any]:
    """wg0 and everything around it for an annotated pod; the ADD result."""
    _enter(invocation.netns)
    tools = _tools()
    observed = _observe(tools)
    ifname = invocation.ifname
    if observed.link(ifname) is None:
        raise CniError(
            INVALID_NETWORK_CONFIG, f"{ifname} is not in the pod's namespace {invocation.netns}"
        )
    record_path = attachment_state.record_path(config.state_dir, invocation.container_id, ifname)
    backend = pod_wireguard.choose_backend(config.backend)
    daemon = (
        pod_wireguard.daemon_name(invocation.container_id, ifname)
        if backend == BACKEND_USERSPACE
        else ""
    )
    if _has_leftovers(observed, daemon, record_path):
        # An earlier ADD of this attachment that was never deleted: start from a clean pod.
        _undo_netns(tools, ifname, daemon, attachment_state.read(record_path), log)
        _stop_daemon(invocation.container_id, ifname, daemon)
        observed = _observe(tools)
    original = pod_routes.default_route(observed.routes, ifname)
    if original is None:
        raise CniError(
            INVALID_NETWORK_CONFIG,
            f"the pod has no IPv4 default route via {ifname}",
            "the main plugin must give the pod a default route (its gateway is where traffic "
            "that bypasses wg0 goes)",
        )
    # The main table as the main plugin left it: its routes are kept (pod_routes.plan_routes).
    existing = [pod_routes.route_dst(r) for r in observed.routes if pod_routes.route_table(r) == 0]

    keys = PodKeyPair.generate()
    record = AttachmentRecord(
        container_id=invocation.container_id,
        ifname=ifname,
        netns=invocation.netns,
        pod_namespace=pod.namespace,
        pod_name=pod.name,
        gateway_name=gateway,
        backend=backend,
        daemon=daemon,
        public_key=keys.public_key_base64,
        pod_ip=address.ip,
        default_gateway=original.gateway,
        default_metric=original.metric,
        default_protocol=original.protocol,
    )
    try:
        attachment_state.write(config.state_dir, record)
    except OSError as err:
        raise CniError(
            IO_FAILURE, f"cannot write the attachment record in {config.state_dir}: {err}"
        ) from None

    request = NicAddRequest(pod, address.ip, keys.public_key_base64, gateway, pod_uid)
    try:
        profile = ask(client.nic_add, request, on_unavailable=lambda: _forget(client, record))
    except CniError:
        attachment_state.remove(record_path)
        raise
    try:
        plan = _build(tools, config, record, keys, profile, existing)
    except (WireguardFailed, CommandFailed, OSError) as err:
        _undo_netns(tools, ifname, daemon, record, log)
        _stop_daemon(invocation.container_id, ifname, daemon)
        _forget(client, record, log)
        attachment_state.remove(record_path)
        raise CniError(
            DATAPLANE_FAILED,
            f"setting up {WG} for pod {pod} failed: {err}",
            "everything the plugin had made was removed, the PodEndpoint too",
        ) from None
    del keys  # the device has the private key; this process forgets it
    log.write(
        f"{PLUGIN_NAME}: ADD {pod} ({address.ip}): {WG} to {profile.endpoint_ip}:"
        f"{profile.listen_port} for configuration {gateway}, defaultRoute "
        f"{profile.default_route}, {len(plan.main)} routes ({record.backend})\n"
    )
    return _result(prev, config, invocation, plan)


def _build(
    tools: NetnsTools,
    config: PluginConfig,
    record: AttachmentRecord,
    keys: PodKeyPair,
    profile: GatewayProfile,
    existing: list[str],
) -> RoutePlan:
    """wg0, its routes, the ingress return path; raises on the first failure (the caller
    undoes)."""
    wireguard = _wireguard(record.backend, record.daemon, tools, config)
    link = wireguard.create()
    wireguard.configure(keys, profile)
    plan = pod_routes.plan_routes(_pod_network(config, record, profile), existing)
    lines = [f"link set {link} name {WG}"] if link != WG else []
    lines.append(f"link set {WG} up")
    lines += pod_routes.add_commands(plan)
    tools.batch(lines)
    tools.nft(pod_routes.ingress_ruleset(record.ifname))
    # Loose reverse-path filtering: a packet entering by the main interface from an address
    # the default route sends to wg0 is not a spoof here (upstream sets the same).
    pod_netns.write_sysctl("net/ipv4/conf/all/rp_filter", "2")
    pod_netns.write_sysctl(f"net/ipv4/conf/{record.ifname}/rp_filter", "2")
    return plan


def _pod_network(
    config: PluginConfig, record: AttachmentRecord, profile: GatewayProfile
) -> PodNetwork:
    return PodNetwork(
        mode=profile.default_route,
        ifname=record.ifname,
        gateway=record.default_gateway,
        default_metric=record.default_metric,
        pod_ip=record.pod_ip,
        endpoint_ip=profile.endpoint_ip,
        cluster_cidrs=config.cluster_cidrs,
        exclude_cidrs=profile.exclude_cidrs,
        exception_cidrs=config.exception_cidrs,
    )


def _result(
    prev: Mapping[str, Any], config: PluginConfig, invocation: Invocation, plan: RoutePlan
) -> dict[str, Any]:
    """prevResult with wg0 added to the interfaces and the routes as they now are (a route
    without gw is on wg0, point-to-point)."""
    replaced_default = any(route.dst == DEFAULT for route in plan.main)
    routes = [
        route
        for route in (prev.get("routes") or [])
        if not (replaced_default and isinstance(route, Mapping) and route.get("dst") == DEFAULT)
    ]
    for route in plan.main:
        routes.append({"dst": route.dst, **({"gw": route.via} if route.via else {})})
    interfaces = [*(prev.get("interfaces") or []), {"name": WG, "sandbox": invocation.netns}]
    return {
        **prev,
        "cniVersion": config.cni_version,
        "interfaces": interfaces,
        "routes": routes,
    }


# --- DEL and GC ------------------------------------------------------------------------------


def delete(invocation: Invocation, config: PluginConfig, log: TextIO) -> None:
    """Remove what ADD made; whatever is already gone is fine (spec: DEL is idempotent)."""
    ifname = invocation.ifname
    path = attachment_state.record_path(config.state_dir, invocation.container_id, ifname)
    record = attachment_state.read(path)
    clean_up(invocation.container_id, ifname, invocation.netns, record, config, log)
    attachment_state.remove(path)
    if record is not None:
        log.write(f"{PLUGIN_NAME}: DEL {record.pod_namespace}/{record.pod_name}: removed {WG}\n")


def clean_up(
    container_id: str,
    ifname: str,
    netns: str,
    record: AttachmentRecord | None,
    config: PluginConfig,
    log: TextIO,
) -> None:
    daemon = (
        record.daemon if record is not None else pod_wireguard.daemon_name(container_id, ifname)
    )
    if record is None and not UserspaceWireguard(daemon).socket_exists():
        # No record and no daemon: ADD let this pod pass through (or never got to change it).
        return
    if netns:
        try:
            pod_netns.enter(netns)
        except NetnsMissing:
            pass  # the namespace is gone, and with it wg0, routes and rules
        else:
            tools = _tools()
            observed = _observe(tools)
            if record is not None or _has_leftovers(observed, daemon, None):
                _undo_netns(tools, ifname, daemon, record, log)
    _stop_daemon(container_id, ifname, daemon)
    if record is not None:
        _forget(ManagerClient(config.socket_path), record, log)


def _forget(client: ManagerClient, record: AttachmentRecord, log: TextIO | None = None) -> None:
    """NicDel for the attachment's key. A manager that cannot be reached leaves the PodEndpoint
    to the garbage collector (it is owned by the Pod) or to the pod's next ADD, which replaces
    it; DEL must not fail for that, or the pod could never be torn down."""
    request = NicDelRequest(PodRef(record.pod_namespace, record.pod_name), record.public_key)
    try:
        client.nic_del(request)
    except (ManagerUnavailable, ManagerError) as err:
        if log is not None:
            log.write(
                f"{PLUGIN_NAME}: could not remove PodEndpoint "
                f"{record.pod_namespace}/{record.pod_name}: {err}\n"
            )


def _has_leftovers(observed: Observed, daemon: str, record_path: Path | None) -> bool:
    return (
        observed.link(WG) is not None
        or (bool(daemon) and observed.link(daemon) is not None)
        or any(pod_routes.is_ours(route) for route in observed.routes)
        or pod_routes.ingress_rule_present(observed.rules)
        or (record_path is not None and record_path.exists())
    )


def _undo_netns(
    tools: NetnsTools,
    ifname: str,
    daemon: str,
    record: AttachmentRecord | None,
    log: TextIO | None = None,
) -> None:
    """Remove wg0, our routes (protocol ROUTE_PROTOCOL), the ingress rule and nftables table,
    and put the original default route back if ours had replaced it. Best effort: each piece
    that is already gone is skipped."""
    observed = _observe(tools)
    lines: list[str] = []
    gone = {WG, daemon} - {""}
    for name in sorted(gone):
        if observed.link(name) is not None:
            lines.append(f"link del {name}")
    for route in observed.routes:
        table = pod_routes.route_table(route)
        if pod_routes.is_ours(route) and table is not None and route.get("dev") not in gone:
            lines.append(
                f"route del {pod_routes.route_dst(route)} dev {route.get('dev')} "
                f"table {table or 'main'} proto {pod_routes.ROUTE_PROTOCOL}"
            )
    lines += [f"rule del fwmark {pod_routes.MARK:#x} lookup {pod_routes.TABLE}"] * (
        pod_routes.ingress_rule_count(observed.rules)
    )
    restore = _original_default(observed, record)
    other_default = any(
        pod_routes.route_table(r) == 0
        and pod_routes.route_dst(r) == DEFAULT
        and not pod_routes.is_ours(r)
        for r in observed.routes
    )
    if restore is not None and not other_default and observed.link(restore.dev) is not None:
        lines.append(f"route add {restore.restore_args()}")
    failed = tools.batch(lines, force=True)
    if failed and log is not None:
        log.write(f"{PLUGIN_NAME}: undoing in the pod: {failed}\n")
    with contextlib.suppress(CommandFailed):  # no nft: then ADD made no table either
        tools.nft(pod_routes.remove_ruleset())


def _original_default(observed: Observed, record: AttachmentRecord | None) -> DefaultRoute | None:
    if record is not None:
        return DefaultRoute(
            record.default_gateway, record.ifname, record.default_metric, record.default_protocol
        )
    for route in observed.routes:  # no record: the copy in the ingress table
        if (
            pod_routes.route_table(route) == pod_routes.TABLE
            and pod_routes.route_dst(route) == DEFAULT
            and route.get("gateway")
        ):
            return DefaultRoute(str(route["gateway"]), str(route.get("dev")), 0, "")
    return None


def _stop_daemon(container_id: str, ifname: str, daemon: str) -> None:
    UserspaceWireguard(daemon or pod_wireguard.daemon_name(container_id, ifname)).remove()


# --- CHECK ---------------------------------------------------------------------------------------


def check(
    invocation: Invocation,
    config: PluginConfig,
    pod: PodRef,
    address: PodAddress,
    gateway: str | None,
    client: ManagerClient,
) -> None:
    record = attachment_state.read(
        attachment_state.record_path(config.state_dir, invocation.container_id, invocation.ifname)
    )
    record = attachment_state.read(
        attachment_state.record_path(config.state_dir, invocation.container_id, invocation.ifname)
    )
    _enter(invocation.netns)
    tools = _tools()
    observed = _observe(tools)
    if gateway is None:
        if record is not None or observed.link(WG) is not None:
            raise CniError(CHECK_FAILED, f"pod {pod} has no gateway annotation but has {WG}")
        return
    if record is None:
        raise CniError(CHECK_FAILED, f"no record of an ADD of {WG} for pod {pod}")
    if record.gateway_name != gateway or record.pod_ip != address.ip:
        raise CniError(
            CHECK_FAILED,
            f"pod {pod} was set up for configuration {record.gateway_name} at {record.pod_ip}, "
            f"now it names {gateway} at {address.ip}",
        )
    request = NicAddRequest(pod, address.ip, record.public_key, gateway)
    profile = ask(client.nic_check, request)
    problems = _device_problems(observed, record, tools, config, profile)
    plan = pod_routes.plan_routes(
        _pod_network(config, record, profile),
        [
            pod_routes.route_dst(r)
            for r in observed.routes
            if pod_routes.route_table(r) == 0 and not pod_routes.is_ours(r)
        ],
    )
    problems += pod_routes.check_routes(plan, observed.routes, observed.rules)
    if not tools.nft_table_exists("ip", pod_routes.NFT_TABLE):
        problems.append(f"nftables table ip {pod_routes.NFT_TABLE} is missing")
    if problems:
        raise CniError(CHECK_FAILED, f"pod {pod}: " + "; ".join(problems))


def _device_problems(
    observed: Observed,
    record: AttachmentRecord,
    tools: NetnsTools,
    config: PluginConfig,
    profile: GatewayProfile,
) -> list[str]:
    link = observed.link(WG)
    if link is None:
        return [f"{WG} is missing"]
    problems = [] if "UP" in (link.get("flags") or []) else [f"{WG} is down"]
    try:
        device = _wireguard(record.backend, record.daemon, tools, config).read()
    except WireguardFailed as err:
        return [*problems, str(err)]
    peer = device.peers.get(profile.public_key)
    endpoint = f"{profile.endpoint_ip}:{profile.listen_port}"
    if peer is None or len(device.peers) != 1:
        problems.append(f"{WG}'s only peer should be the gateway key {profile.public_key}")
    elif peer.endpoint != endpoint or peer.allowed_ips != {pod_wireguard.ALLOWED_IPS}:
        problems.append(
            f"{WG}'s gateway peer is at {peer.endpoint or 'no endpoint'} for "
            f"{', '.join(sorted(peer.allowed_ips)) or 'nothing'}, expected {endpoint} for "
            f"{pod_wireguard.ALLOWED_IPS}"
        )
    return problems


# --- GC ------------------------------------------------------------------------------------------


def gc(config: PluginConfig, log: TextIO) -> None:
    keep = config.valid_attachments or frozenset()
    for path, record in attachment_state.records(config.state_dir):
        if record is None:
            attachment_state.remove(path)
            continue
        if (record.container_id, record.ifname) in keep:
            continue
        clean_up(record.container_id, record.ifname, record.netns, record, config, log)
        attachment_state.remove(path)
        log.write(
            f"{PLUGIN_NAME}: GC {record.pod_namespace}/{record.pod_name} "
            f"({record.container_id}): removed\n"
        )


# --- Helpers -------------------------------------------------------------------------------------


def _enter(netns: str) -> None:
    try:
        pod_netns.enter(netns)
    except NetnsMissing as err:
        raise CniError(UNKNOWN_CONTAINER, str(err)) from None


def _tools() -> NetnsTools:
    try:
        return NetnsTools()
    except CommandFailed as err:
        raise CniError(DATAPLANE_FAILED, str(err)) from None


def _observe(tools: NetnsTools) -> Observed:
    try:
        return tools.observe()
    except CommandFailed as err:
        raise CniError(DATAPLANE_FAILED, f"reading the pod's network failed: {err}") from None


def _wireguard(backend: str, daemon: str, tools: NetnsTools, config: PluginConfig) -> Wireguard:
    if backend == BACKEND_KERNEL:
        return KernelWireguard(tools)
    return UserspaceWireguard(daemon, config.wireguard_go)
