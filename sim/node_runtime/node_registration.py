"""Registers the node and keeps it Ready: creates the Node if missing, patches its status every
`--status-update-interval` seconds and renews its Lease in kube-node-lease every
`--lease-renew-interval` seconds. When the runtime stops renewing, the node lifecycle controller
of kube-controller-manager marks the node NotReady after its grace period.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import platform
from pathlib import Path
from typing import Any

from sim.node_runtime.api_client import ApiClient, ApiError, Conflict, Json, NotFound
from sim.node_runtime.config import RuntimeConfig
from sim.node_runtime.node_object import (
    LEASE_NAMESPACE,
    HostFacts,
    lease_manifest,
    micro_time,
    node_manifest,
    node_status,
)

log = logging.getLogger(__name__)


def read_host_facts() -> HostFacts:
    os_image = "Linux"
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_image = line.partition("=")[2].strip().strip('"')
    except OSError:
        pass
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot_id = ""
    return HostFacts(
        kernel_version=platform.release(),
        os_image=os_image,
        machine=platform.machine(),
        boot_id=boot_id,
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class NodeRegistration:
    def __init__(self, api: ApiClient, config: RuntimeConfig, facts: HostFacts) -> None:
        self.api = api
        self.config = config
        self.facts = facts
        self.node_uid = ""
        self._conditions: list[Json] = []
        self._path = f"/api/v1/nodes/{config.node_name}"
        self._lease_path = (
            f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/{config.node_name}"
        )

    async def register(self) -> None:
        """Create the Node (or find it), post its status and take its Lease."""
        try:
            node = await self.api.create("/api/v1/nodes", node_manifest(self.config, self.facts))
            log.info("registered node %s", self.config.node_name)
        except Conflict:
            node = await self.api.get(self._path)
        self.node_uid = str(node["metadata"]["uid"])
        self._conditions = list(node.get("status", {}).get("conditions", []))
        await self.update_status()
        await self._take_lease()

    async def update_status(self) -> None:
        status = node_status(self.config, self.facts, self._conditions, _now())
        try:
            node = await self.api.patch(self._path + "/status", {"status": status})
        except NotFound:
            log.warning("node %s was deleted; registering it again", self.config.node_name)
            await self.register()
            return
        self._conditions = list(node.get("status", {}).get("conditions", []))

    async def _take_lease(self) -> None:
        body = lease_manifest(
            self.config.node_name, self.node_uid, self.config.lease_duration_seconds, _now()
        )
        try:
            current = await self.api.get(self._lease_path)
        except NotFound:
            await self.api.create(
                f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases", body
            )
            return
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        await self.api.replace(self._lease_path, body)

    async def renew_lease(self) -> None:
        patch: dict[str, Any] = {
            "spec": {
                "holderIdentity": self.config.node_name,
                "renewTime": micro_time(_now()),
            }
        }
        try:
            await self.api.patch(self._lease_path, patch)
        except NotFound:
            await self._take_lease()

    async def run(self) -> None:
        """Renew the Lease and post status until cancelled; API errors are logged and retried
        at the next tick (a failed renewal is what the grace period is for)."""
        loop = asyncio.get_running_loop()
        next_status = loop.time() + self.config.status_update_seconds
        while True:
            await asyncio.sleep(self.config.lease_renew_seconds)
            try:
                await self.renew_lease()
                if loop.time() >= next_status:
                    next_status = loop.time() + self.config.status_update_seconds
                    await self.update_status()
            except ApiError as err:
                log.warning("node %s heartbeat failed: %s", self.config.node_name, err)
