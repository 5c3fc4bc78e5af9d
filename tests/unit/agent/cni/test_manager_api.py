"""The plugin <-> manager messages (agent/cni/manager_api.py)."""

from __future__ import annotations

import base64

import pytest

from agent.cni import manager_api as api
from agent.cni.cni_protocol import PodRef
from agent.cni.manager_api import GatewayProfile, ManagerError, NicAddRequest, NicDelRequest

KEY = base64.b64encode(bytes(range(32))).decode()


def test_requests_round_trip_through_the_wire_format() -> None:
    request = NicAddRequest(PodRef("ns", "web"), "10.244.1.5", KEY, "egress")
    method, params = api.decode_request(api.encode_request(api.NIC_ADD, request.to_json()))
    assert method == api.NIC_ADD
    assert NicAddRequest.from_json(params) == request
    assert params["podConfig"] == {"podNamespace": "ns", "podName": "web"}
    deleted = NicDelRequest(PodRef("ns", "web"))
    assert NicDelRequest.from_json(deleted.to_json()) == deleted


def test_replies_carry_a_result_or_a_typed_error() -> None:
    profile = GatewayProfile("10.224.0.4", 6000, KEY, ("1.2.3.0/24",), "azureNetworking")
    assert GatewayProfile.from_json(api.decode_reply(api.encode_result(profile.to_json()))) == (
        profile
    )
    with pytest.raises(ManagerError) as caught:
        api.decode_reply(api.encode_error(ManagerError(api.NOT_READY, "later")))
    assert (caught.value.kind, caught.value.message) == (api.NOT_READY, "later")
    with pytest.raises(ManagerError) as caught:
        api.decode_reply(b'{"error": {"kind": "Bogus"}}')
    assert caught.value.kind == api.INTERNAL


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{", "not JSON"),
        (b'{"method": "Drop"}', "unknown method 'Drop'"),
        (b'{"method": "NicAdd", "params": []}', "params is not an object"),
    ],
)
def test_bad_requests(line: bytes, message: str) -> None:
    with pytest.raises(ManagerError, match=message):
        api.decode_request(line)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "podConfig is missing"),
        ({"podConfig": {"podNamespace": "ns"}}, "podName is missing"),
        (
            {"podConfig": {"podNamespace": "n", "podName": "p"}, "allowedIp": "10.0.0.300"},
            "is not an IPv4 address",
        ),
        (
            {
                "podConfig": {"podNamespace": "n", "podName": "p"},
                "allowedIp": "10.0.0.3",
                "publicKey": "abc",
                "gatewayName": "g",
            },
            "publicKey is not base64",
        ),
    ],
)
def test_bad_nic_add_fields_are_invalid_arguments(params: dict[str, object], message: str) -> None:
    with pytest.raises(ManagerError, match=message) as caught:
        NicAddRequest.from_json(params)
    assert caught.value.kind == api.INVALID
