"""The CNI protocol as a chained plugin sees it (CNI spec 1.1, SPEC.md of
containernetworking/cni): the CNI_* environment, the network configuration on stdin, results and
errors on stdout.

Everything here is pure and standard-library only: the plugins import it on every pod start.
Errors are `CniError(code, msg, details)`, written by `error_json` as the spec's error object.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Versions whose result format this plugin reads and writes (0.3.0 introduced today's "ips" /
# "interfaces" result; earlier versions had a different one).
SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST_VERSION = SUPPORTED_VERSIONS[-1]

# Error codes of the spec ("Error" section), and ours (100 and up are the plugin's own).
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENVIRONMENT = 4
IO_FAILURE = 5
DECODING_FAILURE = 6
INVALID_NETWORK_CONFIG = 7
TRY_AGAIN_LATER = 11
PLUGIN_NOT_AVAILABLE = 50
GATEWAY_NOT_FOUND = 101
GATEWAY_DELETING = 102
POD_NOT_FOUND = 103
INVALID_POD_GATEWAY = 104  # the pod's annotation, key or address cannot be used
MANAGER_REFUSED = 105  # the manager (or the API server behind it) refused the request
DATAPLANE_FAILED = 106  # setting up wg0, routes or rules in the pod failed (all undone)
CHECK_FAILED = 107  # CHECK found the pod's setup differing from what it should be

COMMANDS = ("ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC")
# Which CNI_* variables each command needs (the spec's "Parameters" table).
_REQUIRED_ENV = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
    "GC": ("CNI_PATH",),
    "STATUS": ("CNI_PATH",),
    "VERSION": (),
}
_CONTAINER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class CniError(Exception):
    """A failure reported to the runtime as the spec's error object."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details


def error_json(error: CniError, cni_version: str = LATEST_VERSION) -> dict[str, Any]:
    out: dict[str, Any] = {"cniVersion": cni_version, "code": error.code, "msg": error.msg}
    if error.details:
        out["details"] = error.details
    return out


def version_tuple(version: str) -> tuple[int, int, int]:
    parts = version.split(".")
    if len(parts) != 3 or not all(part.isdecimal() for part in parts):
        raise ValueError(version)
    return int(parts[0]), int(parts[1]), int(parts[2])


# --- Environment ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Invocation:
    """One run of a plugin, from its CNI_* environment."""

    command: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: Mapping[str, str] | None = None
    path: tuple[str, ...] = ()

    def pod(self) -> PodRef:
        """The pod from CNI_ARGS (K8S_POD_NAMESPACE, K8S_POD_NAME), which Kubernetes runtimes
        pass; INVALID_ENVIRONMENT when they are missing or not Kubernetes names."""
        args = self.args or {}
        namespace = args.get("K8S_POD_NAMESPACE", "")
        name = args.get("K8S_POD_NAME", "")
        if not namespace or not name:
            raise CniError(
                INVALID_ENVIRONMENT,
                "CNI_ARGS lacks K8S_POD_NAMESPACE or K8S_POD_NAME",
                "kube-egress-cni runs for Kubernetes pods; the runtime passes the pod in CNI_ARGS",
            )
        if len(namespace) > 63 or not _DNS_LABEL.fullmatch(namespace):
            raise CniError(
                INVALID_ENVIRONMENT, f"K8S_POD_NAMESPACE {namespace!r} is not a namespace name"
            )
        if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
            raise CniError(INVALID_ENVIRONMENT, f"K8S_POD_NAME {name!r} is not a pod name")
        return PodRef(namespace, name)


def parse_cni_args(text: str) -> dict[str, str]:
    """CNI_ARGS: "KEY=VALUE;KEY=VALUE" (empty parts ignored)."""
    out: dict[str, str] = {}
    for part in text.split(";"):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise CniError(INVALID_ENVIRONMENT, f"CNI_ARGS part {part!r} is not KEY=VALUE")
        out[key] = value
    return out


def check_ifname(name: str, variable: str = "CNI_IFNAME") -> str:
    if (
        not name
        or len(name) > 15
        or name in (".", "..")
        or any(c in name for c in "/:")
        or any(c.isspace() for c in name)
    ):
        raise CniError(INVALID_ENVIRONMENT, f"{variable} {name!r} is not an interface name")
    return name


def read_invocation(environ: Mapping[str, str]) -> Invocation:
    command = environ.get("CNI_COMMAND", "")
    if not command:
        raise CniError(INVALID_ENVIRONMENT, "CNI_COMMAND is not set")
    if command not in COMMANDS:
        raise CniError(
            INVALID_ENVIRONMENT,
            f"unknown CNI_COMMAND {command!r}",
            f"supported: {', '.join(COMMANDS)}",
        )
    missing = [name for name in _REQUIRED_ENV[command] if not environ.get(name)]
    if missing:
        raise CniError(INVALID_ENVIRONMENT, f"{command} needs {', '.join(missing)}, not set")
    container_id = environ.get("CNI_CONTAINERID", "")
    if container_id and not _CONTAINER_ID.fullmatch(container_id):
        raise CniError(INVALID_ENVIRONMENT, f"CNI_CONTAINERID {container_id!r} is not valid")
    ifname = environ.get("CNI_IFNAME", "")
    if ifname:
        check_ifname(ifname)
    netns = environ.get("CNI_NETNS", "")
    if netns and not netns.startswith("/"):
        raise CniError(INVALID_ENVIRONMENT, f"CNI_NETNS {netns!r} is not an absolute path")
    return Invocation(
        command=command,
        container_id=container_id,
        netns=netns,
        ifname=ifname,
        args=parse_cni_args(environ.get("CNI_ARGS", "")),
        path=tuple(p for p in environ.get("CNI_PATH", "").split(":") if p),
    )


# --- Network configuration -----------------------------------------------------------------------


def decode_config(stdin: bytes) -> dict[str, Any]:
    """The network configuration object (DECODING_FAILURE when it is not JSON or not an object)
    with a supported `cniVersion` (INCOMPATIBLE_VERSION otherwise)."""
    try:
        raw = json.loads(stdin)
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        raise CniError(
            DECODING_FAILURE, "network configuration on stdin is not JSON", str(err)
        ) from None
    if not isinstance(raw, dict):
        raise CniError(DECODING_FAILURE, "network configuration on stdin is not a JSON object")
    version = raw.get("cniVersion")
    if not isinstance(version, str) or not version:
        raise CniError(INVALID_NETWORK_CONFIG, "network configuration has no cniVersion")
    check_version(version)
    return raw


def check_version(version: str) -> str:
    if version not in SUPPORTED_VERSIONS:
        raise CniError(
            INCOMPATIBLE_VERSION,
            f"cniVersion {version} is not supported",
            f"supported: {', '.join(SUPPORTED_VERSIONS)}",
        )
    return version


def needs_version(command: str, version: str, minimum: str) -> None:
    if version_tuple(version) < version_tuple(minimum):
        raise CniError(
            INCOMPATIBLE_VERSION,
            f"{command} needs cniVersion {minimum} or later, the configuration has {version}",
        )


def read_str(raw: Mapping[str, Any], key: str, default: str = "") -> str:
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise CniError(INVALID_NETWORK_CONFIG, f"{key} must be a string")
    return value


def read_cidrs(raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """A list of IPv4 CIDRs, normalized to their network address."""
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise CniError(INVALID_NETWORK_CONFIG, f"{key} must be a list of CIDR strings")
    return tuple(parse_cidr(item, key, INVALID_NETWORK_CONFIG) for item in value)


def parse_cidr(text: str, where: str, code: int) -> str:
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise CniError(code, f"{where}: {text!r} is not a CIDR") from None
    if network.version != 4:
        raise CniError(code, f"{where}: {text!r} is not IPv4 (the pod side is IPv4 only)")
    return str(network)


@dataclass(frozen=True)
class PodAddress:
    ip: str  # the pod's IPv4 address on its main interface
    prefix_length: int


def pod_address(prev_result: Mapping[str, Any], ifname: str) -> PodAddress:
    """The IPv4 address the main plugin gave interface `ifname` in the pod (prevResult `ips`
    entries point at `interfaces` by index; an entry without one is taken when no entry
    points at `ifname`)."""
    ips = prev_result.get("ips")
    interfaces = prev_result.get("interfaces") or []
    if not isinstance(ips, list) or not isinstance(interfaces, list):
        raise CniError(INVALID_NETWORK_CONFIG, "prevResult has no list of ips")
    ours: list[str] = []
    unattached: list[str] = []
    for entry in ips:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("address"), str):
            raise CniError(INVALID_NETWORK_CONFIG, "prevResult ips entry without an address")
        index = entry.get("interface")
        if isinstance(index, int) and 0 <= index < len(interfaces):
            interface = interfaces[index]
            named = interface.get("name") if isinstance(interface, Mapping) else None
            sandbox = interface.get("sandbox") if isinstance(interface, Mapping) else None
            if named == ifname and sandbox:
                ours.append(entry["address"])
        elif index is None:
            unattached.append(entry["address"])
    for address in ours or unattached:
        try:
            interface_address = ipaddress.ip_interface(address)
        except ValueError:
            raise CniError(
                INVALID_NETWORK_CONFIG, f"prevResult address {address!r} is not an IP/prefix"
            ) from None
        if interface_address.version == 4:
            ip = interface_address.ip
            if ip.is_unspecified or ip.is_multicast or ip.is_loopback:
                raise CniError(
                    INVALID_NETWORK_CONFIG, f"prevResult address {address!r} is not a pod address"
                )
            return PodAddress(str(ip), interface_address.network.prefixlen)
    raise CniError(
        INVALID_NETWORK_CONFIG,
        f"prevResult has no IPv4 address for {ifname}",
        "the main plugin must give the pod an IPv4 address (the pod side is IPv4 only)",
    )


def output(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))
