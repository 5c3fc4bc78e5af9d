"""A pod's volumes and a container's mounts: which types the node runtime supports, the files a
configMap / secret / downwardAPI / projected volume holds, where each volumeMount goes.

Pure: fetched objects come in an ObjectStore, ServiceAccount tokens (already requested) by
`TokenSource.key`. Anything the runtime cannot honour raises ContainerConfigError naming it.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any, Final

from sim.node_runtime.container_env import (
    ContainerConfigError,
    PodFacts,
    field_value,
    resource_value,
)
from sim.node_runtime.pod_objects import ObjectKind, ObjectStore

Json = dict[str, Any]
SUPPORTED_TYPES: Final = ("configMap", "secret", "projected", "downwardAPI", "emptyDir", "hostPath")
FILE_TYPES: Final = ("configMap", "secret", "projected", "downwardAPI")
DEFAULT_MODE: Final = 0o644
DEFAULT_TOKEN_SECONDS: Final = 3600
HOST_PATH_TYPES: Final = (
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
)


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the volume's directory
    data: bytes
    mode: int


@dataclass(frozen=True)
class TokenSource:
    """A projected serviceAccountToken: requested through the TokenRequest API, bound to the
    pod, refreshed before it expires (pod_worker.py)."""

    volume: str
    index: int
    audience: str
    expiration_seconds: int
    path: str

    @property
    def key(self) -> str:
        return f"{self.volume}/{self.index}"


@dataclass(frozen=True)
class MountPlan:
    volume: str
    sub_path: str
    target: str  # the container's mountPath
    read_only: bool


def volume_type(volume: Json) -> str:
    kinds = [k for k in volume if k != "name"]
    return kinds[0] if kinds else "emptyDir"  # an empty volume source defaults to emptyDir


def check_volumes(pod: Json) -> None:
    """Refuse volume types and sources the node runtime cannot provide."""
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        kind = volume_type(volume)
        name = volume.get("name")
        if kind not in SUPPORTED_TYPES:
            raise ContainerConfigError(
                f'volume "{name}": unsupported volume type "{kind}" (the node runtime supports '
                f"{', '.join(SUPPORTED_TYPES)})"
            )
        if kind == "hostPath":
            host_type = str((volume["hostPath"] or {}).get("type", ""))
            if host_type not in HOST_PATH_TYPES:
                raise ContainerConfigError(
                    f'volume "{name}": unsupported hostPath type {host_type!r}'
                )
        if kind == "projected":
            for source in (volume["projected"] or {}).get("sources") or []:
                unknown = sorted(
                    set(source) - {"configMap", "secret", "downwardAPI", "serviceAccountToken"}
                )
                if unknown:
                    raise ContainerConfigError(
                        f'volume "{name}": unsupported projected source "{unknown[0]}"'
                    )


def token_sources(pod: Json) -> list[TokenSource]:
    out = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        if volume_type(volume) != "projected":
            continue
        for index, source in enumerate((volume["projected"] or {}).get("sources") or []):
            token = source.get("serviceAccountToken")
            if token is None:
                continue
            out.append(
                TokenSource(
                    volume=str(volume["name"]),
                    index=index,
                    audience=str(token.get("audience", "")),
                    expiration_seconds=int(token.get("expirationSeconds", DEFAULT_TOKEN_SECONDS)),
                    path=_safe_path(str(token.get("path", "")), str(volume["name"])),
                )
            )
    return out


def _safe_path(path: str, volume: str) -> str:
    normal = posixpath.normpath(path)
    if not path or path.startswith("/") or normal == ".." or normal.startswith("../"):
        raise ContainerConfigError(f'volume "{volume}": invalid path {path!r}')
    return normal


def _object_files(
    store: ObjectStore,
    kind: ObjectKind,
    name: str,
    source: Json,
    default_mode: int,
    volume: str,
) -> list[FileEntry]:
    data = store.lookup(kind, name)
    optional = bool(source.get("optional", False))
    if data is None:
        if optional:
            return []
        label = "configmap" if kind == "ConfigMap" else "secret"
        raise ContainerConfigError(f'volume "{volume}": {label} "{name}" not found')
    items = source.get("items")
    if not items:
        return [FileEntry(_safe_path(k, volume), v, default_mode) for k, v in sorted(data.items())]
    out = []
    for item in items:
        key = str(item.get("key", ""))
        if key not in data:
            if optional:
                continue
            raise ContainerConfigError(f'volume "{volume}": {kind} "{name}" has no key "{key}"')
        mode = int(item.get("mode", default_mode))
        out.append(FileEntry(_safe_path(str(item.get("path", key)), volume), data[key], mode))
    return out


def _downward_files(
    pod: Json, items: list[Json], default_mode: int, facts: PodFacts, volume: str
) -> list[FileEntry]:
    out = []
    for item in items:
        path = _safe_path(str(item.get("path", "")), volume)
        mode = int(item.get("mode", default_mode))
        if "fieldRef" in item:
            value = field_value(
                pod, str(item["fieldRef"].get("fieldPath", "")), facts, whole_maps=True
            )
        elif "resourceFieldRef" in item:
            ref = item["resourceFieldRef"]
            value = resource_value(pod, str(ref.get("containerName", "")), ref, facts)
        else:
            raise ContainerConfigError(f'volume "{volume}": downwardAPI item {path} has no source')
        out.append(FileEntry(path, value.encode(), mode))
    return out


def volume_files(
    pod: Json, volume: Json, store: ObjectStore, tokens: dict[str, str], facts: PodFacts
) -> list[FileEntry]:
    """The files of a configMap, secret, downwardAPI or projected volume."""
    name = str(volume.get("name", ""))
    kind = volume_type(volume)
    source = volume.get(kind) or {}
    mode = int(source.get("defaultMode", DEFAULT_MODE))
    if kind == "configMap":
        return _object_files(store, "ConfigMap", str(source.get("name", "")), source, mode, name)
    if kind == "secret":
        return _object_files(store, "Secret", str(source.get("secretName", "")), source, mode, name)
    if kind == "downwardAPI":
        return _downward_files(pod, list(source.get("items") or []), mode, facts, name)
    if kind != "projected":
        raise ContainerConfigError(f'volume "{name}": {kind} has no files')
    out: list[FileEntry] = []
    for index, part in enumerate(source.get("sources") or []):
        if "configMap" in part:
            ref = part["configMap"]
            out += _object_files(store, "ConfigMap", str(ref.get("name", "")), ref, mode, name)
        elif "secret" in part:
            ref = part["secret"]
            out += _object_files(store, "Secret", str(ref.get("name", "")), ref, mode, name)
        elif "downwardAPI" in part:
            out += _downward_files(
                pod, list(part["downwardAPI"].get("items") or []), mode, facts, name
            )
        elif "serviceAccountToken" in part:
            key = f"{name}/{index}"
            if key not in tokens:
                raise ContainerConfigError(f'volume "{name}": no token for source {index}')
            path = _safe_path(str(part["serviceAccountToken"].get("path", "")), name)
            out.append(FileEntry(path, tokens[key].encode(), mode))
    return out


def container_mounts(pod: Json, container: Json) -> list[MountPlan]:
    volumes = {v.get("name") for v in (pod.get("spec") or {}).get("volumes") or []}
    out = []
    for mount in container.get("volumeMounts") or []:
        name = str(mount.get("name", ""))
        target = str(mount.get("mountPath", ""))
        if name not in volumes:
            raise ContainerConfigError(f'volumeMount {target}: volume "{name}" not found')
        if not target.startswith("/"):
            raise ContainerConfigError(f"volumeMount {name}: mountPath {target!r} is not absolute")
        sub_path = str(mount.get("subPath", ""))
        if sub_path:
            sub_path = _safe_path(sub_path, name)
        out.append(
            MountPlan(name, sub_path, posixpath.normpath(target), bool(mount.get("readOnly")))
        )
    return out
