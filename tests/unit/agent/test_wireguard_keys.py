from __future__ import annotations

import base64

import pytest

from agent.wireguard_keys import (
    check_private_key,
    from_hex,
    generate_private_key,
    parse_public_key,
    public_key_of,
    to_base64,
    to_hex,
)

# RFC 7748 §6.1: Alice's private and public key.
ALICE_PRIVATE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")


def test_public_key_is_derived_as_x25519() -> None:
    assert public_key_of(ALICE_PRIVATE) == ALICE_PUBLIC


def test_base64_and_hex_round_trip() -> None:
    text = to_base64(ALICE_PUBLIC)
    assert parse_public_key(text) == ALICE_PUBLIC
    assert from_hex(to_hex(ALICE_PUBLIC), field="public_key") == ALICE_PUBLIC
    assert len(to_hex(ALICE_PUBLIC)) == 64


@pytest.mark.parametrize(
    "text",
    ["not base64!", base64.b64encode(b"short").decode(), base64.b64encode(bytes(33)).decode(), ""],
)
def test_malformed_public_keys_name_the_field(text: str) -> None:
    with pytest.raises(ValueError, match=r"^spec\.publicKey: "):
        parse_public_key(text, field="spec.publicKey")


@pytest.mark.parametrize("raw", [b"", bytes(31), bytes(33), bytes(32)])
def test_unusable_private_keys_are_refused(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r"^PrivateKey: "):
        check_private_key(raw, field="PrivateKey")


def test_errors_never_show_a_private_key() -> None:
    key = generate_private_key()
    for attempt in (key + b"x", key[:-1]):
        with pytest.raises(ValueError) as raised:
            check_private_key(attempt)
        assert key.hex()[:16] not in str(raised.value)
        assert base64.b64encode(key).decode()[:16] not in str(raised.value)
    with pytest.raises(ValueError) as raised:
        from_hex(key.hex() + "zz", field="private_key")
    assert key.hex()[:16] not in str(raised.value)


def test_generated_keys_differ_and_are_usable() -> None:
    first, second = generate_private_key(), generate_private_key()
    assert first != second
    assert len(public_key_of(first)) == 32
