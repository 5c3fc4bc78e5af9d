"""The node's own view of host paths: several dev nodes share one machine, so a node's
directories (its CNI configuration and executables, the sockets and state its daemons keep, its
named network namespaces) live in a directory of its own while pods and CNI plugins name them by
the paths a real node has (`/etc/cni/net.d`, `/var/run/netns`, ...).

`--host-path NODE_PATH=DIR` maps NODE_PATH, and everything under it, to DIR: hostPath volumes are
served from the mapped directory, and the CNI plugins run with DIR bind-mounted at NODE_PATH in a
mount namespace of their own, so both sides see the same files at the same paths, as they do on a
real node. The exception is the netns directory (`/var/run/netns`, `/run/netns`): the plugins
are handed namespaces by those paths (`CNI_NETNS`, the node's own), which must stay the machine's,
so a mapping of it reaches hostPath volumes only (e.g. a gateway node's agent finding its gateway
namespace under the default name).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

NETNS_DIRS: Final = ("/var/run/netns", "/run/netns")


class HostPathError(ValueError):
    pass


@dataclass(frozen=True)
class HostPathMap:
    node_path: str  # absolute, normalised
    directory: str  # absolute: where that path lives on this machine


def parse_host_path(text: str) -> HostPathMap:
    node_path, sep, directory = text.partition("=")
    if not sep or not node_path.startswith("/") or not directory.startswith("/"):
        raise HostPathError(f"--host-path {text!r}: expected /node/path=/absolute/dir")
    normal = str(PurePosixPath(node_path))
    if normal == "/":
        raise HostPathError(f"--host-path {text!r}: the node's / cannot be mapped")
    return HostPathMap(normal, str(PurePosixPath(directory)))


def resolve(maps: Sequence[HostPathMap], path: str) -> str:
    """Where a node path is on this machine: under the longest mapping that holds it, else
    itself."""
    wanted = PurePosixPath(path)
    best: HostPathMap | None = None
    for entry in maps:
        node = PurePosixPath(entry.node_path)
        if (wanted == node or node in wanted.parents) and (
            best is None or len(entry.node_path) > len(best.node_path)
        ):
            best = entry
    if best is None:
        return path
    rest = wanted.relative_to(best.node_path)
    return str(PurePosixPath(best.directory) / rest) if str(rest) != "." else best.directory


def plugin_argv(maps: Sequence[HostPathMap], argv: Sequence[str]) -> list[str]:
    """`argv` run with every mapped directory (but the netns directory) bound at its node path,
    in a private mount namespace (nothing propagates back to the machine)."""
    bound = sorted((m for m in maps if m.node_path not in NETNS_DIRS), key=lambda m: m.node_path)
    if not bound:
        return list(argv)
    script = []
    binds: list[str] = []
    for index, entry in enumerate(bound):
        source, target = 2 * index + 1, 2 * index + 2
        script.append(f'mkdir -p "${target}" && mount --rbind "${source}" "${target}"')
        binds += [entry.directory, entry.node_path]
    shift = f"shift {len(binds)}"
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        " && ".join([*script, shift, 'exec "$@"']),
        "sh",
        *binds,
        *argv,
    ]
