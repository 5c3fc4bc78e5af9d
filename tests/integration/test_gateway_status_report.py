"""The node's GatewayStatus, written with the real kubernetes_asyncio client to the real API server
as a gateway agent's ServiceAccount (deploy/rbac/agent.yaml). Whether a flush wrote is read from
the request log of the proxy in front of it (tests/fixtures/kube_proxy.py): the API server keeps
the resourceVersion of a no-op write too."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from kubernetes_asyncio.client import ApiClient

from agent.gateway_status_report import GatewayStatusReport
from contracts import kube_names
from tests.fixtures.cluster import KubeObjects
from tests.fixtures.kube_proxy import KubeProxy


@dataclass(frozen=True)
class Cluster:
    """The test's node (named after its namespace: Nodes are shared by the whole session) and
    the admin's view of the API server."""

    kube: KubeObjects
    namespace: str
    node: str
    proxy: KubeProxy

    async def create_node(self) -> str:
        node = await self.kube.create(
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.node}}
        )
        uid: str = node["metadata"]["uid"]
        return uid

    async def stored(self) -> dict[str, Any] | None:
        return await self.kube.get(
            kube_names.GROUP_VERSION, kube_names.GATEWAY_STATUS_KIND, self.node, self.namespace
        )

    def writes(self) -> list[str]:
        return [r.method for r in self.proxy.sent() if r.method != "GET"]


@pytest_asyncio.fixture
async def cluster(
    kube: KubeObjects, kube_namespace: str, kube_proxy: KubeProxy
) -> AsyncIterator[Cluster]:
    made = Cluster(kube, kube_namespace, f"gw-{kube_namespace}", kube_proxy)
    try:
        yield made
    finally:
        await kube.delete("v1", "Node", made.node)


def report_for(cluster: Cluster, api: ApiClient, max_peers: int = 2000) -> GatewayStatusReport:
    return GatewayStatusReport(
        api, node_name=cluster.node, namespace=cluster.namespace, max_peers=max_peers
    )


async def test_created_for_the_node_with_an_owner_reference_to_it(
    cluster: Cluster, agent_via_proxy: ApiClient
) -> None:
    node_uid = await cluster.create_node()
    report = report_for(cluster, agent_via_proxy)
    report.set_gateway("team-a/egress", "wg-6000")
    report.set_peers("wg-6000", [("team-a/pod-1", "PUBKEY1=")])

    assert await report.flush() is True

    obj = await cluster.stored()
    assert obj is not None
    assert obj["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": cluster.node, "uid": node_uid}
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
    cluster: Cluster, agent_via_proxy: ApiClient
) -> None:
    report = report_for(cluster, agent_via_proxy)
    report.set_gateway("team-a/egress", "wg-6000")

    assert await report.flush() is True

    obj = await cluster.stored()
    assert obj is not None
    assert "ownerReferences" not in obj["metadata"]
    assert obj["spec"]["readyGatewayConfigurations"][0]["interfaceName"] == "wg-6000"


async def test_updated_on_change_and_not_written_when_unchanged(
    cluster: Cluster, agent_via_proxy: ApiClient
) -> None:
    await cluster.create_node()
    report = report_for(cluster, agent_via_proxy)
    report.set_gateway("team-a/egress", "wg-6000")
    assert await report.flush() is True
    first = await cluster.stored()
    assert first is not None

    # The same content again, in any order: no write.
    writes = cluster.writes()
    report.set_gateway("team-a/egress", "wg-6000")
    report.set_peers("wg-6000", [])
    assert await report.flush() is False
    assert cluster.writes() == writes
    unchanged = await cluster.stored()
    assert unchanged is not None
    assert unchanged["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]

    report.set_gateway("team-b/egress", "wg-6001")
    report.set_peers("wg-6001", [("team-b/pod-2", "K2="), ("team-b/pod-1", "K1=")])
    assert await report.flush() is True

    updated = await cluster.stored()
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
    cluster: Cluster, agent_via_proxy: ApiClient
) -> None:
    await cluster.create_node()
    report = report_for(cluster, agent_via_proxy)
    report.set_gateway("team-a/egress", "wg-6000")
    report.set_gateway("team-b/egress", "wg-6001")
    report.set_peers("wg-6000", [("team-a/pod-1", "K1=")])
    report.set_peers("wg-6001", [("team-b/pod-1", "K2=")])
    assert await report.flush() is True

    report.remove_gateway("wg-6000")
    assert await report.flush() is True

    obj = await cluster.stored()
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
    emptied = await cluster.stored()
    assert emptied is not None
    assert emptied.get("spec", {}) == {}


async def test_peers_beyond_max_peers_are_not_stored_and_a_warning_says_how_many(
    cluster: Cluster, agent_via_proxy: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    await cluster.create_node()
    report = report_for(cluster, agent_via_proxy)  # max_peers defaults to 2000
    report.set_gateway("team-a/egress", "wg-6000")
    report.set_peers(
        "wg-6000",
        [(f"team-a/pod-{i:04d}", f"KEY{i:04d}+padding-padding-pad=") for i in range(2500)],
    )

    with caplog.at_level(logging.WARNING, logger="agent.gateway_status_report"):
        assert await report.flush() is True

    obj = await cluster.stored()
    assert obj is not None
    peers = obj["spec"]["readyPeerConfigurations"]
    assert len(peers) == 2000
    assert peers[0]["podEndpoint"] == "team-a/pod-0000"
    assert peers[-1]["podEndpoint"] == "team-a/pod-1999"
    assert any("500 peer entries left out" in record.getMessage() for record in caplog.records)


async def test_a_concurrent_write_is_retried_on_top_of_it(
    cluster: Cluster, agent_via_proxy: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    await cluster.create_node()
    report = report_for(cluster, agent_via_proxy)
    report.set_gateway("team-a/egress", "wg-6000")
    assert await report.flush() is True

    # Someone else changes the object after the report last wrote it (a user labelling it): the
    # report's next write carries a stale resourceVersion and is refused with 409.
    other = await cluster.stored()
    assert other is not None
    other["metadata"]["labels"] = {"debug": "yes"}
    await cluster.kube.update(other)

    report.set_peers("wg-6000", [("team-a/pod-1", "K1=")])
    with caplog.at_level(logging.INFO, logger="agent.gateway_status_report"):
        assert await report.flush() is True

    assert any("HTTP 409" in record.getMessage() for record in caplog.records)
    obj = await cluster.stored()
    assert obj is not None
    assert obj["metadata"]["labels"] == {"debug": "yes"}
    assert obj["spec"]["readyPeerConfigurations"] == [
        {"podEndpoint": "team-a/pod-1", "interfaceName": "wg-6000", "publicKey": "K1="}
    ]


async def test_a_restarted_agent_does_not_rewrite_what_is_already_stored(
    cluster: Cluster, agent_via_proxy: ApiClient
) -> None:
    await cluster.create_node()
    before = report_for(cluster, agent_via_proxy)
    before.set_gateway("team-a/egress", "wg-6000")
    assert await before.flush() is True
    first = await cluster.stored()
    assert first is not None

    writes = cluster.writes()
    after = report_for(cluster, agent_via_proxy)
    after.set_gateway("team-a/egress", "wg-6000")
    assert await after.flush() is False
    assert cluster.writes() == writes  # it read what is stored and found it current

    again = await cluster.stored()
    assert again is not None
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


async def test_recreated_after_it_was_deleted_underneath(
    cluster: Cluster, agent_via_proxy: ApiClient
) -> None:
    await cluster.create_node()
    report = report_for(cluster, agent_via_proxy)
    report.set_gateway("team-a/egress", "wg-6000")
    assert await report.flush() is True
    await cluster.kube.delete(
        kube_names.GROUP_VERSION, kube_names.GATEWAY_STATUS_KIND, cluster.node, cluster.namespace
    )

    report.set_gateway("team-b/egress", "wg-6001")
    assert await report.flush() is True

    obj = await cluster.stored()
    assert obj is not None
    assert len(obj["spec"]["readyGatewayConfigurations"]) == 2
