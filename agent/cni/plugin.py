"""`kube-egress-cni`: the chained CNI plugin (docs/pod-side.md).

ADD runs after the main plugin. A pod without the annotation
`kubernetes.azure.com/static-gateway-configuration` gets the main plugin's result back untouched.
For an annotated pod the plugin makes a key pair, asks the CNI manager (NicAdd) for the
configuration's gateway profile (the manager writes the PodEndpoint with the public key), and
builds wg0 in the pod with the gateway as its one peer, the routes of the configuration's
defaultRoute and the ingress return path (pod_attachment.py). DEL removes what ADD made and
succeeds when it is gone already; CHECK compares the pod with what ADD would make; STATUS asks
whether the manager answers; GC removes attachments the runtime no longer lists.

Start-up time is part of every pod's start, so this module imports the standard library and the
small protocol modules only, and pod_attachment (namespaces, WireGuard, routes) only for a pod
that needs it: an unannotated pod's ADD costs the interpreter, these imports and one call to the
manager (bench/cni_add.py prints the figures).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from agent.cni.cni_protocol import (
    INVALID_NETWORK_CONFIG,
    INVALID_POD_GATEWAY,
    LATEST_VERSION,
    PLUGIN_NOT_AVAILABLE,
    SUPPORTED_VERSIONS,
    CniError,
    Invocation,
    PodRef,
    decode_config,
    error_json,
    needs_version,
    output,
    pod_address,
    read_invocation,
)
from agent.cni.manager_api import ManagerError
from agent.cni.manager_client import ManagerClient, ManagerUnavailable, ask
from agent.cni.plugin_config import PluginConfig
from contracts import kube_names

PLUGIN_NAME = kube_names.CNI_PLUGIN_TYPE
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

Handler = Callable[[Invocation, PluginConfig, TextIO], Mapping[str, Any] | None]


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
        handlers: dict[str, Handler] = {
            "ADD": add,
            "DEL": delete,
            "CHECK": check,
            "STATUS": status,
            "GC": gc,
        }
        result = handlers[invocation.command](invocation, config, log)
    except CniError as err:
        return 1, output(error_json(err, version))
    return 0, output(result) if result is not None else ""


def add(invocation: Invocation, config: PluginConfig, log: TextIO) -> Mapping[str, Any]:
    prev = _prev_result(config)
    pod = invocation.pod()
    address = pod_address(prev, invocation.ifname)
    client = ManagerClient(config.socket_path)
    info = ask(client.pod_retrieve, pod)
    gateway = info.annotations.get(kube_names.POD_GATEWAY_ANNOTATION)
    if gateway is None:
        return {**prev, "cniVersion": config.cni_version}
    check_gateway_name(gateway, pod)
    from agent.cni import pod_attachment  # only annotated pods pay for loading it

    return pod_attachment.set_up(
        invocation, config, prev, pod, info.uid, address, gateway, client, log
    )


def delete(invocation: Invocation, config: PluginConfig, log: TextIO) -> None:
    from agent.cni import pod_attachment

    pod_attachment.delete(invocation, config, log)


def check(invocation: Invocation, config: PluginConfig, log: TextIO) -> None:
    needs_version("CHECK", config.cni_version, "0.4.0")
    prev = _prev_result(config)
    pod = invocation.pod()
    address = pod_address(prev, invocation.ifname)
    client = ManagerClient(config.socket_path)
    gateway = ask(client.pod_retrieve, pod).annotations.get(kube_names.POD_GATEWAY_ANNOTATION)
    from agent.cni import pod_attachment

    pod_attachment.check(invocation, config, pod, address, gateway, client)


def status(invocation: Invocation, config: PluginConfig, log: TextIO) -> None:
    needs_version("STATUS", config.cni_version, "1.1.0")
    try:
        ManagerClient(config.socket_path).status()
    except (ManagerUnavailable, ManagerError) as err:
        raise CniError(PLUGIN_NOT_AVAILABLE, str(err)) from None


def gc(invocation: Invocation, config: PluginConfig, log: TextIO) -> None:
    needs_version("GC", config.cni_version, "1.1.0")
    from agent.cni import pod_attachment

    pod_attachment.gc(config, log)


def _prev_result(config: PluginConfig) -> Mapping[str, Any]:
    if config.prev_result is None:
        raise CniError(
            INVALID_NETWORK_CONFIG,
            "prevResult is missing",
            f"{PLUGIN_NAME} is a chained plugin: it runs after the main plugin, in the same "
            "conflist",
        )
    return config.prev_result


def check_gateway_name(name: str, pod: PodRef) -> None:
    """The annotation's value names a configuration in the pod's namespace."""
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


if __name__ == "__main__":
    sys.exit(main())
