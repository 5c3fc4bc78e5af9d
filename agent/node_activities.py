"""The node activities a gateway agent serves on its node's task queue (contracts/node_io.py):
apply a configuration's gateway, remove it, and sync its peers; plus what the agent process runs
itself: orphan removal at start and every minute, the peer resync every 30 s.

Each activity checks its input first (nothing on the node changes for a request that names the
wrong node or a malformed address), reads the private key from its Secret, lets the Dataplane do
the work, then tells the load balancer probe and GatewayStatus. A GatewayStatus write that fails
is logged and left to the next flush: the node is right, and that is what the workflow asked for.
A peer sync does not wait for its GatewayStatus write (it follows in the background), so a burst
of pods is not slowed by rewriting a large object on every pass.

Failures the workflow must act on (not retry) carry these ApplicationError types.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NoReturn

from temporalio import activity
from temporalio.exceptions import ApplicationError

from agent.activity_heartbeat import heartbeating
from agent.gateway_dataplane import Dataplane, GatewayOwnedElsewhereError
from agent.gateway_secret_reader import (
    GatewaySecretError,
    GatewaySecretMissingError,
    GatewaySecretReader,
)
from agent.gateway_status_report import GatewayStatusReport
from agent.node_input_checks import (
    CheckedPeers,
    check_apply_input,
    check_peers,
    check_remove_input,
    check_sync_input,
)
from agent.node_settings import GatewaySetup, interface_name
from agent.orphan_plan import DesiredGateway
from agent.peer_plan import PeerChanges, PeerSpec
from agent.probe_server import ProbeServer
from agent.session_handover import Nudge
from agent.wireguard_devices import InterfaceNotFoundError
from agent.wireguard_keys import to_base64
from contracts.node_io import (
    APPLY_NODE_GATEWAY,
    REMOVE_NODE_GATEWAY,
    SYNC_NODE_PEERS,
    ApplyGatewayInput,
    ApplyGatewayResult,
    GatewayPeer,
    NodeGateway,
    PeerSyncResult,
    RejectedPeer,
    RemoveGatewayInput,
    SyncPeersInput,
)

log = logging.getLogger(__name__)

INVALID_NODE_INPUT: Final = "InvalidNodeInput"  # non-retryable: the request itself is wrong
GATEWAY_NOT_APPLIED: Final = "GatewayNotApplied"  # non-retryable: sync before apply
GATEWAY_OWNED_ELSEWHERE: Final = "GatewayOwnedElsewhere"  # non-retryable: port reused
GATEWAY_SECRET_MISSING: Final = "GatewaySecretMissing"  # retryable: may be created soon
GATEWAY_SECRET_UNREADABLE: Final = "GatewaySecretUnreadable"  # retryable

# A gateway applied this recently is kept by orphan removal even when no workflow reported it:
# visibility (how the agent finds the workflows) may lag behind a workflow that just started.
RECENT_APPLY_GRACE_SECONDS: Final = 300.0


def with_recent(
    desired: Sequence[NodeGateway],
    applied_at: Mapping[str, tuple[float, NodeGateway]],
    now: float,
    grace: float = RECENT_APPLY_GRACE_SECONDS,
) -> list[NodeGateway]:
    """`desired` plus the gateways applied within `grace` seconds on interfaces it leaves out."""
    taken = {gateway.listen_port for gateway in desired}
    recent = [
        gateway
        for at, gateway in applied_at.values()
        if now - at < grace and gateway.listen_port not in taken
    ]
    return [*desired, *recent]


GATEWAY_SECRET_INVALID: Final = "GatewaySecretInvalid"  # non-retryable: wrong or malformed key


def _invalid(what: str, problems: Sequence[str]) -> NoReturn:
    raise ApplicationError(
        f"invalid {what}: " + "; ".join(problems), type=INVALID_NODE_INPUT, non_retryable=True
    )


def _secret_failure(error: GatewaySecretError) -> ApplicationError:
    if error.retryable:
        missing = isinstance(error, GatewaySecretMissingError)
        kind = GATEWAY_SECRET_MISSING if missing else GATEWAY_SECRET_UNREADABLE
        return ApplicationError(str(error), type=kind)
    return ApplicationError(str(error), type=GATEWAY_SECRET_INVALID, non_retryable=True)


def sync_result(changes: PeerChanges | None, rejected: Sequence[RejectedPeer]) -> PeerSyncResult:
    """A peer whose allowed IP was corrected counts as added: its pod can reach the gateway
    only from now on."""
    if changes is None:
        return PeerSyncResult(rejected=tuple(rejected))
    return PeerSyncResult(
        added=changes.added + changes.updated, removed=changes.removed, rejected=tuple(rejected)
    )


def _desired(gateway: NodeGateway) -> DesiredGateway:
    return DesiredGateway(
        sgc_uid=gateway.sgc_uid,
        listen_port=gateway.listen_port,
        secondary_ip=gateway.secondary_ip,
        frontend_ip=gateway.frontend_ip,
    )


class NodeActivities:
    def __init__(
        self,
        node_name: str,
        dataplane: Dataplane,
        keys: GatewaySecretReader,
        probe: ProbeServer,
        status: GatewayStatusReport | None,
        *,
        recent_grace: float = RECENT_APPLY_GRACE_SECONDS,
    ) -> None:
        """`recent_grace`: seconds a fresh apply is safe from orphan removal."""
        self._node = node_name
        self._recent_grace = recent_grace
        self._dataplane = dataplane
        self._keys = keys
        self._probe = probe
        self._status = status
        # interface -> (when, what) it was last applied here; the gateway names its owner's UID
        self._applied: dict[str, tuple[float, NodeGateway]] = {}
        self._background_flush: asyncio.Task[None] | None = None
        # interface -> the peer rows its last request parsed (check_peers need not parse again)
        self._parsed: dict[str, Mapping[GatewayPeer, PeerSpec]] = {}
        self._flush_again = False
        self._peer_counts: dict[str, int] = {}  # interface -> pod peers last configured on it

    def activities(self) -> list[Callable[..., Any]]:
        return [self.apply_gateway, self.remove_gateway, self.sync_peers]

    def gateway_peers(self) -> dict[tuple[str, str], int]:
        """(configuration namespace, name) -> pod peers configured on its gateway here, for
        every gateway this agent holds (the agent's metrics read it on each scrape)."""
        return {
            (gateway.sgc_namespace, gateway.sgc_name): self._peer_counts.get(name, 0)
            for name, (_, gateway) in self._applied.items()
        }

    # --- activities ------------------------------------------------------------------------------

    @activity.defn(name=APPLY_NODE_GATEWAY)
    async def apply_gateway(self, request: ApplyGatewayInput) -> ApplyGatewayResult:
        async with heartbeating():
            return await self._apply_gateway(request)

    @activity.defn(name=REMOVE_NODE_GATEWAY)
    async def remove_gateway(self, request: RemoveGatewayInput) -> None:
        async with heartbeating():
            await self._remove_gateway(request)

    @activity.defn(name=SYNC_NODE_PEERS)
    async def sync_peers(self, request: SyncPeersInput) -> PeerSyncResult:
        async with heartbeating():
            return await self._sync_peers(request)

    async def _apply_gateway(self, request: ApplyGatewayInput) -> ApplyGatewayResult:
        gateway = request.gateway
        problems = check_apply_input(request, self._node)
        if problems:
            _invalid("apply request", problems)
        name = interface_name(gateway.listen_port)
        checked = (
            check_peers(request.peers, self._parsed.get(name))
            if request.peers is not None
            else None
        )
        self._log_rejected(gateway.listen_port, checked)
        try:
            private_key = await self._keys.private_key(
                gateway.private_key_secret, gateway.public_key
            )
        except GatewaySecretError as error:
            raise _secret_failure(error) from None
        setup = GatewaySetup(
            sgc_uid=gateway.sgc_uid,
            listen_port=gateway.listen_port,
            frontend_ip=gateway.frontend_ip,
            primary_ip=gateway.primary_ip,
            secondary_ip=gateway.secondary_ip,
            private_key=private_key,
        )
        applied = await self._dataplane.apply(setup, checked.specs if checked else None)
        if checked is not None:
            self._parsed[name] = checked.parsed
        activity.logger.info(
            "applied %s/%s (uid %s) as %s: secondary %s, frontend %s, primary %s; %s",
            gateway.sgc_namespace,
            gateway.sgc_name,
            gateway.sgc_uid,
            name,
            gateway.secondary_ip,
            gateway.frontend_ip,
            gateway.primary_ip,
            "; ".join(applied.changes) or "no changes",
        )

        previous = self._applied.get(name)
        if previous is not None and previous[1].sgc_uid != gateway.sgc_uid:
            self._probe.deactivate(previous[1].sgc_uid)  # the port now serves another one
        self._applied[name] = (time.monotonic(), gateway)
        self._probe.activate(gateway.sgc_uid)
        if self._status is not None:
            self._status.set_gateway(f"{gateway.sgc_namespace}/{gateway.sgc_name}", name)
            if checked is not None:
                self._status.set_peers(name, checked.status_entries)
        if checked is not None:
            self._peer_counts[name] = len(checked.accepted)
        await self._flush()
        rejected = checked.rejected if checked is not None else ()
        return ApplyGatewayResult(
            interface_name=name, changes=applied.changes, peers=sync_result(applied.peers, rejected)
        )

    async def _remove_gateway(self, request: RemoveGatewayInput) -> None:
        problems = check_remove_input(request, self._node)
        if problems:
            _invalid("remove request", problems)
        name = interface_name(request.listen_port)
        changes = await self._dataplane.remove(
            request.sgc_uid, request.listen_port, request.secondary_ip
        )
        activity.logger.info(
            "removed uid %s from %s: %s",
            request.sgc_uid,
            name,
            "; ".join(changes) or "nothing was left",
        )
        self._probe.deactivate(request.sgc_uid)
        owner = self._applied.get(name)
        if owner is None or owner[1].sgc_uid == request.sgc_uid:
            self._applied.pop(name, None)
            self._parsed.pop(name, None)
            self._peer_counts.pop(name, None)
            if self._status is not None:
                self._status.remove_gateway(name)
        await self._flush()

    async def _sync_peers(self, request: SyncPeersInput) -> PeerSyncResult:
        problems = check_sync_input(request, self._node)
        if problems:
            _invalid("peer sync request", problems)
        name = interface_name(request.listen_port)
        checked = check_peers(request.wanted(), self._parsed.get(name))
        self._log_rejected(request.listen_port, checked)
        try:
            changes = await self._dataplane.sync_peers(
                request.listen_port, checked.specs, owner=request.sgc_uid
            )
        except InterfaceNotFoundError as error:
            raise ApplicationError(
                f"{name} is not on node {self._node}; apply the gateway first ({error})",
                type=GATEWAY_NOT_APPLIED,
                non_retryable=True,
            ) from None
        except GatewayOwnedElsewhereError as error:
            raise ApplicationError(
                str(error), type=GATEWAY_OWNED_ELSEWHERE, non_retryable=True
            ) from None
        activity.logger.info(
            "peers of %s (uid %s): %d wanted, %d added, %d removed, %d updated, %d rejected",
            name,
            request.sgc_uid,
            len(checked.accepted),
            changes.added,
            changes.removed,
            changes.updated,
            len(checked.rejected),
        )
        self._parsed[name] = checked.parsed
        if self._status is not None:
            self._status.set_peers(name, checked.status_entries)
        self._peer_counts[name] = len(checked.accepted)
        self._flush_soon()
        return sync_result(changes, checked.rejected)

    # --- run by the agent process ----------------------------------------------------------------

    async def remove_orphans(self, desired: Sequence[NodeGateway]) -> list[str]:
        """Remove what no desired gateway accounts for, and stop advertising gateways that are
        no longer desired (probe 503, GatewayStatus entry gone). Gateways applied in the last
        few minutes count as desired (RECENT_APPLY_GRACE_SECONDS)."""
        desired = with_recent(desired, self._applied, time.monotonic(), self._recent_grace)
        changes = await self._dataplane.remove_orphans([_desired(gateway) for gateway in desired])
        if changes:
            log.info("node %s: removed orphans: %s", self._node, "; ".join(changes))
        wanted = {(interface_name(gateway.listen_port), gateway.sgc_uid) for gateway in desired}
        for name, (_, gateway) in list(self._applied.items()):
            if (name, gateway.sgc_uid) in wanted:
                continue
            del self._applied[name]
            self._parsed.pop(name, None)
            self._peer_counts.pop(name, None)
            self._probe.deactivate(gateway.sgc_uid)
            if self._status is not None:
                self._status.remove_gateway(name)
        await self._flush()
        return changes

    async def hand_over(self) -> list[Nudge]:
        """Start a handshake with pods the load balancer moved here from another gateway
        (Dataplane.hand_over); each one logged. The agent process runs this every second."""
        nudges = await self._dataplane.hand_over()
        for nudge in nudges:
            log.info(
                "node %s: handing pod %s (peer %s) over to this gateway on %s: handshake "
                "started towards %s",
                self._node,
                nudge.pod_ip,
                to_base64(nudge.public_key),
                interface_name(nudge.listen_port),
                nudge.endpoint,
            )
        return nudges

    async def resync_peers(self) -> list[str]:
        """Hold every interface's peers to what the workflow last asked for (Dataplane.
        resync_peers); what drifted is logged. The agent process runs this every
        --peer-resync-interval."""
        changes = await self._dataplane.resync_peers()
        if changes:
            log.warning(
                "node %s: peers had drifted from what their configuration asked for: %s",
                self._node,
                "; ".join(changes),
            )
        return changes

    async def withdraw(self) -> list[str]:
        """Take every gateway off this node (the agent stops after its probes drained): the
        pods' WireGuard then finds the other gateways instead of keeping a session with this one,
        which would answer them from here while the load balancer sends them elsewhere."""
        changes = await self._dataplane.remove_orphans([])
        for name, (_, gateway) in self._applied.items():
            self._probe.deactivate(gateway.sgc_uid)
            if self._status is not None:
                self._status.remove_gateway(name)
        self._applied.clear()
        self._parsed.clear()
        self._peer_counts.clear()
        await self._flush()
        return changes

    # --- internals -------------------------------------------------------------------------------

    async def _flush(self) -> None:
        if self._status is None:
            return
        try:
            await self._status.flush()
        except Exception:  # the node is right; the next flush writes the status
            log.warning("node %s: GatewayStatus not written", self._node, exc_info=True)

    def _flush_soon(self) -> None:
        """Write GatewayStatus after a peer sync without the activity waiting for it: with a
        thousand peers the object is large, and each pass of a burst would otherwise wait for
        its write. Syncs during a write make one more write after it."""
        if self._status is None:
            return
        if self._background_flush is not None and not self._background_flush.done():
            self._flush_again = True
            return

        async def flush_until_settled() -> None:
            self._flush_again = True
            while self._flush_again:
                self._flush_again = False
                await self._flush()

        self._background_flush = asyncio.create_task(
            flush_until_settled(), name="GatewayStatus flush"
        )

    async def settle(self) -> None:
        """Wait for a background GatewayStatus write (the agent stops only after it)."""
        if self._background_flush is not None:
            await self._background_flush

    def _log_rejected(self, listen_port: int, checked: CheckedPeers | None) -> None:
        if checked is None:
            return
        for peer in checked.rejected:
            log.warning(
                "%s: rejected peer %s (%s): %s",
                interface_name(listen_port),
                peer.pod_endpoint or "-",
                peer.public_key,
                peer.reason,
            )
