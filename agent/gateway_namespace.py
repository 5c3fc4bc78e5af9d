"""The gateway network namespace itself: present, loopback up, IPv4 forwarding on.

Upstream relies on the kernel's defaults for forwarding inside the namespace; a fresh namespace
may start with forwarding off, so it is switched on explicitly (docs/upstream-compatibility.md §3).

The agent's "host" namespace is the namespace of the thread that calls these functions (the
agent runs node operations in one worker thread; tests and the dev stack make that thread enter
a stand-in host namespace first). Subprocesses inherit the calling thread's namespace.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pyroute2 import netns

from agent.netns_handles import NetnsHandles
from agent.node_settings import NodeSettings

_T = TypeVar("_T")

_IFF_UP = 0x1
_IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


def run_in_netns(name: str, call: Callable[[], _T]) -> _T:
    """Run `call` in a short-lived thread that entered namespace `name`.

    Namespaces are per thread: /proc/sys/net and child processes follow the thread that opens or
    starts them, so a fresh thread keeps the caller's own namespace untouched.
    """

    def enter_and_call() -> _T:
        netns.setns(name, flags=0)  # flags=0: never create a namespace by accident
        return call()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"netns-{name}") as pool:
        return pool.submit(enter_and_call).result()


def _read_forwarding() -> str:
    with open(_IP_FORWARD) as proc_file:
        return proc_file.read().strip()


def _enable_forwarding() -> bool:
    """Switch forwarding on in the current thread's namespace; True if it was off."""
    if _read_forwarding() == "1":
        return False
    with open(_IP_FORWARD, "w") as proc_file:
        proc_file.write("1")
    return True


def set_link_up(handle: Any, name: str, where: str) -> list[str]:
    """Bring link `name` up through `handle`; [] if it already was."""
    (link,) = handle.link("get", index=handle.link_lookup(ifname=name)[0])
    if link["flags"] & _IFF_UP:
        return []
    handle.link("set", index=link["index"], state="up")
    return [f"set {name} up in {where}"]


def ensure_gateway_namespace(settings: NodeSettings, handles: NetnsHandles) -> list[str]:
    name = settings.gateway_netns
    changes: list[str] = []
    if not handles.exists(name):
        changes.append(f"created network namespace {name}")
    changes += set_link_up(handles.get(name, create=True), "lo", name)
    if run_in_netns(name, _enable_forwarding):
        changes.append(f"enabled IPv4 forwarding in {name}")
    return changes
