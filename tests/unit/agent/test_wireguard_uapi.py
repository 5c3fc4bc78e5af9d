from __future__ import annotations

import ipaddress

import pytest

from agent.peer_plan import PeerPlan, PeerSpec
from agent.wireguard_uapi import (
    UapiError,
    check_set_reply,
    parse_get_reply,
    set_request,
)

PRIVATE = bytes(range(1, 33))
KEY_A = bytes([0xA] * 32)
KEY_B = bytes([0xB] * 32)
KEY_C = bytes([0xC] * 32)

# Shaped like wireguard-go's get=1 reply: device lines, then each peer's lines.
GET_REPLY = (
    f"private_key={PRIVATE.hex()}\n"
    "listen_port=6000\n"
    f"public_key={KEY_A.hex()}\n"
    "protocol_version=1\n"
    "last_handshake_time_sec=0\n"
    "last_handshake_time_nsec=0\n"
    "tx_bytes=0\n"
    "rx_bytes=0\n"
    "persistent_keepalive_interval=0\n"
    "allowed_ip=10.0.0.5/32\n"
    f"public_key={KEY_B.hex()}\n"
    "endpoint=198.18.0.2:51821\n"
    "allowed_ip=10.0.0.6/32\n"
    "allowed_ip=10.0.1.0/24\n"
    f"public_key={KEY_C.hex()}\n"
    "errno=0\n\n"
)


def test_get_reply_gives_port_key_and_peers() -> None:
    state = parse_get_reply(GET_REPLY)
    assert state.listen_port == 6000
    assert state.private_key == PRIVATE
    assert state.peers == {
        KEY_A: frozenset({"10.0.0.5/32"}),
        KEY_B: frozenset({"10.0.0.6/32", "10.0.1.0/24"}),
        KEY_C: frozenset(),
    }


def test_fresh_device_has_no_key() -> None:
    state = parse_get_reply("listen_port=41813\nerrno=0\n\n")
    assert (state.listen_port, state.private_key, dict(state.peers)) == (41813, None, {})


def test_state_repr_hides_the_private_key() -> None:
    assert PRIVATE.hex() not in repr(parse_get_reply(GET_REPLY))
    assert str(PRIVATE) not in repr(parse_get_reply(GET_REPLY))


def test_failed_and_foreign_replies_are_errors() -> None:
    with pytest.raises(UapiError) as raised:
        parse_get_reply("errno=22\n\n")
    assert raised.value.errno == 22
    with pytest.raises(UapiError):
        parse_get_reply("hello\n\n")
    with pytest.raises(UapiError):
        check_set_reply("errno=1\n\n")
    check_set_reply("errno=0\n\n")


def test_a_broken_private_key_line_is_not_echoed() -> None:
    secret = PRIVATE.hex()[:-2] + "zz"
    with pytest.raises(ValueError) as raised:
        parse_get_reply(f"private_key={secret}\nerrno=0\n\n")
    assert secret not in str(raised.value)


def test_set_request_is_one_message_with_removals_first() -> None:
    plan = PeerPlan(
        add=(PeerSpec(KEY_A, ipaddress.IPv4Address("10.0.0.5")),),
        remove=(KEY_C,),
        update=(PeerSpec(KEY_B, ipaddress.IPv4Address("10.0.0.7")),),
    )
    text = set_request(private_key=PRIVATE, listen_port=6000, plan=plan)
    assert text == (
        "set=1\n"
        f"private_key={PRIVATE.hex()}\n"
        "listen_port=6000\n"
        f"public_key={KEY_C.hex()}\nremove=true\n"
        f"public_key={KEY_A.hex()}\nreplace_allowed_ips=true\nallowed_ip=10.0.0.5/32\n"
        f"public_key={KEY_B.hex()}\nreplace_allowed_ips=true\nallowed_ip=10.0.0.7/32\n"
        "\n"
    )
    assert text.count("set=1") == 1


def test_set_request_leaves_out_what_is_not_asked() -> None:
    assert set_request(listen_port=6001) == "set=1\nlisten_port=6001\n\n"
