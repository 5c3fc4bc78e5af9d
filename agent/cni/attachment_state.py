"""One small JSON file per attachment (container ID + interface) in the plugin's state directory:
what DEL, CHECK and GC need to find and undo what ADD made when the runtime tells them little
(DEL may come without a namespace, GC with only the attachments to keep).

It holds the pod, the namespace path, the backend and wireguard-go name, the pod's *public* key
and the original default route. Never the private key: that exists only in the WireGuard device.
Written before ADD changes anything, so a plugin killed half-way leaves a record GC can act on.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class AttachmentRecord:
    container_id: str
    ifname: str
    netns: str
    pod_namespace: str
    pod_name: str
    gateway_name: str
    backend: str
    daemon: str  # wireguard-go's name; "" for the kernel module
    public_key: str  # base64
    pod_ip: str
    default_gateway: str  # the main interface's original default route, restored by DEL
    default_metric: int = 0
    default_protocol: str = ""


def record_path(state_dir: str, container_id: str, ifname: str) -> Path:
    # Container IDs are [A-Za-z0-9_.-] and interface names have no "/" (cni_protocol checks).
    return Path(state_dir) / f"{container_id}.{ifname}.json"


def write(state_dir: str, record: AttachmentRecord) -> Path:
    Path(state_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    path = record_path(state_dir, record.container_id, record.ifname)
    temporary = path.with_name(f"{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(record), handle)
    temporary.replace(path)
    return path


def read(path: Path) -> AttachmentRecord | None:
    """The record at `path`; None when absent or unreadable (then DEL does what it can without)."""
    try:
        raw = json.loads(path.read_text())
        return AttachmentRecord(**raw)
    except (FileNotFoundError, ValueError, TypeError):
        return None


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def records(state_dir: str) -> list[tuple[Path, AttachmentRecord | None]]:
    """Every record file in the directory (path, record or None when unreadable)."""
    try:
        paths = sorted(Path(state_dir).iterdir())
    except FileNotFoundError:
        return []
    return [(path, read(path)) for path in paths if path.name.endswith(".json")]
