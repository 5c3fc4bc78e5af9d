"""A container's environment and command line, as the kubelet builds them: defaults (PATH with the
project's venv, HOSTNAME, KUBERNETES_SERVICE_*), then `envFrom`, then `env` with `$(VAR)`
expansion and downward-API, ConfigMap and Secret references; `command` + `args` expanded the same
way. Pure: the objects come in an ObjectStore, the node's facts in PodFacts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from sim.node_runtime.pod_objects import ObjectKind, ObjectStore
from sim.node_runtime.quantity import QuantityError, resource_field_value

Json = dict[str, Any]
_ENV_NAME: Final = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_SUBSCRIPT: Final = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")
_ENV_FROM: Final[tuple[tuple[ObjectKind, str], ...]] = (
    ("ConfigMap", "configMapRef"),
    ("Secret", "secretRef"),
)


class ContainerConfigError(ValueError):
    """The container cannot be configured (reason CreateContainerConfigError): a missing
    ConfigMap, Secret or key, an unsupported field path, an unknown volume."""


class ContainerCreateError(ValueError):
    """The container cannot be created (reason CreateContainerError): no command, an executable
    that is not there."""


@dataclass(frozen=True)
class PodFacts:
    node_name: str
    host_ip: str
    pod_ip: str
    allocatable: dict[str, str] = field(default_factory=dict)


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: defined variables are replaced, undefined ones left as
    written, `$$` is a literal `$`."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2 : end]
                    out.append(env[name] if name in env else text[i : end + 1])
                    i = end + 1
                    continue
        out.append(text[i])
        i += 1
    return "".join(out)


def field_value(pod: Json, path: str, facts: PodFacts, *, whole_maps: bool = False) -> str:
    """A downward-API fieldRef. `whole_maps` allows metadata.labels/annotations (volumes only),
    written one `key="value"` per line, sorted."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName") or facts.node_name,
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": facts.host_ip,
        "status.hostIPs": facts.host_ip,
        "status.podIP": facts.pod_ip,
        "status.podIPs": facts.pod_ip,
    }
    if path in simple:
        return str(simple[path])
    subscript = _SUBSCRIPT.match(path)
    if subscript:
        return str((meta.get(subscript.group(1)) or {}).get(subscript.group(2), ""))
    if whole_maps and path in ("metadata.labels", "metadata.annotations"):
        values = meta.get(path.split(".")[1]) or {}
        return "".join(f'{k}="{_quote(str(v))}"\n' for k, v in sorted(values.items()))
    raise ContainerConfigError(f"unsupported fieldRef fieldPath {path!r}")


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def resource_value(pod: Json, container_name: str, ref: Json, facts: PodFacts) -> str:
    containers = [
        *((pod.get("spec") or {}).get("initContainers") or []),
        *((pod.get("spec") or {}).get("containers") or []),
    ]
    found = next((c for c in containers if c.get("name") == container_name), None)
    if found is None:
        raise ContainerConfigError(f"resourceFieldRef: no container {container_name!r}")
    resources = found.get("resources") or {}
    try:
        return resource_field_value(
            str(ref.get("resource", "")),
            dict(resources.get("requests") or {}),
            dict(resources.get("limits") or {}),
            facts.allocatable,
            ref.get("divisor"),
        )
    except QuantityError as err:
        raise ContainerConfigError(f"resourceFieldRef: {err}") from None


def _key_ref(store: ObjectStore, kind: ObjectKind, ref: Json) -> str | None:
    name, key = str(ref.get("name", "")), str(ref.get("key", ""))
    optional = bool(ref.get("optional", False))
    data = store.lookup(kind, name)
    label = "configmap" if kind == "ConfigMap" else "secret"
    if data is None:
        if optional:
            return None
        raise ContainerConfigError(f'{label} "{name}" not found')
    if key not in data:
        if optional:
            return None
        raise ContainerConfigError(f"couldn't find key {key} in {kind} {name}")
    return data[key].decode(errors="replace")


def container_environment(
    pod: Json,
    container: Json,
    store: ObjectStore,
    facts: PodFacts,
    defaults: dict[str, str],
) -> dict[str, str]:
    env = dict(defaults)
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix", ""))
        for kind, field_name in _ENV_FROM:
            if field_name not in source:
                continue
            ref = source[field_name]
            name = str(ref.get("name", ""))
            data = store.lookup(kind, name)
            if data is None:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(f'{kind.lower()} "{name}" not found')
            for key, raw in data.items():
                if _ENV_NAME.match(prefix + key):
                    env[prefix + key] = raw.decode(errors="replace")
    for var in container.get("env") or []:
        name = str(var.get("name", ""))
        if "valueFrom" not in var:
            env[name] = expand(str(var.get("value", "")), env)
            continue
        value_from = var["valueFrom"] or {}
        value: str | None
        if "fieldRef" in value_from:
            value = field_value(pod, str(value_from["fieldRef"].get("fieldPath", "")), facts)
        elif "resourceFieldRef" in value_from:
            ref = value_from["resourceFieldRef"]
            value = resource_value(pod, ref.get("containerName") or container["name"], ref, facts)
        elif "configMapKeyRef" in value_from:
            value = _key_ref(store, "ConfigMap", value_from["configMapKeyRef"])
        elif "secretKeyRef" in value_from:
            value = _key_ref(store, "Secret", value_from["secretKeyRef"])
        else:
            raise ContainerConfigError(f"env {name}: unsupported valueFrom {sorted(value_from)}")
        if value is not None:
            env[name] = value
    return env


def command_line(container: Json, env: dict[str, str]) -> list[str]:
    """`command` replaces the image's entrypoint and `args` follow it; with no image to take an
    entrypoint from, `args` alone start with the command."""
    argv = [
        expand(str(a), env)
        for a in [*(container.get("command") or []), *(container.get("args") or [])]
    ]
    if not argv:
        raise ContainerCreateError(
            f"container {container.get('name')}: no command or args (the node runtime runs no "
            "images, so there is no entrypoint to fall back to)"
        )
    return argv


def default_environment(
    *,
    path: str,
    service_host: str,
    service_port: int,
    hostname: str,
) -> dict[str, str]:
    """What every container gets before its own env: PATH, HOME, HOSTNAME and the
    `kubernetes` Service variables."""
    port = str(service_port)
    return {
        "PATH": path,
        "HOME": "/root",
        "HOSTNAME": hostname,
        "KUBERNETES_SERVICE_HOST": service_host,
        "KUBERNETES_SERVICE_PORT": port,
        "KUBERNETES_SERVICE_PORT_HTTPS": port,
        "KUBERNETES_PORT": f"tcp://{service_host}:{port}",
        f"KUBERNETES_PORT_{port}_TCP": f"tcp://{service_host}:{port}",
        f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
        f"KUBERNETES_PORT_{port}_TCP_PORT": port,
        f"KUBERNETES_PORT_{port}_TCP_ADDR": service_host,
    }
