"""The Azure inventory compared with what is expected: leaked, missing and duplicated items.

An inventory is `egressgw.dev.azure_inventory.resource_inventory`'s list of path-like names.
Names carrying a configuration's UID are written with `<uid>` in its place, so that the
inventory of one configuration can be expected of another created from the same spec.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class InventoryCheck:
    leaked: list[str]  # there, not expected
    missing: list[str]  # expected, not there
    duplicated: list[str]  # there more often than expected

    @property
    def exact(self) -> bool:
        return not (self.leaked or self.missing or self.duplicated)

    def describe(self) -> str:
        parts = [
            f"{what}: {', '.join(items)}"
            for what, items in (
                ("leaked", self.leaked),
                ("missing", self.missing),
                ("duplicated", self.duplicated),
            )
            if items
        ]
        return "; ".join(parts) or "exact"


def normalized(inventory: list[str], uids: dict[str, str]) -> list[str]:
    """The inventory with each UID replaced by its label (e.g. `<uid>`), sorted."""
    items = []
    for item in inventory:
        for uid, label in uids.items():
            item = item.replace(uid, label)
        items.append(item)
    return sorted(items)


def compare(expected: list[str], actual: list[str]) -> InventoryCheck:
    want, have = Counter(expected), Counter(actual)
    return InventoryCheck(
        leaked=sorted(name for name in have if name not in want),
        missing=sorted(name for name in want if name not in have),
        duplicated=sorted(name for name, n in have.items() if name in want and n > want[name]),
    )


def managed_leftovers(inventory: list[str], uid: str) -> list[str]:
    """Items still named after a configuration (after its deletion there must be none)."""
    return [item for item in inventory if uid in item]
