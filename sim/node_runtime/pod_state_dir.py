"""What the runtime keeps of each pod in its state dir, so that a restarted runtime knows what it
left behind:

    <state>/pods/<uid>/pod.json             namespace, name, uid
    <state>/pods/<uid>/sandbox.json         netns, CNI container id, the network list used and
                                            the ADD result (written before the ADD, for DEL)
    <state>/pods/<uid>/containers/<c>.json  the running process (pid + start time), restarts
    <state>/pods/<uid>/launch/<c>.spec      what container_launcher.py is given (marshal)
    <state>/pods/<uid>/volumes/<volume>/    volume contents (bind-mounted into containers)
    <state>/pods/<uid>/logs/<c>/<n>.log     stdout+stderr of the container's n-th run
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

Json = dict[str, Any]


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def write_private(path: Path, data: bytes) -> None:
    """A file only root may read (created so, never world-readable in between)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class SandboxRecord:
    netns: str
    container_id: str
    ifname: str
    args: str
    network: Json | None = None  # the list as used at ADD time
    result: Json | None = None  # None until the ADD succeeded


@dataclass(frozen=True)
class ProcessRecord:
    pid: int
    start_ticks: int  # /proc/<pid>/stat field 22: tells a reused pid apart
    restart_count: int
    started_at: str
    init: bool


@dataclass(frozen=True)
class PodDir:
    root: Path

    @property
    def uid(self) -> str:
        return self.root.name

    @property
    def meta_file(self) -> Path:
        return self.root / "pod.json"

    @property
    def sandbox_file(self) -> Path:
        return self.root / "sandbox.json"

    def process_file(self, container: str) -> Path:
        return self.root / "containers" / f"{container}.json"

    def launch_file(self, container: str) -> Path:
        return self.root / "launch" / f"{container}.spec"

    def volume_dir(self, volume: str) -> Path:
        return self.root / "volumes" / volume

    def log_dir(self, container: str) -> Path:
        return self.root / "logs" / container

    def log_file(self, container: str, run: int) -> Path:
        return self.log_dir(container) / f"{run}.log"

    # --- records ---------------------------------------------------------------------------------

    def write_meta(self, namespace: str, name: str) -> None:
        write_json(self.meta_file, {"namespace": namespace, "name": name, "uid": self.uid})

    def meta(self) -> Json | None:
        found = read_json(self.meta_file)
        return found if isinstance(found, dict) else None

    def write_sandbox(self, record: SandboxRecord) -> None:
        write_json(self.sandbox_file, asdict(record))

    def sandbox(self) -> SandboxRecord | None:
        found = read_json(self.sandbox_file)
        return SandboxRecord(**found) if isinstance(found, dict) else None

    def clear_sandbox(self) -> None:
        self.sandbox_file.unlink(missing_ok=True)

    def write_process(self, container: str, record: ProcessRecord) -> None:
        write_json(self.process_file(container), asdict(record))

    def process(self, container: str) -> ProcessRecord | None:
        found = read_json(self.process_file(container))
        return ProcessRecord(**found) if isinstance(found, dict) else None

    def processes(self) -> dict[str, ProcessRecord]:
        out = {}
        for path in sorted((self.root / "containers").glob("*.json")):
            found = self.process(path.stem)
            if found is not None:
                out[path.stem] = found
        return out

    def clear_process(self, container: str) -> None:
        self.process_file(container).unlink(missing_ok=True)

    def remove(self) -> None:
        """Everything of the pod; bind mounts live only in containers' mount namespaces, so
        nothing here is mounted on the host."""
        shutil.rmtree(self.root, ignore_errors=True)


def pod_dirs(state_dir: Path) -> list[PodDir]:
    root = state_dir / "pods"
    if not root.is_dir():
        return []
    return [PodDir(path) for path in sorted(root.iterdir()) if path.is_dir()]


def pod_dir(state_dir: Path, uid: str) -> PodDir:
    return PodDir(state_dir / "pods" / uid)
