"""kube-egress-cni's network configuration: our entry of the conflist as the CNI manager writes
it (manager_settings.conf_entry), plus what the runtime adds (prevResult, GC's attachments)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.cni.cni_protocol import INVALID_NETWORK_CONFIG, CniError, read_cidrs, read_str
from contracts import kube_names

DEFAULT_STATE_DIR = "/var/lib/cni/egressgateway"
BACKEND_AUTO = "auto"
BACKEND_KERNEL = "kernel"
BACKEND_USERSPACE = "wireguard-go"
BACKENDS = (BACKEND_AUTO, BACKEND_KERNEL, BACKEND_USERSPACE)


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
        backend = read_str(raw, "wireguardBackend", BACKEND_AUTO)
        if backend not in BACKENDS:
            raise CniError(
                INVALID_NETWORK_CONFIG,
                f"wireguardBackend {backend!r} is not one of {', '.join(BACKENDS)}",
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
            state_dir=read_str(raw, "stateDir") or DEFAULT_STATE_DIR,
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
