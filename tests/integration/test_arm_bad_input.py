"""A few hundred malformed requests: every one gets an ARM-shaped 4xx (never a 5xx), and the
resources that existed before are untouched."""

from __future__ import annotations

import copy
import io
import json
import random
import ssl
from typing import Any

import aiohttp

from sim.arm.server import ArmEmulator
from sim.topology import Topology

JUNK: list[Any] = [None, 0, -1, 2**70, 1.5, True, "", "x" * 300, [], [1, "a"], {}, {"id": 5}]
METHODS = ["GET", "PUT", "PATCH", "DELETE", "POST"]


def _valid_bodies(topo: Topology) -> dict[str, dict[str, Any]]:
    rg = topo.resource_group_id
    vnet = f"{rg}/providers/Microsoft.Network/virtualNetworks/{topo.vnet_name}"
    subnet = f"{vnet}/subnets/{topo.gateway_subnet_name}"
    lb = f"{rg}/providers/Microsoft.Network/loadBalancers/fuzz-lb"
    return {
        "Microsoft.Network/loadBalancers/fuzz-lb": {
            "location": topo.location,
            "properties": {
                "frontendIPConfigurations": [
                    {"name": "fe", "properties": {"subnet": {"id": subnet}}}
                ],
                "backendAddressPools": [{"name": "pool"}],
                "probes": [{"name": "pr", "properties": {"protocol": "Tcp", "port": 80}}],
                "loadBalancingRules": [
                    {
                        "name": "r",
                        "properties": {
                            "protocol": "Udp",
                            "frontendPort": 6000,
                            "backendPort": 6000,
                            "frontendIPConfiguration": {"id": f"{lb}/frontendIPConfigurations/fe"},
                            "backendAddressPool": {"id": f"{lb}/backendAddressPools/pool"},
                            "probe": {"id": f"{lb}/probes/pr"},
                        },
                    }
                ],
            },
        },
        "Microsoft.Network/publicIPPrefixes/fuzz-prefix": {
            "location": topo.location,
            "properties": {"prefixLength": 30, "publicIPAddressVersion": "IPv4"},
        },
        "Microsoft.Network/networkInterfaces/fuzz-nic": {
            "location": topo.location,
            "tags": {"a": "b"},
            "properties": {
                "ipConfigurations": [
                    {"name": "c", "properties": {"subnet": {"id": subnet}, "primary": True}}
                ]
            },
        },
        "Microsoft.Compute/virtualMachineScaleSets/fuzz-vmss/virtualMachines/0": {
            "location": topo.location,
            "properties": {
                "networkProfileConfiguration": {
                    "networkInterfaceConfigurations": [
                        {
                            "name": "n",
                            "properties": {
                                "primary": True,
                                "ipConfigurations": [
                                    {
                                        "name": "i",
                                        "properties": {
                                            "subnet": {"id": subnet},
                                            "publicIPAddressConfiguration": {
                                                "name": "pip",
                                                "properties": {
                                                    "publicIPPrefix": {
                                                        "id": f"{rg}/providers/Microsoft.Network/"
                                                        "publicIPPrefixes/fuzz-prefix"
                                                    }
                                                },
                                            },
                                        },
                                    }
                                ],
                            },
                        }
                    ]
                }
            },
        },
        "Microsoft.Compute/virtualMachines/fuzz-vm": {
            "location": topo.location,
            "properties": {
                "osProfile": {"computerName": "fuzz"},
                "networkProfile": {
                    "networkInterfaces": [
                        {
                            "id": f"{rg}/providers/Microsoft.Network/networkInterfaces/fuzz-nic",
                            "properties": {"primary": True},
                        }
                    ]
                },
            },
        },
        "Microsoft.Compute/virtualMachineScaleSets/fuzz-vmss": {
            "location": topo.location,
            "sku": {"capacity": 2},
            "properties": {
                "virtualMachineProfile": {
                    "networkProfile": {
                        "networkInterfaceConfigurations": [
                            {
                                "name": "n",
                                "properties": {
                                    "primary": True,
                                    "ipConfigurations": [
                                        {"name": "i", "properties": {"subnet": {"id": subnet}}}
                                    ],
                                },
                            }
                        ]
                    }
                }
            },
        },
    }


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    body = copy.deepcopy(body)
    for _ in range(rng.randint(1, 3)):
        where = rng.choice(_paths(body))
        target: Any = body
        for step in where[:-1]:
            target = target[step]
        target[where[-1]] = copy.deepcopy(rng.choice(JUNK))
    return body


def _request(rng: random.Random, topo: Topology) -> tuple[str, str, bytes, dict[str, str]]:
    rg = topo.resource_group_id
    bodies = _valid_bodies(topo)
    kind = rng.randrange(9)
    version = rng.choice(["2026-03-01", "2026-04-01", "", "latest", "2024-13-99x", None])
    query = "" if version is None else f"?api-version={version}"
    headers = {"Authorization": "Bearer fuzz"}
    if kind == 0:  # broken JSON
        target = rng.choice(list(bodies))
        raw = json.dumps(bodies[target]).encode()
        cut = raw[: rng.randrange(1, len(raw))] + rng.choice([b"", b"\xff\xfe", b"}}", b"[{"])
        return "PUT", f"{rg}/providers/{target}{query}", cut, headers
    if kind == 1:  # a JSON value that is not an object
        target = rng.choice(list(bodies))
        raw = json.dumps(rng.choice([[1, 2], "text", 42, None, True])).encode()
        return rng.choice(["PUT", "PATCH"]), f"{rg}/providers/{target}{query}", raw, headers
    if kind in (2, 3, 4):  # wrong types deep inside an otherwise valid body
        target = rng.choice(list(bodies))
        raw = json.dumps(_mutate(bodies[target], rng)).encode()
        return "PUT", f"{rg}/providers/{target}?api-version=2026-03-01", raw, headers
    if kind == 5:  # unknown paths and types
        path = rng.choice(
            [
                "/nothing/here",
                "/subscriptions",
                f"{rg}/providers/Microsoft.Network/unknownThings/x",
                f"{rg}/providers/Microsoft.Nope/things/x",
                f"{rg}/providers/Microsoft.Network",
                f"{rg}/whatever/x",
                f"{rg}/providers/Microsoft.Network/loadBalancers/lb/unknownChild/c",
            ]
        )
        return rng.choice(METHODS), f"{path}{query}", b"{}", headers
    if kind == 6:  # bad resource names and IDs
        name = rng.choice(["a<b", "bad%25name", "x" * 300, "dots..", "sp ace", "q?x", "a:b"])
        return (
            rng.choice(METHODS),
            f"{rg}/providers/Microsoft.Network/loadBalancers/{name}{query}",
            b"{}",
            headers,
        )
    if kind == 7:  # references that are not resource IDs
        body = copy.deepcopy(bodies["Microsoft.Network/networkInterfaces/fuzz-nic"])
        body["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"] = rng.choice(
            [
                "",
                "not-an-id",
                "/subscriptions/x",
                f"{rg}/providers/Microsoft.Network/virtualNetworks/v/subnets/missing",
                "/subscriptions/" + "z/" * 50,
            ]
        )
        return (
            "PUT",
            f"{rg}/providers/Microsoft.Network/networkInterfaces/fuzz-nic2?api-version=2026-03-01",
            json.dumps(body).encode(),
            headers,
        )
    huge = b'{"location": "westeurope", "tags": {"k": "' + b"x" * (5 * 1024 * 1024) + b'"}}'
    return (
        "PUT",
        f"{rg}/providers/Microsoft.Network/publicIPPrefixes/huge?api-version=2026-03-01",
        huge,
        headers,
    )


async def test_malformed_requests_get_arm_shaped_4xx(
    arm_emulator: ArmEmulator, arm_topology: Topology
) -> None:
    before = {r.key: copy.deepcopy(r.body) for r in arm_emulator.store}
    rng = random.Random(20261126)
    tls = ssl.create_default_context(cafile=str(arm_emulator.ca_path))
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            method, path, raw, headers = _request(rng, arm_topology)
            async with session.request(
                method,
                arm_emulator.url + path,
                data=io.BytesIO(raw) if len(raw) > 1024 * 1024 else raw,
                headers=headers,
                ssl=tls,
            ) as resp:
                text = await resp.text()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                assert resp.status < 500, (method, path[:120], resp.status, text[:300])
                if resp.status >= 400:
                    error = json.loads(text)["error"]
                    assert error["code"] and error["message"], text[:300]
    assert sum(n for s, n in statuses.items() if s >= 400) > 200
    # Nothing that existed before was changed (fuzz-* names are new resources).
    for key, body in before.items():
        current = arm_emulator.store.get(key)
        assert current is not None and current.body == body, key
