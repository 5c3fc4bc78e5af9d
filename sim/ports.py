"""Free local ports for stand-ins, tests and benchmarks that need fixed, consecutive ports.

The dev stack pins every port (Temporal's among them), so whoever starts one beside others has to
find a block nobody listens on.
"""

from __future__ import annotations

import socket

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def free_port_block(count: int, start: int = 20000, stop: int = 60000) -> int:
    """The first port of `count` consecutive free ports on 127.0.0.1, searching from `start`."""
    base = start
    while base + count <= stop:
        for offset in range(count):
            with socket.socket() as sock:
                try:
                    sock.bind((LOCALHOST, base + offset))
                except OSError:
                    base += offset + 1
                    break
        else:
            return base
    raise RuntimeError(f"no {count} consecutive free ports between {start} and {stop}")
