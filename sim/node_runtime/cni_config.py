"""The CNI side of a pod sandbox, without I/O: which network configuration a node uses (the first
`*.conf`, `*.conflist` or `*.json` of its conf dir in lexical order, as containerd picks it), what
each plugin gets on stdin and in its environment (CNI spec 1.x), how results and errors read,
and conflists for the reference plugins that tests and the dev stack write into a node's conf dir.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

Json = dict[str, Any]
CNI_VERSION: Final = "1.0.0"
CONFIG_EXTENSIONS: Final = (".conf", ".conflist", ".json")
POD_IFNAME: Final = "eth0"


class CniConfigError(ValueError):
    """The node's CNI configuration is missing or malformed."""


@dataclass(frozen=True)
class NetworkList:
    name: str
    cni_version: str
    plugins: tuple[Json, ...]
    source: str  # the file it came from, for messages

    def to_json(self) -> Json:
        return {"cniVersion": self.cni_version, "name": self.name, "plugins": list(self.plugins)}


def pick_config_file(names: list[str]) -> str | None:
    candidates = sorted(n for n in names if n.endswith(CONFIG_EXTENSIONS))
    return candidates[0] if candidates else None


def parse_network_list(text: str, source: str) -> NetworkList:
    try:
        raw = json.loads(text)
    except ValueError as err:
        raise CniConfigError(f"{source}: invalid JSON: {err}") from None
    if not isinstance(raw, dict):
        raise CniConfigError(f"{source}: not a JSON object")
    if source.endswith(".conflist"):
        plugins = raw.get("plugins")
        if not isinstance(plugins, list) or not plugins:
            raise CniConfigError(f'{source}: a conflist needs a non-empty "plugins" list')
    else:
        plugins = [{k: v for k, v in raw.items() if k not in ("cniVersion", "name")}]
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise CniConfigError(f'{source}: no network "name"')
    for plugin in plugins:
        if not isinstance(plugin, dict) or not isinstance(plugin.get("type"), str):
            raise CniConfigError(f'{source}: every plugin needs a "type"')
    return NetworkList(name, str(raw.get("cniVersion", CNI_VERSION)), tuple(plugins), source)


def network_from_json(raw: Json, source: str) -> NetworkList:
    """The list as cached at ADD time (sandbox.py), used again for CHECK and DEL."""
    return NetworkList(str(raw["name"]), str(raw["cniVersion"]), tuple(raw["plugins"]), source)


def loopback_network() -> NetworkList:
    """What containerd runs before the pod's network: `lo` up, through the loopback plugin."""
    return NetworkList("cni-loopback", CNI_VERSION, ({"type": "loopback"},), "(built in)")


def plugin_stdin(
    network: NetworkList,
    plugin: Json,
    prev_result: Json | None,
    runtime_config: Json,
) -> bytes:
    """A plugin's network configuration: its own conf with the list's cniVersion and name,
    the previous result, and the runtimeConfig its `capabilities` ask for."""
    conf: Json = {**plugin, "cniVersion": network.cni_version, "name": network.name}
    if prev_result is not None:
        conf["prevResult"] = prev_result
    capabilities = plugin.get("capabilities") or {}
    wanted = {k: v for k, v in runtime_config.items() if capabilities.get(k)}
    if wanted:
        conf["runtimeConfig"] = wanted
    else:
        conf.pop("runtimeConfig", None)
    return json.dumps(conf).encode()


def cni_args(namespace: str, name: str, infra_container_id: str, uid: str) -> str:
    return (
        f"IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name};"
        f"K8S_POD_INFRA_CONTAINER_ID={infra_container_id};K8S_POD_UID={uid}"
    )


def cni_environment(
    command: str,
    container_id: str,
    netns_path: str,
    ifname: str,
    cni_path: str,
    args: str,
) -> dict[str, str]:
    return {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": netns_path,
        "CNI_IFNAME": ifname,
        "CNI_PATH": cni_path,
        "CNI_ARGS": args,
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    }


def port_mappings(pod: Json) -> list[Json]:
    """runtimeConfig.portMappings from the containers' hostPorts."""
    out = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                out.append(
                    {
                        "hostPort": int(port["hostPort"]),
                        "containerPort": int(port["containerPort"]),
                        "protocol": str(port.get("protocol", "TCP")).lower(),
                        "hostIP": str(port.get("hostIP", "")),
                    }
                )
    return out


def plugin_error(plugin: str, returncode: int, stdout: bytes, stderr: bytes) -> str:
    """A failed plugin's message: the spec's error object ({code, msg, details}) if it printed
    one, else its stderr."""
    try:
        error = json.loads(stdout)
    except ValueError:
        error = None
    if isinstance(error, dict) and ("msg" in error or "code" in error):
        details = f": {error['details']}" if error.get("details") else ""
        return (
            f"plugin type={plugin!r} failed (code {error.get('code')}): {error.get('msg')}{details}"
        )
    text = (stderr or stdout).decode(errors="replace").strip()[-500:]
    return f"plugin type={plugin!r} failed (exit {returncode}): {text or 'no output'}"


def parse_result(plugin: str, stdout: bytes) -> Json:
    try:
        result = json.loads(stdout) if stdout.strip() else {}
    except ValueError:
        raise CniConfigError(f"plugin type={plugin!r} printed no JSON result") from None
    if not isinstance(result, dict):
        raise CniConfigError(f"plugin type={plugin!r} printed no JSON object")
    return result


def first_ip(result: Json) -> str | None:
    """The pod IP: the first address of the result (`ips[0].address` without its prefix)."""
    for entry in result.get("ips") or []:
        address = str(entry.get("address", ""))
        if address:
            return address.split("/")[0]
    return None


def bridge_conflist(
    name: str, bridge: str, subnet: str, ipam_dir: str, *, gateway: bool = True
) -> Json:
    """bridge + host-local: pods on one L2 bridge in the node's namespace, the bridge holding the
    subnet's gateway address. `ipam_dir` keeps allocations per node (host-local's default
    /var/lib/cni/networks would be shared by every node on the machine)."""
    return {
        "cniVersion": CNI_VERSION,
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": gateway,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_dir,
                },
            }
        ],
    }


def ptp_conflist(name: str, subnet: str, ipam_dir: str) -> Json:
    """ptp + host-local: a veth per pod with a /32 route on the node's side."""
    return {
        "cniVersion": CNI_VERSION,
        "name": name,
        "plugins": [
            {
                "type": "ptp",
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_dir,
                },
            }
        ],
    }
