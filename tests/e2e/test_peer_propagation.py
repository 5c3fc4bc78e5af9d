"""Pods' peers on the gateways, as root, through the whole node side: a configuration provisioned
by an `egressgw controller` process (its own Temporal server, the ARM emulator, the session's API
server) on a pool of two gateway nodes, each a stand-in node with its own `egressgw agent`
process and wireguard-go devices (tests/fixtures/gateway_agents.py). Pods are real Pod objects
(Pending: no node runs them) owning their PodEndpoints, as the CNI manager writes them; what the
tests look at is what the gateways' WireGuard devices hold.

Waits are bounded generously (30 s): these tests show that peers follow PodEndpoints, and which
mechanism brings them in line; how fast is measured by bench/peer_propagation.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.wireguard_keys import generate_private_key, public_key_of, to_base64
from contracts import kube_names
from tests.fixtures.cluster import KubeObjects
from tests.fixtures.controller_stack import ControllerStack
from tests.fixtures.gateway_agents import GatewayAgent, gateway_agents
from tests.fixtures.kube_accounts import ComponentAccount, grant_namespace
from tests.fixtures.pods import wait_default_service_account
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.needs_root]

G, V = kube_names.API_GROUP, kube_names.API_VERSION
SGC = "egress"
WAIT = 30.0
NODE_FLAGS = ("--configure-nodes", "--node-answer-timeout", "3s")


@dataclass(frozen=True)
class Pod:
    name: str
    ip: str
    public_key: str  # base64


@dataclass
class PeerStack:
    """A Ready configuration on two gateway nodes with their agents, and its pods."""

    stack: ControllerStack
    kube: KubeObjects
    agents: list[GatewayAgent]
    port: int  # the configuration's listen port: its interface is wg-<port>

    def logs(self) -> str:
        agents = "\n".join(f"--- {a.node_name}\n{a.log()}" for a in self.agents)
        return f"{self.stack.logs()}\n{agents}"

    async def create_pod(self, name: str, ip: str) -> Pod:
        """A Pod and the PodEndpoint it owns, as the CNI manager writes it."""
        pod = Pod(name, ip, to_base64(public_key_of(generate_private_key())))
        namespace = self.stack.namespace
        created = await self.kube.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    # No node runs it: it stays Pending, and goes at once when deleted.
                    "nodeSelector": {"egressgw.test/nowhere": "true"},
                    "containers": [{"name": "main", "image": "busybox"}],
                },
            }
        )
        await self.kube.create(
            {
                "apiVersion": kube_names.GROUP_VERSION,
                "kind": kube_names.POD_ENDPOINT_KIND,
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "ownerReferences": [
                        {
                            "apiVersion": "v1",
                            "kind": "Pod",
                            "name": name,
                            "uid": created["metadata"]["uid"],
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "spec": {
                    "staticGatewayConfiguration": SGC,
                    "podIpAddress": f"{ip}/32",
                    "podPublicKey": pod.public_key,
                },
            }
        )
        return pod

    async def delete_pod(self, pod: Pod) -> None:
        assert await self.kube.delete("v1", "Pod", pod.name, self.stack.namespace)

    async def delete_pod_endpoint(self, pod: Pod) -> None:
        assert await self.kube.delete(
            kube_names.GROUP_VERSION, kube_names.POD_ENDPOINT_KIND, pod.name, self.stack.namespace
        )

    async def pod_endpoint(self, pod: Pod) -> dict[str, Any] | None:
        return await self.kube.get(
            kube_names.GROUP_VERSION, kube_names.POD_ENDPOINT_KIND, pod.name, self.stack.namespace
        )

    async def wait_peers(
        self, agents: list[GatewayAgent], check: Callable[[dict[str, str]], bool], what: str
    ) -> None:
        async def holds() -> bool:
            return all(check(agent.peers(self.port)) for agent in agents)

        try:
            await wait_for(holds, WAIT, what, every=0.2)
        except AssertionError as err:
            held = {a.node_name: a.peers(self.port) for a in agents}
            raise AssertionError(f"{err}; devices hold {held}\n{self.logs()}") from None


def has(pod: Pod) -> Callable[[dict[str, str]], bool]:
    return lambda peers: peers.get(pod.public_key) == f"{pod.ip}/32"


def lacks(pod: Pod) -> Callable[[dict[str, str]], bool]:
    return lambda peers: pod.public_key not in peers


def both(*checks: Callable[[dict[str, str]], bool]) -> Callable[[dict[str, str]], bool]:
    return lambda peers: all(check(peers) for check in checks)


@contextlib.asynccontextmanager
async def peer_stack(
    stack: ControllerStack,
    agent_account: ComponentAccount,
    net_tag: str,
    tmp_path: Path,
    *,
    controller_flags: tuple[str, ...] = (),
    agent_flags: tuple[str, ...] = (),
) -> AsyncIterator[PeerStack]:
    kube = await KubeObjects.of(stack.kube)
    await grant_namespace(stack.kube, agent_account, stack.secret_namespace)
    pool = stack.topology.vmss_pools[0]
    names = [pool.computer_name(i) for i in range(pool.instance_count)]
    with gateway_agents(
        net_tag,
        names,
        temporal_address=stack.temporal.address,
        kubeconfig=agent_account.kubeconfig,
        namespace=stack.secret_namespace,
        logs=tmp_path,
        flags=agent_flags,
    ) as agents:
        for agent in agents:
            agent.start()
        await stack.start_controller("controller", flags=(*NODE_FLAGS, *controller_flags))
        await stack.create_sgc(SGC)
        obj = await ready_on_every_node(stack)
        await wait_default_service_account(kube, stack.namespace)
        made = PeerStack(stack, kube, agents, int(obj["status"]["gatewayServerProfile"]["port"]))
        try:
            yield made
        finally:
            for agent in agents:
                await agent.stop()


async def ready_on_every_node(stack: ControllerStack) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def ready() -> bool:
        obj = await stack.get_sgc(SGC)
        seen["obj"] = obj
        conditions = {c["type"]: c for c in ((obj or {}).get("status") or {}).get("conditions", [])}
        ready: bool = conditions.get("Ready", {}).get("status") == "True"
        return ready and conditions.get("Degraded", {}).get("status") == "False"

    try:
        await wait_for(ready, 90, "the configuration to be Ready on every gateway node")
    except AssertionError as err:
        raise AssertionError(f"{err}: {seen.get('obj')}\n{stack.logs()}") from None
    obj: dict[str, Any] = seen["obj"]
    return obj


@pytest.fixture
async def peers(
    controller_stack: ControllerStack,
    agent_account: ComponentAccount,
    net_tag: str,
    tmp_path: Path,
) -> AsyncIterator[PeerStack]:
    """Default intervals, except the agents' peer resync: every second."""
    async with peer_stack(
        controller_stack,
        agent_account,
        net_tag,
        tmp_path,
        agent_flags=("--peer-resync-interval", "1s"),
    ) as made:
        yield made


async def test_a_pods_peer_is_on_every_gateway_and_leaves_with_the_pod(
    peers: PeerStack,
) -> None:
    web = await peers.create_pod("web-0", "10.244.1.7")
    api = await peers.create_pod("api-0", "10.244.1.8")
    await peers.wait_peers(peers.agents, both(has(web), has(api)), "both pods on every gateway")

    # The garbage collector deletes the PodEndpoint the Pod owned; the watcher tells the
    # configuration, whose peer pass takes the peer off every gateway.
    await peers.delete_pod(web)
    await peers.wait_peers(peers.agents, both(lacks(web), has(api)), "web-0 gone, api-0 kept")
    assert await peers.pod_endpoint(web) is None


async def test_a_peer_deleted_while_an_agent_was_down_is_gone_when_it_comes_back(
    peers: PeerStack,
) -> None:
    up, down = peers.agents
    web = await peers.create_pod("web-0", "10.244.1.7")
    api = await peers.create_pod("api-0", "10.244.1.8")
    await peers.wait_peers(peers.agents, both(has(web), has(api)), "both pods on every gateway")

    down.kill()  # its gateway stays on the node, with the peers it had
    await peers.delete_pod(web)
    late = await peers.create_pod("late-0", "10.244.1.9")
    # The gateway whose agent runs follows; the other one cannot.
    await peers.wait_peers([up], both(lacks(web), has(api), has(late)), "the live gateway")
    assert has(web)(down.peers(peers.port)) and lacks(late)(down.peers(peers.port))

    # Back, the agent tells the configuration, which re-applies the node with today's peers.
    down.start()
    await peers.wait_peers(
        peers.agents, both(lacks(web), has(api), has(late)), "every gateway in line again"
    )


async def test_a_peer_added_by_hand_is_removed_by_the_agents_resync(peers: PeerStack) -> None:
    web = await peers.create_pod("web-0", "10.244.1.7")
    await peers.wait_peers(peers.agents, has(web), "the pod on every gateway")
    stranger = Pod("by-hand", "10.244.9.9", to_base64(public_key_of(generate_private_key())))
    tampered = peers.agents[0]

    tampered.add_peer_by_hand(peers.port, stranger.public_key, f"{stranger.ip}/32")
    assert has(stranger)(tampered.peers(peers.port))

    await peers.wait_peers([tampered], both(lacks(stranger), has(web)), "the stranger gone")
    assert "peers had drifted" in tampered.log()


@pytest.fixture
async def peers_synced_often(
    controller_stack: ControllerStack,
    agent_account: ComponentAccount,
    net_tag: str,
    tmp_path: Path,
) -> AsyncIterator[PeerStack]:
    """The configuration's periodic full peer sync every 3 s (default 5 minutes)."""
    async with peer_stack(
        controller_stack,
        agent_account,
        net_tag,
        tmp_path,
        controller_flags=("--peer-sync-interval", "3s"),
    ) as made:
        yield made


async def test_a_pod_endpoint_deleted_while_no_controller_watched_goes_at_the_periodic_sync(
    peers_synced_often: PeerStack,
) -> None:
    peers = peers_synced_often
    web = await peers.create_pod("web-0", "10.244.1.7")
    await peers.wait_peers(peers.agents, has(web), "the pod on every gateway")

    # No controller sees the deletion happen, and the next one's watch starts without the
    # PodEndpoint: no change is ever watched. The periodic sync re-lists and finds it gone.
    (controller,) = peers.stack.controllers
    await controller.stop()
    await peers.delete_pod_endpoint(web)
    await peers.stack.start_controller("second", flags=(*NODE_FLAGS, "--peer-sync-interval", "3s"))

    await peers.wait_peers(peers.agents, lacks(web), "the unwatched deletion on every gateway")
