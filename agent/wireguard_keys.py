"""WireGuard keys: parsing, validation, derivation and the encodings each interface wants.

Public keys travel as base64 (Kubernetes objects, activity inputs); the UAPI socket wants hex;
private keys arrive as 32 raw bytes from the Secret. Errors name the field and, for private keys,
never the value.

`cryptography` is imported by the two functions that compute with keys: the CNI plugin uses the
encodings here and must not pay for loading it on every pod start (agent/cni/pod_keys.py).
"""

from __future__ import annotations

import base64
import binascii

KEY_LENGTH = 32


def parse_public_key(text: str, *, field: str = "public_key") -> bytes:
    """The 32 raw bytes of a base64 public key; ValueError naming `field` otherwise."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{field}: not valid base64: {text!r}") from None
    if len(raw) != KEY_LENGTH:
        raise ValueError(f"{field}: a WireGuard key is {KEY_LENGTH} bytes, got {len(raw)}")
    return raw


def check_public_key(raw: bytes, *, field: str = "public_key") -> bytes:
    if len(raw) != KEY_LENGTH:
        raise ValueError(f"{field}: a WireGuard key is {KEY_LENGTH} bytes, got {len(raw)}")
    return raw


def check_private_key(raw: bytes, *, field: str = "private_key") -> bytes:
    """`raw` itself when it is a usable private key; the error never echoes the key."""
    if not isinstance(raw, bytes | bytearray):
        raise ValueError(f"{field}: expected {KEY_LENGTH} raw bytes, got {type(raw).__name__}")
    if len(raw) != KEY_LENGTH:
        raise ValueError(f"{field}: a WireGuard key is {KEY_LENGTH} bytes, got {len(raw)}")
    if not any(raw):
        raise ValueError(f"{field}: the all-zero key is not a usable private key")
    return bytes(raw)


def public_key_of(private_key: bytes) -> bytes:
    """The public key WireGuard derives from `private_key` (X25519, clamping included)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    key = X25519PrivateKey.from_private_bytes(check_private_key(private_key))
    return key.public_key().public_bytes_raw()


def generate_private_key() -> bytes:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    return X25519PrivateKey.generate().private_bytes_raw()


def to_base64(raw: bytes) -> str:
    return base64.b64encode(check_public_key(raw, field="key")).decode("ascii")


def to_hex(raw: bytes) -> str:
    """UAPI's key encoding: 64 lowercase hex digits."""
    return check_public_key(raw, field="key").hex()


def from_hex(text: str, *, field: str) -> bytes:
    """A key in UAPI's hex form. The message shows only the length, since this also reads the
    private key from a device."""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{field}: not a hex key ({len(text)} characters)") from None
    return check_public_key(raw, field=field)
