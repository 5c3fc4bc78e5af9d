"""What the dev stack's pods leave behind when their node runtime could not tear them down (it
crashed, or was killed with the stack): the wireguard-go daemons the CNI plugin started for
them, the pods' network namespaces (`<net prefix>p<node index>-<8 hex>`, sim/node_runtime) and
the container processes still in them. `dev down` removes them after the stack's processes have
stopped (a runtime that stops normally runs every pod's CNI DEL itself); the runtime's next
start then finds its sandboxes gone and makes new ones.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Final

PROCESS_STOP_TIMEOUT: Final = 3.0


def pod_daemon_sockets(plugin_state_dirs: Iterable[Path], socket_dir: Path) -> list[Path]:
    """The UAPI sockets of the wireguard-go daemons the plugin started for pods, as its
    attachment records name them."""
    from agent.cni import attachment_state

    sockets = []
    for directory in plugin_state_dirs:
        for _path, record in attachment_state.records(str(directory)):
            if record is not None and record.daemon:
                sockets.append(socket_dir / f"{record.daemon}.sock")
    return sockets


def stop_pod_daemons(plugin_state_dirs: Iterable[Path]) -> int:
    """Stop the pods' wireguard-go daemons (by the PID each socket reports); how many. The
    records stay: a later DEL of the pod finds the daemon gone, which it takes as done."""
    from egressgw.dev.node_network import WIREGUARD_SOCKET_DIR, stop_daemons_at

    return stop_daemons_at(pod_daemon_sockets(plugin_state_dirs, WIREGUARD_SOCKET_DIR))


def pod_namespaces(names: Iterable[str], net_prefix: str) -> list[str]:
    """The names that are the stack's pod namespaces."""
    pattern = re.compile(re.escape(net_prefix) + r"p\d+-[0-9a-f]{8}")
    return [name for name in names if pattern.fullmatch(name)]


def processes_in(netns_file: Path, proc: Path = Path("/proc")) -> list[int]:
    """PIDs of the processes whose network namespace is the one bound at `netns_file` (what
    `ip netns pids` finds)."""
    try:
        target = netns_file.stat()
    except FileNotFoundError:
        return []
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            found = (entry / "ns" / "net").stat()
        except OSError:
            continue  # exited, or a kernel thread
        if (found.st_dev, found.st_ino) == (target.st_dev, target.st_ino):
            pids.append(int(entry.name))
    return pids


def remove_pod_namespaces(net_prefix: str) -> int:
    """Stop the processes left in the stack's pod namespaces (SIGTERM, SIGKILL after a few
    seconds) and remove the namespaces; how many namespaces went."""
    from sim.fabric import namespaces
    from sim.node_runtime import netns

    names = pod_namespaces(netns.list_names(), net_prefix)
    pids = [pid for name in names for pid in processes_in(Path(netns.netns_path(name)))]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + PROCESS_STOP_TIMEOUT
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    for name in names:
        namespaces.remove(name)
    return len(names)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(") ")[2][:1]
    except OSError:
        return False
    return state != "Z"
