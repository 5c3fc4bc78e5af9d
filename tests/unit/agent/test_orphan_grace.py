"""Orphan removal never takes a gateway the agent applied moments ago, even when the workflow
that asked for it is not listed yet (visibility can lag behind a workflow that just started)."""

from __future__ import annotations

from dataclasses import replace

from agent.node_activities import with_recent
from contracts.node_io import NodeGateway, SecretRef

FRESH = NodeGateway(
    "uid-new", "ns", "new", 6001, "10.0.0.9", "10.0.0.4", "10.0.0.6", SecretRef("s", "k"), "p"
)


def test_recently_applied_gateways_count_as_desired_until_the_grace_ends() -> None:
    listed = replace(FRESH, sgc_uid="uid-listed", listen_port=6000)
    old = replace(FRESH, sgc_uid="uid-old", listen_port=6002)
    applied_at = {"wg-6001": (100.0, FRESH), "wg-6002": (0.0, old), "wg-6000": (100.0, listed)}

    kept = with_recent([listed], applied_at, now=110.0, grace=60.0)
    assert [g.sgc_uid for g in kept] == ["uid-listed", "uid-new"]

    later = with_recent([listed], applied_at, now=200.0, grace=60.0)
    assert [g.sgc_uid for g in later] == ["uid-listed"]
