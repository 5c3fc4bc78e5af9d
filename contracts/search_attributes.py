"""The search attributes egressgw sets on its workflows: the one definition of their keys.

Workflows upsert them, the single-writer activities set them when they start a workflow, the
watchers query by them, and the dev server registers them (`temporal server start-dev
--search-attribute Name=Keyword`; on a real cluster `temporal operator search-attribute create`).
"""

from __future__ import annotations

from typing import Final

from temporalio.common import SearchAttributeKey

NAMESPACE: Final = SearchAttributeKey.for_keyword("EgressgwNamespace")
NAME: Final = SearchAttributeKey.for_keyword("EgressgwName")
POOL: Final = SearchAttributeKey.for_keyword("EgressgwPool")
LOAD_BALANCER: Final = SearchAttributeKey.for_keyword("EgressgwLoadBalancer")
PHASE: Final = SearchAttributeKey.for_keyword("EgressgwPhase")

ALL: Final[tuple[SearchAttributeKey[str], ...]] = (NAMESPACE, NAME, POOL, LOAD_BALANCER, PHASE)


def registrations() -> tuple[tuple[str, str], ...]:
    """(name, type) pairs for registering every key with a Temporal server."""
    return tuple((key.name, "Keyword") for key in ALL)
