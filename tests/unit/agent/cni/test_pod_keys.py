"""The pod's X25519 (RFC 7748) against the RFC's test vectors and against `cryptography`."""

from __future__ import annotations

import os

import pytest

from agent.cni.pod_keys import PodKeyPair, public_key_of, x25519
from agent.wireguard_keys import public_key_of as cryptography_public_key

# RFC 7748 section 5.2: (scalar, u-coordinate, output)
VECTORS = [
    (
        "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
    ),
    (
        "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
        "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
    ),
]


@pytest.mark.parametrize(("scalar", "u", "expected"), VECTORS)
def test_rfc7748_vectors(scalar: str, u: str, expected: str) -> None:
    assert x25519(bytes.fromhex(scalar), bytes.fromhex(u)).hex() == expected


def test_rfc7748_iterated_a_thousand_times() -> None:
    k = u = (9).to_bytes(32, "little")
    for iteration in range(1, 1001):
        k, u = x25519(k, u), k
        if iteration == 1:
            assert k.hex() == "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"
    assert k.hex() == "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"


def test_rfc7748_diffie_hellman() -> None:
    alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    bob = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    assert public_key_of(alice).hex() == (
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    )
    assert public_key_of(bob).hex() == (
        "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    )
    shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
    assert x25519(alice, public_key_of(bob)).hex() == shared
    assert x25519(bob, public_key_of(alice)).hex() == shared


def test_same_public_keys_as_cryptography() -> None:
    for _ in range(20):
        pair = PodKeyPair(os.urandom(32))
        assert pair.public_key == cryptography_public_key(pair.private_key)


def test_a_generated_pair_is_clamped_and_never_shows_its_private_key() -> None:
    pair = PodKeyPair.generate()
    assert pair.private_key[0] & 7 == 0 and pair.private_key[31] & 0xC0 == 0x40
    for text in (repr(pair), str(pair), f"{pair}"):
        assert pair.private_key.hex() not in text
        assert "redacted" in text
        assert pair.public_key_base64 in text
