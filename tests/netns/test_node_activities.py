"""The node activities as a worker runs them: a real activity context (ActivityEnvironment), the
real dataplane on a stand-in node (tests/fixtures/netns.py), the gateway's key in a Secret
and GatewayStatus on the real API server (read and written as the agent's ServiceAccount, its
Role bound in the test's namespace), and a probe server the test asks over HTTP.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest
from pyroute2 import netns
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.kube.gateway_keys import KeyPair, new_key_pair, secret_data
from agent import wireguard_uapi
from agent.gateway_dataplane import Dataplane, open_dataplane
from agent.gateway_secret_reader import GatewaySecretReader
from agent.gateway_status_report import GatewayStatusReport
from agent.node_activities import (
    GATEWAY_NOT_APPLIED,
    GATEWAY_SECRET_INVALID,
    GATEWAY_SECRET_MISSING,
    INVALID_NODE_INPUT,
    NodeActivities,
)
from agent.node_settings import NodeSettings
from agent.probe_server import ProbeServer
from agent.wireguard_keys import generate_private_key, public_key_of, to_base64
from contracts import kube_names
from contracts.node_io import (
    ApplyGatewayInput,
    GatewayPeer,
    NodeGateway,
    RemoveGatewayInput,
    SecretRef,
    SyncPeersInput,
)
from tests.fixtures.cluster import KubeObjects
from tests.fixtures.kube_grants import Granted
from tests.fixtures.netns import (
    FRONTEND,
    PRIMARY,
    make_node_namespaces,
    remove_namespaces,
    stop_daemons,
    uapi_peers,
)

pytestmark = pytest.mark.needs_root

NODE = "gw-node-0"
SGC_UID = "0b9a6c2e-5d1f-4c3e-9f0a-1e2d3c4b5a69"
SECRET_NAME = "sgw-0b9a6c2e"


def daemon_socket_exists(tag: str, port: int) -> bool:
    return wireguard_uapi.socket_path(f"wg{tag}{port}").exists()


def pod_key() -> str:
    return to_base64(public_key_of(generate_private_key()))


def gateway(pair: KeyPair, namespace: str, **changes: Any) -> NodeGateway:
    base = NodeGateway(
        sgc_uid=SGC_UID,
        sgc_namespace="team-a",
        sgc_name="egress",
        listen_port=6000,
        frontend_ip=FRONTEND,
        primary_ip=PRIMARY,
        secondary_ip="10.1.0.5",
        private_key_secret=SecretRef(namespace, SECRET_NAME),
        public_key=pair.public_key,
    )
    return replace(base, **changes)


@dataclass
class Agent:
    tag: str
    activities: NodeActivities
    probe: ProbeServer
    kube: KubeObjects  # the admin's view
    namespace: str  # the agent's: key Secrets and GatewayStatus
    settings: NodeSettings
    pair: KeyPair
    env: ActivityEnvironment

    async def run(self, activity: Any, request: Any) -> Any:
        return await self.env.run(activity, request)

    async def probe_status(self, uid: str) -> int:
        url = f"http://127.0.0.1:{self.probe.port}/gw/{uid}"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status

    async def status_spec(self) -> dict[str, Any]:
        obj = await self.kube.get(
            kube_names.GROUP_VERSION, kube_names.GATEWAY_STATUS_KIND, NODE, self.namespace
        )
        assert obj is not None
        spec: dict[str, Any] = obj["spec"]
        return spec

    async def put_secret(self, data: dict[str, str], name: str = SECRET_NAME) -> None:
        await self.kube.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": self.namespace},
                "data": data,
            }
        )


@pytest.fixture
async def agent(net_tag: str, kube: KubeObjects, agent_here: Granted) -> AsyncIterator[Agent]:
    created = [f"{net_tag}-h", f"{net_tag}-i", f"{net_tag}-g"]
    settings = NodeSettings(
        gateway_netns=f"{net_tag}-g", host_interface=f"{net_tag}e", socket_tag=net_tag
    )
    namespace = agent_here.namespace
    # Nodes belong to the whole session's cluster: this test's goes when it ends.
    await kube.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}})
    pair = new_key_pair()
    probe = ProbeServer("127.0.0.1", 0, drain_seconds=0.0)
    dataplane: Dataplane | None = None
    try:
        make_node_namespaces(net_tag)
        dataplane = open_dataplane(settings, host_netns=f"{net_tag}-h")
        await probe.start()
        api = agent_here.api
        status = GatewayStatusReport(api, node_name=NODE, namespace=namespace)
        # No grace for fresh applies: these tests remove orphans right after applying.
        activities = NodeActivities(
            NODE, dataplane, GatewaySecretReader(api), probe, status, recent_grace=0
        )
        agent = Agent(
            net_tag, activities, probe, kube, namespace, settings, pair, ActivityEnvironment()
        )
        await agent.put_secret(secret_data(pair))
        yield agent
    finally:
        await probe.stop()
        if dataplane is not None:
            await dataplane.close()
        stop_daemons(net_tag)
        remove_namespaces(created)
        await kube.delete("v1", "Node", NODE)


async def test_apply_activates_the_probe_and_lists_the_gateway(
    agent: Agent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    peers = (GatewayPeer(pod_key(), "10.244.0.1", "team-a/pod-1"),)
    assert await agent.probe_status(SGC_UID) == 503

    result = await agent.run(
        agent.activities.apply_gateway,
        ApplyGatewayInput(NODE, gateway(agent.pair, agent.namespace), peers),
    )

    assert result.interface_name == "wg-6000"
    assert "created wg-6000 (wireguard-go)" in result.changes
    assert (result.peers.added, result.peers.removed, result.peers.rejected) == (1, 0, ())
    assert await agent.probe_status(SGC_UID) == 200
    assert await agent.status_spec() == {
        "readyGatewayConfigurations": [
            {"staticGatewayConfiguration": "team-a/egress", "interfaceName": "wg-6000"}
        ],
        "readyPeerConfigurations": [
            {
                "podEndpoint": "team-a/pod-1",
                "interfaceName": "wg-6000",
                "publicKey": peers[0].public_key,
            }
        ],
    }
    again = await agent.run(
        agent.activities.apply_gateway,
        ApplyGatewayInput(NODE, gateway(agent.pair, agent.namespace), peers),
    )
    assert again.changes == ()
    assert "applied team-a/egress" in caplog.text
    raw = base64.b64decode(agent.pair.private_key)
    for form in (agent.pair.private_key, raw.hex()):
        assert form not in caplog.text


async def test_a_malformed_peer_is_rejected_and_the_others_applied(agent: Agent) -> None:
    good = [GatewayPeer(pod_key(), f"10.244.0.{n}", f"team-a/pod-{n}") for n in (1, 2)]
    bad = GatewayPeer("AAAA", "10.244.0.3", "team-a/pod-3")
    request = ApplyGatewayInput(NODE, gateway(agent.pair, agent.namespace), (good[0], bad, good[1]))

    result = await agent.run(agent.activities.apply_gateway, request)

    assert (result.peers.added, result.peers.removed) == (2, 0)
    assert [(r.pod_endpoint, r.reason) for r in result.peers.rejected] == [
        ("team-a/pod-3", "peers[1].public_key: a WireGuard key is 32 bytes, got 3")
    ]
    assert set(uapi_peers(agent.tag, 6000).values()) == {"10.244.0.1/32", "10.244.0.2/32"}
    listed = (await agent.status_spec())["readyPeerConfigurations"]
    assert [entry["podEndpoint"] for entry in listed] == ["team-a/pod-1", "team-a/pod-2"]

    synced = await agent.run(
        agent.activities.sync_peers, SyncPeersInput(NODE, SGC_UID, 6000, (good[1], bad))
    )

    assert (synced.added, synced.removed, len(synced.rejected)) == (0, 1, 1)
    assert set(uapi_peers(agent.tag, 6000).values()) == {"10.244.0.2/32"}


async def test_invalid_input_fails_for_good_naming_every_field_and_changes_nothing(
    agent: Agent,
) -> None:
    bad = gateway(agent.pair, agent.namespace, secondary_ip="10.0.0.300", listen_port=80)

    with pytest.raises(ApplicationError) as failure:
        await agent.run(agent.activities.apply_gateway, ApplyGatewayInput("node-9", bad))

    assert failure.value.type == INVALID_NODE_INPUT
    assert failure.value.non_retryable
    message = str(failure.value)
    assert "node_name: 'node-9' is not this node ('gw-node-0')" in message
    assert "gateway.listen_port: 80 is outside [6000, 7000)" in message
    assert "gateway.secondary_ip: '10.0.0.300' is not an IPv4 address" in message
    assert agent.settings.gateway_netns not in netns.listnetns()
    with pytest.raises(ApplicationError) as removal:
        await agent.run(agent.activities.remove_gateway, RemoveGatewayInput(NODE, "", 6000))
    assert removal.value.type == INVALID_NODE_INPUT
    assert "sgc_uid: must not be empty" in str(removal.value)


async def test_a_key_that_does_not_match_fails_for_good_without_showing_it(agent: Agent) -> None:
    other = new_key_pair()
    await agent.put_secret(secret_data(other), name="sgw-other")
    mismatched = gateway(
        agent.pair, agent.namespace, private_key_secret=SecretRef(agent.namespace, "sgw-other")
    )

    with pytest.raises(ApplicationError) as failure:
        await agent.run(agent.activities.apply_gateway, ApplyGatewayInput(NODE, mismatched))

    assert failure.value.type == GATEWAY_SECRET_INVALID
    assert failure.value.non_retryable
    assert f"Secret {agent.namespace}/sgw-other" in str(failure.value)
    shown = repr(failure.value) + str(failure.value) + repr(failure.value.__cause__)
    raw = base64.b64decode(other.private_key)
    for form in (other.private_key, raw.hex(), secret_data(other)[kube_names.SECRET_PRIVATE_KEY]):
        assert form not in shown
    assert agent.settings.gateway_netns not in netns.listnetns()
    assert await agent.probe_status(SGC_UID) == 503


async def test_a_malformed_key_fails_for_good(agent: Agent) -> None:
    garbage = base64.b64encode(b"not a key").decode()
    await agent.put_secret({kube_names.SECRET_PRIVATE_KEY: garbage}, name="sgw-bad")
    malformed = gateway(
        agent.pair, agent.namespace, private_key_secret=SecretRef(agent.namespace, "sgw-bad")
    )

    with pytest.raises(ApplicationError) as failure:
        await agent.run(agent.activities.apply_gateway, ApplyGatewayInput(NODE, malformed))

    assert failure.value.type == GATEWAY_SECRET_INVALID
    assert failure.value.non_retryable
    assert failure.value.message == (
        f"Secret {agent.namespace}/sgw-bad data.PrivateKey: not base64 of a base64 key"
    )


async def test_a_missing_secret_is_worth_retrying(agent: Agent) -> None:
    missing = gateway(
        agent.pair, agent.namespace, private_key_secret=SecretRef(agent.namespace, "sgw-not-yet")
    )

    with pytest.raises(ApplicationError) as failure:
        await agent.run(agent.activities.apply_gateway, ApplyGatewayInput(NODE, missing))

    assert failure.value.type == GATEWAY_SECRET_MISSING
    assert not failure.value.non_retryable


async def test_sync_before_apply_fails_for_good(agent: Agent) -> None:
    with pytest.raises(ApplicationError) as failure:
        await agent.run(agent.activities.sync_peers, SyncPeersInput(NODE, SGC_UID, 6000, ()))

    assert failure.value.type == GATEWAY_NOT_APPLIED
    assert failure.value.non_retryable


async def test_remove_answers_503_and_drops_the_status_entry(agent: Agent) -> None:
    peers = (GatewayPeer(pod_key(), "10.244.0.1", "team-a/pod-1"),)
    await agent.run(
        agent.activities.apply_gateway,
        ApplyGatewayInput(NODE, gateway(agent.pair, agent.namespace), peers),
    )
    assert await agent.probe_status(SGC_UID) == 200

    await agent.run(
        agent.activities.remove_gateway, RemoveGatewayInput(NODE, SGC_UID, 6000, "10.1.0.5")
    )

    assert await agent.probe_status(SGC_UID) == 503
    spec = await agent.status_spec()
    assert spec.get("readyGatewayConfigurations", []) == []
    assert spec.get("readyPeerConfigurations", []) == []
    assert not daemon_socket_exists(agent.tag, 6000)
    # Removing again is fine: the workflow may retry after a lost reply.
    await agent.run(
        agent.activities.remove_gateway, RemoveGatewayInput(NODE, SGC_UID, 6000, "10.1.0.5")
    )


async def test_orphan_removal_stops_advertising_what_is_no_longer_desired(agent: Agent) -> None:
    kept = gateway(agent.pair, agent.namespace)
    other_pair = new_key_pair()
    await agent.put_secret(secret_data(other_pair), name="sgw-b")
    dropped = gateway(
        other_pair,
        agent.namespace,
        sgc_uid="uid-b",
        sgc_name="egress-b",
        listen_port=6001,
        secondary_ip="10.1.0.6",
        private_key_secret=SecretRef(agent.namespace, "sgw-b"),
    )
    for item in (kept, dropped):
        await agent.run(agent.activities.apply_gateway, ApplyGatewayInput(NODE, item))

    removed = await agent.activities.remove_orphans([kept])

    assert "deleted wg-6001" in removed
    assert await agent.probe_status("uid-b") == 503
    assert await agent.probe_status(SGC_UID) == 200
    listed = (await agent.status_spec())["readyGatewayConfigurations"]
    assert [entry["interfaceName"] for entry in listed] == ["wg-6000"]
