"""Named network namespaces (`/var/run/netns/<name>`, as `ip netns` makes them): a pod's sandbox
namespace is created before the CNI ADD and removed after the DEL. "Already exists" on create and
"not there" on remove count as success, decided here only."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Final

NETNS_DIR: Final = Path("/var/run/netns")


class NetnsError(RuntimeError):
    pass


def netns_path(name: str) -> str:
    return str(NETNS_DIR / name)


def exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def list_names() -> list[str]:
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


async def _ip(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "ip",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    return process.returncode or 0, err.decode(errors="replace").strip()


async def create(name: str) -> None:
    if exists(name):
        return
    code, err = await _ip("netns", "add", name)
    if code != 0 and not exists(name):
        raise NetnsError(f"ip netns add {name}: {err}")


async def remove(name: str) -> None:
    if not exists(name):
        return
    code, err = await _ip("netns", "delete", name)
    if code != 0 and exists(name):
        raise NetnsError(f"ip netns delete {name}: {err}")
