"""Where a server of ours listens, as the flags spell it (`--health-address`,
`--metrics-address`); kept free of server imports so flag parsing stays light."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int  # 0: any free port (the server's `port` tells which after start)


def parse_listen_address(text: str) -> ListenAddress | None:
    """`HOST:PORT`, `:PORT` (all interfaces) or `off`."""
    if text.strip().lower() in {"", "off", "none", "0"}:
        return None
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdecimal():
        raise ValueError(f"expected HOST:PORT, :PORT or off, got {text!r}")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    return ListenAddress(host=host.strip("[]") or "0.0.0.0", port=port)
