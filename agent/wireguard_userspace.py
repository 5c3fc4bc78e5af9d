"""WireGuard through wireguard-go, for machines without the kernel module.

The daemon is started in the agent's (host) namespace so its UDP socket binds there, under a
"birth name" that also names its UAPI socket in /var/run/wireguard, a directory every namespace
shares. The birth name is deterministic per (socket tag, listen port), so a restarted agent finds
the socket of an interface it made before; the device layer then moves the TUN link into the
gateway namespace and renames it to wg-<port> (wireguard-go keeps working: it reads its name from
the TUN file descriptor and detects up/down by polling it, which works across namespaces).

Daemons are separate sessions that outlive the agent. They are stopped by PID only: the one this
process started, or the socket's peer (SO_PEERCRED), checked to be wireguard-go.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from pathlib import Path

from agent import wireguard_uapi
from agent.node_settings import WireguardBackend
from agent.peer_plan import PeerPlan
from agent.wireguard_uapi import DeviceState

_START_TIMEOUT_S = 5.0
_EXIT_TIMEOUT_S = 3.0
_DAEMON_COMM = "wireguard-go"

# Daemons this process started, by PID: kept so that one that exits is reaped (no zombies).
# Per process, not per handle, because child processes belong to the process.
_children: dict[int, subprocess.Popen[bytes]] = {}
_children_lock = threading.Lock()


class DaemonStartError(RuntimeError):
    pass


def birth_name(socket_tag: str, listen_port: int) -> str:
    """The name wireguard-go is started with (and so its socket's name)."""
    name = f"wg{socket_tag}{listen_port}"
    if len(name) > 15 or not name.isalnum():
        raise ValueError(
            f"socket_tag: {socket_tag!r} with port {listen_port} gives {name!r}; an interface "
            "name is at most 15 letters and digits"
        )
    return name


class UserspaceWireguard:
    """The wireguard-go half of a WireguardDevices: daemons and their UAPI sockets."""

    kind = WireguardBackend.USERSPACE

    def __init__(self, *, wireguard_go_path: str = "wireguard-go", host_netns: str = "") -> None:
        self._binary = wireguard_go_path
        self._host_netns = host_netns

    def is_running(self, birth: str) -> bool:
        """A daemon answers on the socket (a socket file alone may be stale)."""
        try:
            reply = wireguard_uapi.call(wireguard_uapi.socket_path(birth), "get=1\n\n")
        except (FileNotFoundError, ConnectionRefusedError):
            return False
        return wireguard_uapi.reply_errno(reply) == 0

    def create(self, birth: str) -> None:
        """Start a daemon whose TUN link `birth` appears in the host namespace."""
        _reap_exited()
        argv = [self._binary, "-f", birth]
        if self._host_netns:
            # nsenter execs, so the PID we keep is wireguard-go's own.
            argv = ["nsenter", f"--net=/var/run/netns/{self._host_netns}", *argv]
        env = {**os.environ, "WG_PROCESS_FOREGROUND": "1", "LOG_LEVEL": "error"}
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # the agent's signals must not stop the gateway
            env=env,
        )
        with _children_lock:
            _children[process.pid] = process
        path = wireguard_uapi.socket_path(birth)
        deadline = time.monotonic() + _START_TIMEOUT_S
        # Waiting for a just-started process to become ready, not retrying a failure.
        while not self.is_running(birth):
            if process.poll() is not None:
                _forget(process.pid)
                raise DaemonStartError(
                    f"wireguard-go for {birth} exited with status {process.returncode}"
                )
            if time.monotonic() > deadline:
                _stop_pid(process.pid)
                raise DaemonStartError(f"wireguard-go for {birth} did not open {path}")
            time.sleep(0.002)

    def daemon_pid(self, birth: str) -> int | None:
        return wireguard_uapi.daemon_pid(wireguard_uapi.socket_path(birth))

    def stop(self, pid: int) -> None:
        """Make sure daemon `pid` is gone (and reaped, if this process started it)."""
        _stop_pid(pid)

    def discard(self, birth: str) -> bool:
        """Stop the daemon (if any) and remove its socket file. True if anything was there."""
        path = wireguard_uapi.socket_path(birth)
        pid = wireguard_uapi.daemon_pid(path)
        stopped = pid is not None and _stop_pid(pid)
        removed = False
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed = True
        _reap_exited()
        return stopped or removed

    def read(self, name: str, birth: str) -> DeviceState:
        reply = wireguard_uapi.call(wireguard_uapi.socket_path(birth), wireguard_uapi.get_request())
        return wireguard_uapi.parse_get_reply(reply)

    def configure(
        self,
        name: str,
        birth: str,
        *,
        private_key: bytes | None = None,
        listen_port: int | None = None,
        plan: PeerPlan | None = None,
    ) -> None:
        request = wireguard_uapi.set_request(
            private_key=private_key, listen_port=listen_port, plan=plan
        )
        reply = wireguard_uapi.call(wireguard_uapi.socket_path(birth), request)
        wireguard_uapi.check_set_reply(reply)

    def set_peer_session(
        self, name: str, birth: str, public_key: bytes, *, endpoint: str | None, keepalive: int
    ) -> None:
        request = wireguard_uapi.peer_session_request(
            public_key, endpoint=endpoint, keepalive=keepalive
        )
        reply = wireguard_uapi.call(wireguard_uapi.socket_path(birth), request)
        wireguard_uapi.check_set_reply(reply)

    def close(self) -> None:
        """Nothing to close: daemons deliberately outlive this handle."""
        _reap_exited()


def _is_daemon(pid: int) -> bool:
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return comm == _DAEMON_COMM


def _stop_pid(pid: int) -> bool:
    """Stop wireguard-go `pid`: wait briefly for it to exit on its own, then SIGTERM, then
    SIGKILL. A pidfd pins the process, so a reused PID is never signalled."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        _forget(pid)
        return False
    try:
        if not _is_daemon(pid):
            return False
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(pidfd, sig)
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            if poller.poll(_EXIT_TIMEOUT_S * 1000 if sig is not None else 200):
                break
        return True
    finally:
        os.close(pidfd)
        _forget(pid)


def _forget(pid: int) -> None:
    with _children_lock:
        process = _children.pop(pid, None)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=_EXIT_TIMEOUT_S)


def _reap_exited() -> None:
    with _children_lock:
        done = [pid for pid, process in _children.items() if process.poll() is not None]
        for pid in done:
            del _children[pid]
