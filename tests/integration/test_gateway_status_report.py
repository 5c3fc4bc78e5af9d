"""The node's GatewayStatus, written with the real kubernetes_asyncio client to the Kubernetes
emulator (which serves the project's CRDs)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient

from agent.gateway_status_report import GatewayStatusReport
from contracts import kube_names
from sim.kube.server import KubeEmulator

NODE = "gw-node-0"
NAMESPACE = "egressgw-system"


@pytest.fixture
async def cluster(kube_emulator: KubeEmulator) -> KubeEmulator:
    await kube_emulator.create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    )
    return kube_emulator


async def create_node(cluster: KubeEmulator) -> str:
    node = await cluster.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}})
    uid: str = node["metadata"]["uid"]
    return uid


async def stored(cluster: KubeEmulator) -> dict[str, Any] | None:
    return await cluster.get(
        kube_names.GROUP_VERSION, kube_names.GATEWAY_STATUS_KIND, NODE, NAMESPACE
    )


def report_for(api: ApiClient, max_peers: int = 2000) -> GatewayStatusReport:
    return GatewayStatusReport(api, node_name=NODE, namespace=NAMESPACE, max_peers=max_peers)


async def test_created_for_the_node_with_an_owner_reference_to_it(
    cluster: KubeEmulator, kube_async_client: ApiClient
) -> None:
    node_uid = await create_node(cluster)
    report = report_for(kube_async_client)
    report.set_gateway("team-a/egress", "wg-6000")
    report.set_peers("wg-6000", [("team-a/pod-1", "PUBKEY1=")])

    assert await report.flush() is True

    obj = await stored(cluster)
    assert obj is not None
    assert obj["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": NODE, "uid": node_uid}
    ]
    assert obj["spec"] == {
        "readyGatewayConfigurations": [
            {"staticGatewayConfiguration": "team-a/egress", "interfaceName": "wg-6000"}
        ],
        "readyPeerConfigurations": [
            {"podEndpoint": "team-a/pod-1", "interfaceName": "wg-6000", "publicKey": "PUBKEY1="}
        ],
    }


async def test_created_without_owner_when_the_node_object_is_missing(
    cluster: KubeEmulator, kube_async_client: ApiClient
) -> None:
    report = report_for(kube_async_client)
    report.set_gateway("team-a/egress", "wg-6000")

    assert await report.flush() is True

    obj = await stored(cluster)
    assert obj is not None
    assert "ownerReferences" not in obj["metadata"]
    assert obj["spec"]["readyGatewayConfigurations"][0]["interfaceName"] == "wg-6000"


async def test_updated_on_change_and_not_written_when_unchanged(
    cluster: KubeEmulator, kube_async_client: ApiClient
) -> None:
    await create_node(cluster)
    report = report_for(kube_async_client)
    report.set_gateway("team-a/egress", "wg-6000")
    assert await report.flush() is True
    first = await stored(cluster)
    assert first is not None

    # The same content again, in any order: no write.
    report.set_gateway("team-a/egress", "wg-6000")
    report.set_peers("wg-6000", [])
    assert await report.flush() is False
    unchanged = await stored(cluster)
    assert unchanged is not None
    assert unchanged["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]

    report.set_gateway("team-b/egress", "wg-6001")
    report.set_peers("wg-6001", [("team-b/pod-2", "K2="), ("team-b/pod-1", "K1=")])
    assert await report.flush() is True

    updated = await stored(cluster)
    assert updated is not None
    assert updated["metadata"]["uid"] == first["metadata"]["uid"]
    assert [g["interfaceName"] for g in updated["spec"]["readyGatewayConfigurations"]] == [
        "wg-6000",
        "wg-6001",
    ]
    assert [p["podEndpoint"] for p in updated["spec"]["readyPeerConfigurations"]] == [
        "team-b/pod-1",
        "team-b/pod-2",
    ]


async def test_removing_a_gateway_removes_it_and_its_peers(
    cluster: KubeEmulator, kube_async_client: ApiClient
) -> None:
    await create_node(cluster)
    report = report_for(kube_async_client)
    report.set_gateway("team-a/egress", "wg-6000")
    report.set_gateway("team-b/egress", "wg-6001")
    report.set_peers("wg-6000", [("team-a/pod-1", "K1=")])
    report.set_peers("wg-6001", [("team-b/pod-1", "K2=")])
    assert await report.flush() is True

    report.remove_gateway("wg-6000")
    assert await report.flush() is True

    obj = await stored(cluster)
    assert obj is not None
    assert obj["spec"] == {
        "readyGatewayConfigurations": [
            {"staticGatewayConfiguration": "team-b/egress", "interfaceName": "wg-6001"}
        ],
        "readyPeerConfigurations": [
            {"podEndpoint": "team-b/pod-1", "interfaceName": "wg-6001", "publicKey": "K2="}
        ],
    }

    report.remove_gateway("wg-6001")
    assert await report.flush() is True
    emptied = await stored(cluster)
    assert emptied is not None
    assert emptied.get("spec", {}) == {}


async def test_peers_beyond_max_peers_are_not_stored_and_a_warning_says_how_many(
    cluster: KubeEmulator, kube_async_client: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    await create_node(cluster)
    report = report_for(kube_async_client)  # max_peers defaults to 2000
    report.set_gateway("team-a/egress", "wg-6000")
    report.set_peers(
        "wg-6000",
        [(f"team-a/pod-{i:04d}", f"KEY{i:04d}+padding-padding-pad=") for i in range(2500)],
    )

    with caplog.at_level(logging.WARNING, logger="agent.gateway_status_report"):
        assert await report.flush() is True

    obj = await stored(cluster)
    assert obj is not None
    peers = obj["spec"]["readyPeerConfigurations"]
    assert len(peers) == 2000
    assert peers[0]["podEndpoint"] == "team-a/pod-0000"
    assert peers[-1]["podEndpoint"] == "team-a/pod-1999"
    assert any("500 peer entries left out" in record.getMessage() for record in caplog.records)


async def test_a_concurrent_write_is_retried_on_top_of_it(
    cluster: KubeEmulator, kube_async_client: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    await create_node(cluster)
    report = report_for(kube_async_client)
    report.set_gateway("team-a/egress", "wg-6000")
    assert await report.flush() is True

    # Someone else changes the object after the report last wrote it (a user labelling it): the
    # report's next write carries a stale resourceVersion and is refused with 409.
    other = await stored(cluster)
    assert other is not None
    other["metadata"]["labels"] = {"debug": "yes"}
    await cluster.update(other)

    report.set_peers("wg-6000", [("team-a/pod-1", "K1=")])
    with caplog.at_level(logging.INFO, logger="agent.gateway_status_report"):
        assert await report.flush() is True

    assert any("HTTP 409" in record.getMessage() for record in caplog.records)
    obj = await stored(cluster)
    assert obj is not None
    assert obj["metadata"]["labels"] == {"debug": "yes"}
    assert obj["spec"]["readyPeerConfigurations"] == [
        {"podEndpoint": "team-a/pod-1", "interfaceName": "wg-6000", "publicKey": "K1="}
    ]


async def test_a_restarted_agent_does_not_rewrite_what_is_already_stored(
    cluster: KubeEmulator, kube_async_client: ApiClient
) -> None:
    await create_node(cluster)
    before = report_for(kube_async_client)
    before.set_gateway("team-a/egress", "wg-6000")
    assert await before.flush() is True
    first = await stored(cluster)
    assert first is not None

    after = report_for(kube_async_client)
    after.set_gateway("team-a/egress", "wg-6000")
    assert await after.flush() is False

    again = await stored(cluster)
    assert again is not None
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


async def test_recreated_after_it_was_deleted_underneath(
    cluster: KubeEmulator, kube_async_client: ApiClient
) -> None:
    await create_node(cluster)
    report = report_for(kube_async_client)
    report.set_gateway("team-a/egress", "wg-6000")
    assert await report.flush() is True
    await cluster.delete(kube_names.GROUP_VERSION, kube_names.GATEWAY_STATUS_KIND, NODE, NAMESPACE)

    report.set_gateway("team-b/egress", "wg-6001")
    assert await report.flush() is True

    obj = await stored(cluster)
    assert obj is not None
    assert len(obj["spec"]["readyGatewayConfigurations"]) == 2
