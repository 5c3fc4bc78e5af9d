"""`kube-egress-cni`: the chained CNI plugin (docs/pod-side.md).

ADD runs after the main plugin. A pod without the annotation
`kubernetes.azure.com/static-gateway-configuration` gets the main plugin's result back untouched.
For an annotated pod the plugin makes a key pair, asks the CNI manager (NicAdd) for the
configuration's gateway profile (the manager writes the PodEndpoint with the public key), and
builds wg0 in the pod with the gateway as its one peer, the routes of the configuration's
defaultRoute and the ingress return path. Any failure after NicAdd undoes all of it (NicDel
included) before the error is reported. DEL removes what ADD made and succeeds when it is gone
already; CHECK compares the pod with what ADD would make; STATUS asks whether the manager
answers; GC removes attachments the runtime no longer lists.

Start-up time is part of every pod's start: this module and what it imports use the standard
library only (bench/cni_add.py prints the import time).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

from agent.cni import attachment_state, manager_api, pod_netns, pod_routes, pod_wireguard
from agent.cni.attachment_state import AttachmentRecord
from agent.cni.cni_protocol import (
    CHECK_FAILED,
    DATAPLANE_FAILED,
    GATEWAY_DELETING,
    GATEWAY_NOT_FOUND,
    INVALID_NETWORK_CONFIG,
    INVALID_POD_GATEWAY,
    IO_FAILURE,
    LATEST_VERSION,
    MANAGER_REFUSED,
    PLUGIN_NOT_AVAILABLE,
    POD_NOT_FOUND,
    SUPPORTED_VERSIONS,
    TRY_AGAIN_LATER,
    UNKNOWN_CONTAINER,
    CniError,
    Invocation,
    PodRef,
    decode_config,
    error_json,
    needs_version,
    output,
    pod_address,
    read_cidrs,
    read_invocation,
    read_str,
)
from agent.cni.manager_api import GatewayProfile, ManagerError, NicAddRequest, NicDelRequest
from agent.cni.manager_client import ManagerClient, ManagerUnavailable
from agent.cni.pod_keys import PodKeyPair
from agent.cni.pod_netns import CommandFailed, NetnsMissing, NetnsTools, Observed
from agent.cni.pod_routes import DEFAULT, DefaultRoute, PodNetwork, RoutePlan
from agent.cni.pod_wireguard import KernelWireguard, UserspaceWireguard, WireguardFailed
from contracts import kube_names

T = TypeVar("T")
Wireguard = UserspaceWireguard | KernelWireguard

PLUGIN_NAME = kube_names.CNI_PLUGIN_TYPE
WG = kube_names.POD_WIREGUARD_INTERFACE
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_KIND_CODES = {
    manager_api.UNAVAILABLE: TRY_AGAIN_LATER,
    manager_api.NOT_READY: TRY_AGAIN_LATER,
    manager_api.NOT_FOUND: GATEWAY_NOT_FOUND,
    manager_api.DELETING: GATEWAY_DELETING,
    manager_api.POD_NOT_FOUND: POD_NOT_FOUND,
    manager_api.INVALID: INVALID_POD_GATEWAY,
    manager_api.REFUSED: MANAGER_REFUSED,
    manager_api.MISMATCH: CHECK_FAILED,
    manager_api.INTERNAL: MANAGER_REFUSED,
}


@dataclass(frozen=True)
class PluginConfig:
    """Our entry of the conflist, as the CNI manager writes it (manager_settings.conf_entry)."""

    cni_version: str
    name: str
    socket_path: str
    exception_cidrs: tuple[str, ...]  # `excludedCIDRs`: never through the gateway
    cluster_cidrs: tuple[str, ...]  # `clusterCIDRs`: kept on the main interface
    state_dir: str
    backend: str
    wireguard_go: str
    prev_result: Mapping[str, Any] | None
    valid_attachments: frozenset[tuple[str, str]] | None  # GC's cni.dev/valid-attachments

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PluginConfig:
        socket_path = read_str(raw, "socketPath")
        if not socket_path:
            raise CniError(
                INVALID_NETWORK_CONFIG,
                "socketPath is missing",
                "the CNI manager writes its socket's path into the conflist entry",
            )
        if not socket_path.startswith("/"):
            raise CniError(
                INVALID_NETWORK_CONFIG,
                f"socketPath {socket_path!r} is not the absolute path of the manager's socket",
            )
        backend = read_str(raw, "wireguardBackend", pod_wireguard.BACKEND_AUTO)
        if backend not in pod_wireguard.BACKENDS:
            raise CniError(
                INVALID_NETWORK_CONFIG,
                f"wireguardBackend {backend!r} is not one of {', '.join(pod_wireguard.BACKENDS)}",
            )
        prev = raw.get("prevResult")
        if prev is not None and not isinstance(prev, dict):
            raise CniError(INVALID_NETWORK_CONFIG, "prevResult is not a JSON object")
        exceptions = (
            read_cidrs(raw, "excludedCIDRs")
            if raw.get("excludedCIDRs") is not None
            else kube_names.DEFAULT_CNI_EXCEPTION_CIDRS
        )
        return cls(
            cni_version=str(raw["cniVersion"]),
            name=read_str(raw, "name"),
            socket_path=socket_path,
            exception_cidrs=tuple(exceptions),
            cluster_cidrs=read_cidrs(raw, "clusterCIDRs"),
            state_dir=read_str(raw, "stateDir") or attachment_state.DEFAULT_STATE_DIR,
            backend=backend,
            wireguard_go=read_str(raw, "wireguardGo") or "wireguard-go",
            prev_result=prev,
            valid_attachments=_valid_attachments(raw),
        )


def _valid_attachments(raw: Mapping[str, Any]) -> frozenset[tuple[str, str]] | None:
    listed = raw.get("cni.dev/valid-attachments")
    if listed is None:
        return None
    if not isinstance(listed, list):
        raise CniError(INVALID_NETWORK_CONFIG, "cni.dev/valid-attachments is not a list")
    out: set[tuple[str, str]] = set()
    for item in listed:
        if not isinstance(item, Mapping) or not isinstance(item.get("containerID"), str):
            raise CniError(INVALID_NETWORK_CONFIG, "a valid attachment without containerID")
        out.add((item["containerID"], str(item.get("ifname", ""))))
    return frozenset(out)


# --- Entry point ---------------------------------------------------------------------------------


def main() -> int:
    try:
        stdin = sys.stdin.buffer.read()
    except (OSError, ValueError):
        stdin = b""
    code, text = run(os.environ, stdin, sys.stderr)
    if text:
        sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return code


def run(environ: Mapping[str, str], stdin: bytes, log: TextIO) -> tuple[int, str]:
    """(exit code, stdout) of one plugin run."""
    version = LATEST_VERSION
    try:
        invocation = read_invocation(environ)
        if invocation.command == "VERSION":
            return 0, output(
                {"cniVersion": LATEST_VERSION, "supportedVersions": SUPPORTED_VERSIONS}
            )
        raw = decode_config(stdin)
        version = str(raw["cniVersion"])
        config = PluginConfig.from_json(raw)
        handlers: dict[str, Callable[[Invocation, PluginConfig, TextIO], Mapping[str, Any] | None]]
        handlers = {"ADD": add, "DEL": delete, "CHECK": check, "STATUS": status, "GC": gc}
        result = handlers[invocation.command](invocation, config, log)
    except CniError as err:
        return 1, output(error_json(err, version))
    return 0, output(result) if result is not None else ""


# --- ADD -----------------------------------------------------------------------------------------


def add(invocation: Invocation, config: PluginConfig, log: TextIO) -> Mapping[str, Any]:
    prev = _prev_result(config)
    pod = invocation.pod()
    address = pod_address(prev, invocation.ifname)
    client = ManagerClient(config.socket_path)
    gateway = _ask(client.pod_annotations, pod).get(kube_names.POD_GATEWAY_ANNOTATION)
    if gateway is None:
        return {**prev, "cniVersion": config.cni_version}
    _check_gateway_name(gateway, pod)

    _enter(invocation.netns)
    tools = _tools()
    observed = _observe(tools)
    ifname = invocation.ifname
    if observed.link(ifname) is None:
        raise CniError(
            INVALID_NETWORK_CONFIG, f"{ifname} is not in the pod's namespace {invocation.netns}"
        )
    original = pod_routes.default_route(observed.routes, ifname)
    if original is None:
        raise CniError(
            INVALID_NETWORK_CONFIG,
            f"the pod has no IPv4 default route via {ifname}",
            "the main plugin must give the pod a default route (its gateway is where traffic "
            "that bypasses wg0 goes)",
        )
    record_path = attachment_state.record_path(config.state_dir, invocation.container_id, ifname)
    backend = pod_wireguard.choose_backend(config.backend)
    daemon = (
        pod_wireguard.daemon_name(invocation.container_id, ifname)
        if backend == pod_wireguard.BACKEND_USERSPACE
        else ""
    )
    if _has_leftovers(observed, daemon, record_path):
        # An earlier ADD of this attachment that was never deleted: start from a clean pod.
        _undo_netns(tools, ifname, daemon, attachment_state.read(record_path))
        _stop_daemon(invocation.container_id, ifname, daemon)
        observed = _observe(tools)

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

    request = NicAddRequest(pod, address.ip, keys.public_key_base64, gateway)
    try:
        profile = _ask(client.nic_add, request, on_unavailable=lambda: _forget(client, record))
    except CniError:
        attachment_state.remove(record_path)
        raise
    try:
        plan = _build(tools, config, record, keys, profile)
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
) -> RoutePlan:
    """wg0, its routes, the ingress return path; raises on the first failure (the caller
    undoes)."""
    wireguard = _wireguard(record.backend, record.daemon, tools, config)
    link = wireguard.create()
    wireguard.configure(keys, profile)
    existing = [
        pod_routes.route_dst(r) for r in tools.observe().routes if pod_routes.route_table(r) == 0
    ]
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


# --- DEL -----------------------------------------------------------------------------------------


def delete(invocation: Invocation, config: PluginConfig, log: TextIO) -> None:
    """Remove what ADD made; whatever is already gone is fine (spec: DEL is idempotent)."""
    ifname = invocation.ifname
    path = attachment_state.record_path(config.state_dir, invocation.container_id, ifname)
    record = attachment_state.read(path)
    _clean_up(invocation.container_id, ifname, invocation.netns, record, config, log)
    attachment_state.remove(path)
    if record is not None:
        log.write(f"{PLUGIN_NAME}: DEL {record.pod_namespace}/{record.pod_name}: removed {WG}\n")


def _clean_up(
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


def check(invocation: Invocation, config: PluginConfig, log: TextIO) -> None:
    needs_version("CHECK", config.cni_version, "0.4.0")
    prev = _prev_result(config)
    pod = invocation.pod()
    address = pod_address(prev, invocation.ifname)
    client = ManagerClient(config.socket_path)
    gateway = _ask(client.pod_annotations, pod).get(kube_names.POD_GATEWAY_ANNOTATION)
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
    profile = _ask(client.nic_check, request)
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


# --- STATUS and GC -------------------------------------------------------------------------------


def status(invocation: Invocation, config: PluginConfig, log: TextIO) -> None:
    needs_version("STATUS", config.cni_version, "1.1.0")
    try:
        ManagerClient(config.socket_path).status()
    except (ManagerUnavailable, ManagerError) as err:
        raise CniError(PLUGIN_NOT_AVAILABLE, str(err)) from None


def gc(invocation: Invocation, config: PluginConfig, log: TextIO) -> None:
    needs_version("GC", config.cni_version, "1.1.0")
    keep = config.valid_attachments or frozenset()
    for path, record in attachment_state.records(config.state_dir):
        if record is None:
            attachment_state.remove(path)
            continue
        if (record.container_id, record.ifname) in keep:
            continue
        _clean_up(record.container_id, record.ifname, record.netns, record, config, log)
        attachment_state.remove(path)
        log.write(
            f"{PLUGIN_NAME}: GC {record.pod_namespace}/{record.pod_name} "
            f"({record.container_id}): removed\n"
        )


# --- Helpers -------------------------------------------------------------------------------------


def _prev_result(config: PluginConfig) -> Mapping[str, Any]:
    if config.prev_result is None:
        raise CniError(
            INVALID_NETWORK_CONFIG,
            "prevResult is missing",
            f"{PLUGIN_NAME} is a chained plugin: it runs after the main plugin, in the same "
            "conflist",
        )
    return config.prev_result


def _check_gateway_name(name: str, pod: PodRef) -> None:
    if "/" in name:
        raise CniError(
            INVALID_POD_GATEWAY,
            f"pod {pod}: annotation {kube_names.POD_GATEWAY_ANNOTATION}={name!r} names a "
            f"configuration in another namespace; a pod can only use a "
            f"StaticGatewayConfiguration in its own namespace ({pod.namespace})",
        )
    if not name or len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        raise CniError(
            INVALID_POD_GATEWAY,
            f"pod {pod}: annotation {kube_names.POD_GATEWAY_ANNOTATION}={name!r} is not the name "
            "of a StaticGatewayConfiguration",
        )


def _ask(
    call: Callable[[Any], T], argument: Any, *, on_unavailable: Callable[[], None] | None = None
) -> T:
    """A manager call, its failures as CNI errors."""
    try:
        return call(argument)
    except ManagerUnavailable as err:
        if on_unavailable is not None:
            on_unavailable()
        raise CniError(TRY_AGAIN_LATER, str(err), "try again once the CNI manager runs") from None
    except ManagerError as err:
        raise CniError(_KIND_CODES.get(err.kind, MANAGER_REFUSED), err.message) from None


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
    if backend == pod_wireguard.BACKEND_KERNEL:
        return KernelWireguard(tools)
    return UserspaceWireguard(daemon, config.wireguard_go)


if __name__ == "__main__":
    sys.exit(main())
