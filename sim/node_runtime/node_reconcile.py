"""What a starting runtime cleans up from its state dir against the pods bound to it: pods that
are no longer there (their processes, sandboxes and files) and pod namespaces of this node's tag
that no recorded sandbox owns (left by a runtime that died between `ip netns add` and writing its
record). Pure; runtime.py does the cleaning."""

from __future__ import annotations

import re


def orphan_pods(recorded: list[str], bound: set[str]) -> list[str]:
    """Recorded pod uids that are not bound to this node any more."""
    return [uid for uid in recorded if uid not in bound]


def stale_netns(names: list[str], prefix: str, owned: set[str], keep: set[str]) -> list[str]:
    """Namespaces named exactly like this node's pod namespaces (`<prefix>-<8 hex>`, see
    sandbox.sandbox_netns_name) that no sandbox record owns; `keep` (the node's own namespace)
    is never stale."""
    pattern = re.compile(re.escape(prefix) + r"-[0-9a-f]{8}")
    return [n for n in names if pattern.fullmatch(n) and n not in owned and n not in keep]
