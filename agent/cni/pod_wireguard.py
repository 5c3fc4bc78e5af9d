"""The pod's WireGuard device, wg0, inside the pod's network namespace (so its UDP socket is
there too): one peer, the configuration's gateway key at the load balancer frontend, allowed IPs
0.0.0.0/0.

Backends follow the gateway agent's rule (agent/wireguard_devices.py): the kernel module where
the kernel has it, wireguard-go otherwise; the network config's `wireguardBackend` can force one.

- wireguard-go: started in the pod namespace under a name unique on the machine (`daemon_name`:
  its UAPI socket lives in /var/run/wireguard, which every namespace shares), renamed to wg0 by
  the caller, configured over that socket with hex keys (agent/wireguard_uapi.py). Deleting the
  interface ends the daemon; `stop_daemon` makes sure, by PID (the socket's peer, checked to be
  wireguard-go), never by name.
- kernel: `ip link add wg0 type wireguard` in the pod namespace and `wg set`, the private key
  passed on a pipe (wireguard-tools). Not exercised on machines without the module.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import select
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agent import wireguard_uapi
from agent.cni import pod_netns
from agent.cni.manager_api import GatewayProfile
from agent.cni.plugin_config import BACKEND_AUTO, BACKEND_KERNEL, BACKEND_USERSPACE
from agent.cni.pod_keys import PodKeyPair

WG_IFNAME = "wg0"
ALLOWED_IPS = "0.0.0.0/0"
_DAEMON_PREFIX = "wgc"
_START_TIMEOUT_S = 5.0
_EXIT_TIMEOUT_S = 3.0


class WireguardFailed(Exception):
    pass


def daemon_name(container_id: str, ifname: str) -> str:
    """wireguard-go's interface (and socket) name for one attachment: 15 characters, unique on
    the machine for practical purposes (48 bits of a hash of the attachment)."""
    digest = hashlib.sha256(f"{container_id}/{ifname}".encode()).hexdigest()
    return _DAEMON_PREFIX + digest[:12]


def kernel_module_present() -> bool:
    """The agent's test, without netlink: the module is loaded, or installed for this kernel
    (creating a wireguard link loads it)."""
    if Path("/sys/module/wireguard").exists():
        return True
    base = f"/lib/modules/{os.uname().release}/kernel/drivers/net/wireguard/wireguard.ko"
    return any(Path(base + suffix).exists() for suffix in ("", ".xz", ".zst", ".gz"))


def choose_backend(setting: str) -> str:
    if setting == BACKEND_AUTO:
        return BACKEND_KERNEL if kernel_module_present() else BACKEND_USERSPACE
    return setting


@dataclass(frozen=True)
class PeerState:
    endpoint: str = ""
    allowed_ips: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class DeviceState:
    """What the device holds, without its private key."""

    listen_port: int = 0
    peers: Mapping[str, PeerState] = field(default_factory=dict)  # base64 key -> peer


def set_request(keys: PodKeyPair, profile: GatewayProfile) -> str:
    """UAPI: our key, and exactly one peer (the gateway)."""
    gateway_key = base64.b64decode(profile.public_key)
    return (
        "set=1\n"
        f"private_key={keys.private_key.hex()}\n"
        "replace_peers=true\n"
        f"public_key={gateway_key.hex()}\n"
        f"endpoint={profile.endpoint_ip}:{profile.listen_port}\n"
        "replace_allowed_ips=true\n"
        f"allowed_ip={ALLOWED_IPS}\n\n"
    )


def parse_device(reply: str) -> DeviceState:
    """A UAPI get=1 reply (its private_key line is skipped, never kept)."""
    errno = wireguard_uapi.reply_errno(reply)
    if errno != 0:
        raise WireguardFailed(f"reading the device failed with errno {errno}")
    listen_port = 0
    endpoints: dict[str, str] = {}
    allowed: dict[str, set[str]] = {}
    current = ""
    for line in reply.splitlines():
        key, _, value = line.partition("=")
        if key == "listen_port":
            listen_port = int(value)
        elif key == "public_key":
            current = base64.b64encode(bytes.fromhex(value)).decode()
            endpoints.setdefault(current, "")
            allowed.setdefault(current, set())
        elif key == "endpoint" and current:
            endpoints[current] = value
        elif key == "allowed_ip" and current:
            allowed[current].add(value)
    return DeviceState(
        listen_port=listen_port,
        peers={key: PeerState(endpoints[key], frozenset(allowed[key])) for key in endpoints},
    )


def parse_wg_dump(text: str) -> DeviceState:
    """`wg show wg0 dump`: the device line (private key, public key, port, fwmark) first, then one
    tab-separated line per peer (public key, preshared key, endpoint, allowed IPs, ...)."""
    lines = [line.split("\t") for line in text.splitlines() if line]
    if not lines:
        raise WireguardFailed("wg show printed nothing")
    listen_port = int(lines[0][2]) if len(lines[0]) > 2 and lines[0][2].isdecimal() else 0
    peers = {}
    for fields in lines[1:]:
        if len(fields) >= 4:
            endpoint = "" if fields[2] == "(none)" else fields[2]
            allowed = frozenset(a for a in fields[3].split(",") if a and a != "(none)")
            peers[fields[0]] = PeerState(endpoint, allowed)
    return DeviceState(listen_port=listen_port, peers=peers)


class UserspaceWireguard:
    kind = BACKEND_USERSPACE

    def __init__(self, daemon: str, wireguard_go: str = "wireguard-go") -> None:
        self.daemon = daemon
        self._binary = wireguard_go

    @property
    def socket(self) -> str:
        return str(wireguard_uapi.socket_path(self.daemon))

    def socket_exists(self) -> bool:
        return wireguard_uapi.socket_path(self.daemon).exists()

    def create(self) -> str:
        """Start wireguard-go in this process's namespace; the link's name (to rename)."""
        binary = pod_netns.find_tool(self._binary)
        null = os.devnull
        env = {"PATH": os.environ.get("PATH", ""), "WG_PROCESS_FOREGROUND": "1"}
        env["LOG_LEVEL"] = "silent"
        try:
            pid = os.posix_spawn(
                binary,
                [binary, "-f", self.daemon],
                env,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, null, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, null, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 2, null, os.O_WRONLY, 0),
                ],
                setsid=True,  # outlives the plugin; the runtime's signals are not its
            )
        except OSError as err:
            raise WireguardFailed(f"cannot start {binary}: {err.strerror}") from None
        deadline = time.monotonic() + _START_TIMEOUT_S
        # Waiting for a just-started daemon to open its socket (about 6 ms), not a retry.
        while not self._answers():
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                raise WireguardFailed(
                    f"wireguard-go exited with status {os.waitstatus_to_exitcode(status)} "
                    f"before opening {self.socket}"
                )
            if time.monotonic() > deadline:
                stop_daemon(pid)
                raise WireguardFailed(f"wireguard-go did not open {self.socket}")
            time.sleep(0.001)
        return self.daemon

    def _answers(self) -> bool:
        try:
            reply = wireguard_uapi.call(wireguard_uapi.socket_path(self.daemon), "get=1\n\n")
        except (FileNotFoundError, ConnectionRefusedError):
            return False
        return wireguard_uapi.reply_errno(reply) == 0

    def configure(self, keys: PodKeyPair, profile: GatewayProfile) -> None:
        reply = wireguard_uapi.call(
            wireguard_uapi.socket_path(self.daemon), set_request(keys, profile)
        )
        try:
            wireguard_uapi.check_set_reply(reply)
        except wireguard_uapi.UapiError as err:
            raise WireguardFailed(f"configuring wg0 failed: {err}") from None

    def read(self) -> DeviceState:
        try:
            reply = wireguard_uapi.call(wireguard_uapi.socket_path(self.daemon), "get=1\n\n")
        except (FileNotFoundError, ConnectionRefusedError):
            raise WireguardFailed(f"wireguard-go for wg0 is not running ({self.socket})") from None
        return parse_device(reply)

    def remove(self) -> bool:
        """Stop the daemon (after the caller deleted the link) and remove a stale socket.
        True when there was something."""
        path = wireguard_uapi.socket_path(self.daemon)
        pid = wireguard_uapi.daemon_pid(path)
        stopped = pid is not None and stop_daemon(pid)
        removed = False
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed = True
        return stopped or removed


class KernelWireguard:
    kind = BACKEND_KERNEL

    def __init__(self, tools: pod_netns.NetnsTools) -> None:
        self._tools = tools
        self.daemon = ""

    def create(self) -> str:
        try:
            self._tools.batch([f"link add {WG_IFNAME} type wireguard"])
        except pod_netns.CommandFailed as err:
            raise WireguardFailed(f"creating wg0 (kernel module) failed: {err}") from None
        return WG_IFNAME

    def configure(self, keys: PodKeyPair, profile: GatewayProfile) -> None:
        wg = pod_netns.find_tool("wg")
        argv = [
            wg,
            "set",
            WG_IFNAME,
            "private-key",
            "/dev/stdin",
            "peer",
            profile.public_key,
            "endpoint",
            f"{profile.endpoint_ip}:{profile.listen_port}",
            "allowed-ips",
            ALLOWED_IPS,
        ]
        try:
            pod_netns.run(argv, base64.b64encode(keys.private_key).decode() + "\n")
        except pod_netns.CommandFailed as err:
            raise WireguardFailed(f"configuring wg0 failed: {err}") from None

    def read(self) -> DeviceState:
        try:
            text = pod_netns.run([pod_netns.find_tool("wg"), "show", WG_IFNAME, "dump"])
        except pod_netns.CommandFailed as err:
            raise WireguardFailed(f"reading wg0 failed: {err}") from None
        return parse_wg_dump(text)

    def remove(self) -> bool:
        return False  # the link is the device; deleting it is all


def stop_daemon(pid: int) -> bool:
    """Make sure wireguard-go `pid` has exited: SIGTERM (once its link is gone it would exit on
    its own, but only after a second or more), then SIGKILL. A pidfd pins the process, so a
    reused PID is never signalled."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    try:
        try:
            with open(f"/proc/{pid}/comm") as handle:
                if handle.read().strip() != "wireguard-go":
                    return False
        except (FileNotFoundError, ProcessLookupError):
            return False
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, sig)
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            if poller.poll(int(_EXIT_TIMEOUT_S * 1000)):
                break
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it when it was ours (started by this process)
        return True
    finally:
        os.close(pidfd)
