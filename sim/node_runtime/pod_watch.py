"""Lists and watches the pods bound to this node (`fieldSelector=spec.nodeName=<node>`, the only
pod list the Node authorizer grants a node), resuming from the last resourceVersion and relisting
on 410 Gone. The bookkeeping is pod_feed.py; this is the I/O around it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sim.node_runtime.api_client import ApiClient, ApiError, Gone
from sim.node_runtime.pod_feed import PodChange, PodFeed

log = logging.getLogger(__name__)
Deliver = Callable[[PodChange], None]


class PodWatch:
    def __init__(self, api: ApiClient, node_name: str, deliver: Deliver) -> None:
        self.api = api
        self.selector = f"spec.nodeName={node_name}"
        self.deliver = deliver
        self.feed = PodFeed()
        self.synced = asyncio.Event()

    async def list_once(self) -> None:
        listed = await self.api.get("/api/v1/pods", {"fieldSelector": self.selector})
        changes = self.feed.relist(
            list(listed.get("items") or []), str(listed["metadata"]["resourceVersion"])
        )
        for change in changes:
            self.deliver(change)
        self.synced.set()

    async def run(self) -> None:
        need_list = not self.synced.is_set()
        delay = 0.5
        while True:
            try:
                if need_list:
                    await self.list_once()
                    need_list = False
                params = {
                    "fieldSelector": self.selector,
                    "resourceVersion": self.feed.resource_version,
                    "allowWatchBookmarks": "true",
                    "timeoutSeconds": "300",
                }
                async for event in self.api.watch("/api/v1/pods", params):
                    for change in self.feed.apply(event):
                        self.deliver(change)
                delay = 0.5
            except Gone:
                log.info("pod watch expired (410); relisting")
                need_list = True
            except ApiError as err:
                log.warning("pod watch failed: %s; retrying in %.1f s", err, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            except Exception:
                # A bug must not stop the node from seeing its pods: report it, relist.
                log.exception("pod watch: unexpected failure; relisting in %.1f s", delay)
                need_list = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
