"""Node activities: what GatewayConfigWorkflow asks a gateway node's agent to do.

They run on the node's own task queue (resource_names.node_task_queue). Every input carries
addresses, ports and public keys only: the gateway's private key stays in its Secret, which the
agent reads itself (SecretRef).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

APPLY_NODE_GATEWAY: Final = "node.apply_gateway"
REMOVE_NODE_GATEWAY: Final = "node.remove_gateway"
SYNC_NODE_PEERS: Final = "node.sync_peers"

# Signal to GatewayConfigWorkflow: an agent (re)started on this node; re-apply what it should hold.
NODE_AGENT_STARTED: Final = "node_agent_started"  # signal: NodeAgentStarted
# Query on GatewayConfigWorkflow: this configuration's gateway for one node, or None.
NODE_GATEWAY_QUERY: Final = "node_gateway"  # query: node name (str) -> NodeGateway | None


@dataclass(frozen=True)
class SecretRef:
    namespace: str
    name: str


@dataclass(frozen=True)
class GatewayPeer:
    """One pod's WireGuard peer on a gateway interface."""

    public_key: str  # base64, 32 bytes
    pod_ip: str  # IPv4, no prefix length: the peer's allowed IP is <pod_ip>/32
    pod_endpoint: str = ""  # "<namespace>/<name>" of the PodEndpoint, for GatewayStatus


@dataclass(frozen=True)
class PeerTable:
    """Many pods' peers as columns: entry i of each column is one pod. Every peer pass carries a
    configuration's whole peer set through Temporal, and the data converter decodes three lists
    of strings far faster than as many small objects (1,000 peers: about 1 ms instead of 185 ms,
    bench/peer_propagation.py)."""

    public_keys: tuple[str, ...] = ()  # base64, 32 bytes
    pod_ips: tuple[str, ...] = ()  # IPv4, no prefix length
    pod_endpoints: tuple[str, ...] = ()  # "<namespace>/<name>"

    @classmethod
    def of(cls, peers: Iterable[GatewayPeer]) -> PeerTable:
        rows = tuple(peers)
        return cls(
            public_keys=tuple(p.public_key for p in rows),
            pod_ips=tuple(p.pod_ip for p in rows),
            pod_endpoints=tuple(p.pod_endpoint for p in rows),
        )

    @property
    def size(self) -> int:
        return len(self.public_keys)

    @property
    def consistent(self) -> bool:
        """Whether the columns are of one length (a table that is not came from elsewhere)."""
        return len(self.public_keys) == len(self.pod_ips) == len(self.pod_endpoints)

    def rows(self) -> tuple[GatewayPeer, ...]:
        if not self.consistent:
            raise ValueError(
                f"peer table columns differ in length: {len(self.public_keys)} keys, "
                f"{len(self.pod_ips)} pod IPs, {len(self.pod_endpoints)} pod endpoints"
            )
        return tuple(
            GatewayPeer(key, ip, endpoint)
            for key, ip, endpoint in zip(
                self.public_keys, self.pod_ips, self.pod_endpoints, strict=True
            )
        )


@dataclass(frozen=True)
class NodeGateway:
    """One configuration's gateway on one node."""

    sgc_uid: str
    sgc_namespace: str
    sgc_name: str
    listen_port: int  # the load balancer rule's port; the interface is wg-<port>
    frontend_ip: str  # internal load balancer frontend IP, put on the host interface
    primary_ip: str  # this node's primary IP: the gateway namespace's default route
    secondary_ip: str  # this node's secondary IP for the configuration: the SNAT source
    private_key_secret: SecretRef
    public_key: str  # base64; the agent checks the Secret's key against it
    node_name: str = ""  # the node this gateway is for (ApplyGatewayInput.node_name)


@dataclass(frozen=True)
class ApplyGatewayInput:
    node_name: str
    gateway: NodeGateway
    # None: leave the interface's peers as they are; a tuple: make them exactly these.
    peers: tuple[GatewayPeer, ...] | None = None


@dataclass(frozen=True)
class RejectedPeer:
    public_key: str
    pod_endpoint: str
    reason: str


@dataclass(frozen=True)
class PeerSyncResult:
    added: int = 0
    removed: int = 0
    rejected: tuple[RejectedPeer, ...] = ()


@dataclass(frozen=True)
class ApplyGatewayResult:
    interface_name: str
    changes: tuple[str, ...] = ()  # what this call changed on the node, for history and events
    peers: PeerSyncResult = field(default_factory=PeerSyncResult)


@dataclass(frozen=True)
class RemoveGatewayInput:
    node_name: str
    sgc_uid: str
    listen_port: int
    secondary_ip: str = ""  # "" when unknown: the agent finds it by the interface's owner


@dataclass(frozen=True)
class SyncPeersInput:
    """Make the interface's peers exactly `table` (or, as controllers before the table sent
    them, `peers`). An agent from before the table refuses this input (it lacks `peers`), so a
    skewed upgrade shows up as a node problem, never as a silently unsynced node."""

    node_name: str
    sgc_uid: str
    listen_port: int
    peers: tuple[GatewayPeer, ...] = ()
    table: PeerTable | None = None

    def wanted(self) -> tuple[GatewayPeer, ...]:
        return self.table.rows() if self.table is not None else self.peers


@dataclass(frozen=True)
class NodeAgentStarted:
    node_name: str
    agent_instance: str  # differs per agent process, so a restart is told apart from a repeat
