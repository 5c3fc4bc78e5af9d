"""A pod's network sandbox: a named network namespace `<node tag>-<pod uid prefix>` wired by the
node's CNI chain (loopback first, as containerd does, then the node's network list).

The record is written before the ADD, so a runtime that dies half-way still knows what to DEL.
A failed ADD is undone at once (DEL of both lists, namespace removed, record dropped): nothing
is left behind, and the caller reports the error and retries with back-off.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from pathlib import Path

from sim.node_runtime import netns
from sim.node_runtime.cni_config import (
    POD_IFNAME,
    CniConfigError,
    Json,
    NetworkList,
    cni_args,
    loopback_network,
    network_from_json,
    parse_network_list,
    pick_config_file,
    port_mappings,
)
from sim.node_runtime.cni_exec import CniError, CniRunner, CniTarget
from sim.node_runtime.pod_state_dir import PodDir, SandboxRecord

log = logging.getLogger(__name__)


class SandboxError(RuntimeError):
    """The sandbox could not be created; nothing of it is left."""


def sandbox_netns_name(prefix: str, uid: str) -> str:
    return f"{prefix}-{uid.replace('-', '')[:8]}"


def load_network(conf_dir: Path) -> NetworkList:
    try:
        names = [p.name for p in conf_dir.iterdir()]
    except OSError as err:
        raise CniConfigError(f"CNI conf dir {conf_dir}: {err.strerror}") from None
    chosen = pick_config_file(names)
    if chosen is None:
        raise CniConfigError(f"no network config found in {conf_dir}")
    path = conf_dir / chosen
    return parse_network_list(path.read_text(), str(path))


class Sandboxes:
    def __init__(self, runner: CniRunner, conf_dir: Path, netns_prefix: str) -> None:
        self.runner = runner
        self.conf_dir = conf_dir
        self.netns_prefix = netns_prefix

    def _target(self, record: SandboxRecord, ifname: str, runtime_config: Json) -> CniTarget:
        return CniTarget(
            container_id=record.container_id,
            netns=netns.netns_path(record.netns),
            ifname=ifname,
            args=record.args,
            runtime_config=runtime_config,
        )

    async def create(self, pod: Json, directory: PodDir) -> SandboxRecord:
        meta = pod["metadata"]
        container_id = uuid.uuid4().hex + uuid.uuid4().hex
        record = SandboxRecord(
            netns=sandbox_netns_name(self.netns_prefix, meta["uid"]),
            container_id=container_id,
            ifname=POD_IFNAME,
            args=cni_args(meta["namespace"], meta["name"], container_id, meta["uid"]),
        )
        try:
            network = load_network(self.conf_dir)
        except (CniConfigError, OSError) as err:
            raise SandboxError(str(err)) from None
        record = replace(record, network=network.to_json())
        directory.write_sandbox(record)
        runtime_config: Json = {"portMappings": port_mappings(pod)}
        try:
            await netns.create(record.netns)
            await self.runner.add(loopback_network(), self._target(record, "lo", {}))
            result = await self.runner.add(
                network, self._target(record, POD_IFNAME, runtime_config)
            )
        except (CniError, netns.NetnsError) as err:
            await self._undo(record, None)
            directory.clear_sandbox()
            raise SandboxError(str(err)) from None
        record = replace(record, result=result)
        directory.write_sandbox(record)
        return record

    async def check(self, record: SandboxRecord) -> str | None:
        """None when the sandbox is intact, else what is wrong."""
        if record.result is None or record.network is None:
            return "no ADD result"
        if not netns.exists(record.netns):
            return f"netns {record.netns} is gone"
        network = network_from_json(record.network, "(cached)")
        try:
            await self.runner.check(network, self._target(record, record.ifname, {}), record.result)
        except CniError as err:
            return str(err)
        return None

    async def _undo(self, record: SandboxRecord, result: Json | None) -> str | None:
        failure = None
        if record.network is not None:
            network = network_from_json(record.network, "(cached)")
            try:
                await self.runner.delete(network, self._target(record, record.ifname, {}), result)
            except CniError as err:
                failure = str(err)
        try:
            await self.runner.delete(loopback_network(), self._target(record, "lo", {}), None)
        except CniError as err:
            failure = failure or str(err)
        await netns.remove(record.netns)
        return failure

    async def destroy(self, record: SandboxRecord, directory: PodDir | None) -> str | None:
        """DEL in reverse, then the namespace goes; returns the DEL failure if any (the
        namespace and record are removed regardless: a retry could not do better)."""
        failure = await self._undo(record, record.result)
        if failure:
            log.warning("CNI DEL of %s: %s", record.netns, failure)
        if directory is not None:
            directory.clear_sandbox()
        return failure
