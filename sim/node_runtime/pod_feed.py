"""List-then-watch bookkeeping for the pods bound to a node, without I/O: what a (re)list or a
watch event changes, and the resourceVersion to resume from. pod_watch.py is the shell around it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Json = dict[str, Any]


@dataclass(frozen=True)
class PodChange:
    kind: Literal["upsert", "gone"]
    pod: Json

    @property
    def uid(self) -> str:
        return str(self.pod["metadata"]["uid"])


def _rv(pod: Json) -> str:
    return str(pod.get("metadata", {}).get("resourceVersion", ""))


@dataclass
class PodFeed:
    pods: dict[str, Json] = field(default_factory=dict)
    resource_version: str = ""

    def relist(self, items: list[Json], resource_version: str) -> list[PodChange]:
        """A full list: new or changed pods are upserts; pods known but absent are gone."""
        listed = {str(p["metadata"]["uid"]): p for p in items}
        changes = [PodChange("gone", pod) for uid, pod in self.pods.items() if uid not in listed]
        changes += [
            PodChange("upsert", pod)
            for uid, pod in listed.items()
            if uid not in self.pods or _rv(self.pods[uid]) != _rv(pod)
        ]
        self.pods = listed
        self.resource_version = resource_version
        return changes

    def apply(self, event: Json) -> list[PodChange]:
        kind = event.get("type")
        obj = event.get("object") or {}
        rv = _rv(obj)
        if rv:
            self.resource_version = rv
        if kind == "BOOKMARK":
            return []
        uid = str(obj.get("metadata", {}).get("uid", ""))
        if not uid:
            return []
        if kind == "DELETED":
            self.pods.pop(uid, None)
            return [PodChange("gone", obj)]
        if kind in ("ADDED", "MODIFIED"):
            self.pods[uid] = obj
            return [PodChange("upsert", obj)]
        return []
