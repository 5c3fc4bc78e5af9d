"""The pod's WireGuard key pair, made in the plugin process: the private key goes to the pod's
WireGuard device and nowhere else (not to disk, a log, the manager or an error message).

X25519 is RFC 7748's Montgomery ladder on Python integers (section 5), checked against the RFC's
test vectors and against `cryptography` in tests/unit/agent/cni/test_pod_keys.py. It is here
instead of `cryptography` because loading that library's Rust extension costs more start-up
time than the whole computation (about 2 ms); the plugin computes one public key per pod.
Python integers are not constant-time: the key is used once, in a process that lives a fraction
of a second on the node, where anyone able to time it could read the device's memory anyway.
"""

from __future__ import annotations

import base64
import os

KEY_LENGTH = 32
_P = 2**255 - 19
_A24 = 121665
_BASE_POINT = (9).to_bytes(32, "little")


def _clamp(scalar: bytes) -> int:
    k = bytearray(scalar)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    return int.from_bytes(k, "little")


def x25519(scalar: bytes, u_coordinate: bytes) -> bytes:
    """RFC 7748 X25519(k, u), both 32 bytes little-endian."""
    if len(scalar) != KEY_LENGTH or len(u_coordinate) != KEY_LENGTH:
        raise ValueError("X25519 takes 32-byte inputs")
    k = _clamp(scalar)
    x1 = int.from_bytes(u_coordinate, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3 = 1, 0, x1, 1
    swap = 0
    for t in range(254, -1, -1):
        bit = (k >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a = x2 + z2
        aa = a * a % _P
        b = x2 - z2
        bb = b * b % _P
        e = aa - bb
        c = x3 + z3
        d = x3 - z3
        da = d * a % _P
        cb = c * b % _P
        x3 = (da + cb) ** 2 % _P
        z3 = x1 * (da - cb) ** 2 % _P
        x2 = aa * bb % _P
        z2 = e * (aa + _A24 * e) % _P
    if swap:
        x2, x3, z2, z3 = x3, x2, z3, z2
    return (x2 * pow(z2, _P - 2, _P) % _P).to_bytes(KEY_LENGTH, "little")


def public_key_of(private_key: bytes) -> bytes:
    return x25519(private_key, _BASE_POINT)


class PodKeyPair:
    """A fresh key pair. `private_key` is deliberately kept out of repr and str."""

    __slots__ = ("private_key", "public_key")

    def __init__(self, private_key: bytes) -> None:
        if len(private_key) != KEY_LENGTH:
            raise ValueError(f"a WireGuard private key is {KEY_LENGTH} bytes")
        clamped = bytearray(private_key)
        clamped[0] &= 248
        clamped[31] &= 127
        clamped[31] |= 64
        self.private_key = bytes(clamped)
        self.public_key = public_key_of(self.private_key)

    @classmethod
    def generate(cls) -> PodKeyPair:
        return cls(os.urandom(KEY_LENGTH))

    @property
    def public_key_base64(self) -> str:
        return base64.b64encode(self.public_key).decode("ascii")

    def __repr__(self) -> str:
        return f"PodKeyPair(public_key={self.public_key_base64!r}, private_key=<redacted>)"

    __str__ = __repr__
