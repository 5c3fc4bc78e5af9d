"""What container_launcher.py gets for one container: argv, environment, working directory, the
network namespace to join and the bind mounts. Built from the pod, the fetched objects and where
each volume's files are; the one check that looks at the filesystem is whether the command exists
(seen through the container's own mounts), so a missing command is reported before anything runs.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sim.node_runtime.container_env import (
    ContainerCreateError,
    PodFacts,
    command_line,
    container_environment,
)
from sim.node_runtime.pod_objects import ObjectStore
from sim.node_runtime.pod_volumes import container_mounts

Json = dict[str, Any]


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    readOnly: bool  # the launcher's JSON field name


@dataclass(frozen=True)
class LaunchSpec:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    netns: str | None
    mounts: list[Mount]

    def to_json(self) -> Json:
        return asdict(self)


def host_view(path: str, mounts: list[Mount]) -> str:
    """Where an absolute path inside the container is on the host (through its mounts)."""
    for mount in sorted(mounts, key=lambda m: len(m.target), reverse=True):
        if path == mount.target or path.startswith(mount.target.rstrip("/") + "/"):
            return mount.source + path[len(mount.target) :]
    return path


def _executable(path: str) -> bool:
    return Path(path).is_file() and os.access(path, os.X_OK)


def resolve_command(argv0: str, env_path: str, cwd: str, mounts: list[Mount]) -> str | None:
    """The executable `argv0` names, as the container would find it; None if there is none."""
    if "/" in argv0:
        inside = argv0 if argv0.startswith("/") else posixpath.join(cwd, argv0)
        candidate = host_view(posixpath.normpath(inside), mounts)
        return candidate if _executable(candidate) else None
    for directory in env_path.split(":"):
        if not directory:
            continue
        candidate = host_view(posixpath.join(directory, argv0), mounts)
        if _executable(candidate):
            return candidate
    return None


def launch_spec(
    pod: Json,
    container: Json,
    store: ObjectStore,
    facts: PodFacts,
    defaults: dict[str, str],
    volume_sources: dict[str, Path],
    netns: str | None,
) -> LaunchSpec:
    """Raises ContainerConfigError (env, mounts) or ContainerCreateError (command)."""
    env = container_environment(pod, container, store, facts, defaults)
    argv = command_line(container, env)
    mounts = [
        Mount(
            source=str(volume_sources[plan.volume] / plan.sub_path)
            if plan.sub_path
            else str(volume_sources[plan.volume]),
            target=plan.target,
            readOnly=plan.read_only,
        )
        for plan in container_mounts(pod, container)
    ]
    cwd = str(container.get("workingDir") or "/")
    if resolve_command(argv[0], env.get("PATH", ""), cwd, mounts) is None:
        raise ContainerCreateError(f'exec: "{argv[0]}": executable file not found in $PATH')
    return LaunchSpec(argv=argv, env=env, cwd=cwd, netns=netns, mounts=mounts)
