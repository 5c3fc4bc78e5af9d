"""One open netlink handle per network namespace.

pyroute2 forks a helper to enter a namespace, which costs milliseconds per open; a reused handle
costs a fraction of one per operation, so the agent keeps them.
Namespace names are those under /var/run/netns; "" is the agent's own (host) namespace.
"""

from __future__ import annotations

import threading
from typing import Any

from pyroute2 import IPRoute, NetNS, netns


class NetnsHandles:
    def __init__(self) -> None:
        self._handles: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, name: str = "", *, create: bool = False) -> Any:
        """The handle for namespace `name` ("" = host), creating the namespace when asked."""
        with self._lock:
            handle = self._handles.get(name)
            if handle is not None:
                return handle
            if name == "":
                handle = IPRoute()
            else:
                if name not in netns.listnetns():
                    if not create:
                        raise FileNotFoundError(f"network namespace {name} does not exist")
                    netns.create(name)
                handle = NetNS(name)
            self._handles[name] = handle
            return handle

    def exists(self, name: str) -> bool:
        return name == "" or name in netns.listnetns()

    def close(self) -> None:
        with self._lock:
            handles, self._handles = list(self._handles.values()), {}
        for handle in handles:
            handle.close()
