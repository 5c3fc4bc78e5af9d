"""wireguard-go's configuration protocol (UAPI) over its unix socket.

Requests and replies are "key=value" lines ended by a blank line; a reply ends with errno=N.
Keys are hex. The text builders and the reply parser are pure; `call` does the socket I/O.
Nothing here puts a private key into an exception or a repr.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agent.session_handover import PeerSession
from agent.wireguard_keys import from_hex, to_hex

if TYPE_CHECKING:  # types only: the CNI plugin imports this module and keeps its imports small
    from agent.peer_plan import CurrentPeers, PeerPlan

SOCKET_DIR = Path("/var/run/wireguard")
_REPLY_TIMEOUT_S = 10.0


class UapiError(Exception):
    """The daemon answered errno != 0, or the reply was not UAPI."""

    def __init__(self, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.errno = errno


@dataclass(frozen=True)
class DeviceState:
    listen_port: int = 0
    private_key: bytes | None = field(default=None, repr=False)
    peers: CurrentPeers = field(default_factory=dict)  # public key -> allowed IPs (CIDR)
    # Per peer: handshake time and keepalive, in the daemon's order.
    sessions: tuple[PeerSession, ...] = ()


def socket_path(name: str) -> Path:
    return SOCKET_DIR / f"{name}.sock"


def get_request() -> str:
    return "get=1\n\n"


def set_request(
    *,
    private_key: bytes | None = None,
    listen_port: int | None = None,
    plan: PeerPlan | None = None,
) -> str:
    """One set=1 for the whole change, so the daemon applies it under one lock. Removals go
    first: a pod IP freed by a removed peer may be what an added peer takes."""
    lines = ["set=1"]
    if private_key is not None:
        lines.append(f"private_key={to_hex(private_key)}")
    if listen_port is not None:
        lines.append(f"listen_port={listen_port}")
    if plan is not None:
        for key in plan.remove:
            lines += [f"public_key={to_hex(key)}", "remove=true"]
        for peer in plan.add + plan.update:
            lines += [
                f"public_key={to_hex(peer.public_key)}",
                "replace_allowed_ips=true",
                f"allowed_ip={peer.allowed_network}",
            ]
    return "\n".join(lines) + "\n\n"


def peer_session_request(public_key: bytes, *, endpoint: str | None, keepalive: int) -> str:
    """Set one existing peer's endpoint (None: leave it) and persistent keepalive; update_only,
    so a peer removed meanwhile is not brought back."""
    lines = ["set=1", f"public_key={to_hex(public_key)}", "update_only=true"]
    if endpoint is not None:
        lines.append(f"endpoint={endpoint}")
    lines.append(f"persistent_keepalive_interval={keepalive}")
    return "\n".join(lines) + "\n\n"


def reply_errno(reply: str) -> int:
    """The errno a reply ends with; UapiError when there is none (not a UAPI reply)."""
    for line in reversed(reply.splitlines()):
        if line.startswith("errno="):
            try:
                return int(line.removeprefix("errno="))
            except ValueError:
                break
    raise UapiError("reply without errno")


def parse_get_reply(reply: str) -> DeviceState:
    """The device state in a get=1 reply. Values are never quoted in errors: one of them is
    the private key."""
    errno = reply_errno(reply)
    if errno != 0:
        raise UapiError(f"get failed with errno {errno}", errno)
    listen_port = 0
    private_key: bytes | None = None
    peers: dict[bytes, set[str]] = {}
    current: set[str] | None = None
    handshakes: dict[bytes, float] = {}
    keepalives: dict[bytes, int] = {}
    current_key = b""
    for number, line in enumerate(reply.splitlines(), start=1):
        if not line or line.startswith("errno="):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise UapiError(f"line {number} of a get reply has no '='")
        if key == "private_key":
            private_key = from_hex(value, field="private_key")
        elif key == "listen_port":
            listen_port = _port(value, number)
        elif key == "public_key":
            current_key = from_hex(value, field="public_key")
            current = peers.setdefault(current_key, set())
        elif key == "last_handshake_time_sec" and current is not None:
            handshakes[current_key] = float(_number(key, value, number))
        elif key == "persistent_keepalive_interval" and current is not None:
            keepalives[current_key] = _number(key, value, number)
        elif key == "allowed_ip":
            if current is None:
                raise UapiError(f"line {number}: allowed_ip before any public_key")
            current.add(value)
    return DeviceState(
        listen_port=listen_port,
        private_key=private_key,
        peers={key: frozenset(nets) for key, nets in peers.items()},
        sessions=tuple(
            PeerSession(
                public_key=key,
                allowed_ips=frozenset(nets),
                last_handshake=handshakes.get(key, 0.0),
                keepalive=keepalives.get(key, 0),
            )
            for key, nets in peers.items()
        ),
    )


def _port(value: str, number: int) -> int:
    return _number("listen_port", value, number)


def _number(key: str, value: str, number: int) -> int:
    try:
        return int(value)
    except ValueError:
        raise UapiError(f"line {number}: {key} is not a number") from None


def call(path: Path, request: str) -> str:
    """Send one request, return the reply text. ConnectionRefusedError / FileNotFoundError
    tell a stale or missing socket apart from a live daemon."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(_REPLY_TIMEOUT_S)
        sock.connect(str(path))
        sock.sendall(request.encode("ascii"))
        chunks: list[bytes] = []
        tail = b""
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            tail = (tail + chunk)[-2:]
            if tail == b"\n\n":
                break
    return b"".join(chunks).decode("ascii")


def check_set_reply(reply: str) -> None:
    errno = reply_errno(reply)
    if errno != 0:
        raise UapiError(f"set failed with errno {errno}", errno)


def daemon_pid(path: Path) -> int | None:
    """The PID of the process serving the socket (SO_PEERCRED), None when nobody listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(_REPLY_TIMEOUT_S)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            return None
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, _uid, _gid = struct.unpack("3i", creds)
    return int(pid) if pid > 0 else None
