"""Runs CNI plugins (spec 1.x: environment + network configuration on stdin, result or error on
stdout) for a network list, the way libcni's AddNetworkList / CheckNetworkList / DelNetworkList
do: ADD in order, each plugin getting the previous one's result; CHECK in order and DEL in reverse
with the cached result. Plugins run inside the node's network namespace (`nsenter --net`), so the
host side of a pod's link (bridge, veth, routes) belongs to the node."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sim.node_runtime.cni_config import (
    CniConfigError,
    Json,
    NetworkList,
    cni_environment,
    parse_result,
    plugin_error,
    plugin_stdin,
)
from sim.node_runtime.host_paths import HostPathMap, plugin_argv
from sim.node_runtime.netns import netns_path

PLUGIN_TIMEOUT: Final = 60.0


class CniError(RuntimeError):
    """A plugin is missing or failed; the message says which and why."""


@dataclass(frozen=True)
class CniTarget:
    """Where a network list is applied: the pod's namespace and the runtime's identifiers."""

    container_id: str
    netns: str  # the pod's namespace path
    ifname: str
    args: str  # CNI_ARGS
    runtime_config: Json


@dataclass(frozen=True)
class CniRunner:
    bin_dirs: tuple[Path, ...]
    node_netns: str | None  # None: the host is the node
    host_paths: tuple[HostPathMap, ...] = ()  # the node's directories, bound at their paths

    @property
    def cni_path(self) -> str:
        return os.pathsep.join(str(d) for d in self.bin_dirs)

    def find_plugin(self, kind: str) -> Path:
        if "/" in kind or not kind:
            raise CniError(f"invalid plugin type {kind!r}")
        for directory in self.bin_dirs:
            candidate = directory / kind
            if os.access(candidate, os.X_OK) and candidate.is_file():
                return candidate
        raise CniError(
            f'failed to find plugin "{kind}" in path [{" ".join(str(d) for d in self.bin_dirs)}]'
        )

    async def _invoke(
        self, command: str, network: NetworkList, plugin: Json, target: CniTarget, prev: Json | None
    ) -> Json:
        kind = str(plugin["type"])
        executable = self.find_plugin(kind)
        argv = [str(executable)]
        if self.node_netns is not None:
            argv = ["nsenter", f"--net={netns_path(self.node_netns)}", *argv]
        argv = plugin_argv(self.host_paths, argv)
        env = cni_environment(
            command, target.container_id, target.netns, target.ifname, self.cni_path, target.args
        )
        process = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdin = plugin_stdin(network, plugin, prev, target.runtime_config)
        try:
            out, err = await asyncio.wait_for(process.communicate(stdin), PLUGIN_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise CniError(f"plugin type={kind!r} {command} timed out") from None
        if process.returncode != 0:
            raise CniError(
                f"{command} {network.name}: "
                + plugin_error(kind, process.returncode or 0, out, err)
            )
        if command != "ADD":
            return {}
        try:
            return parse_result(kind, out)
        except CniConfigError as error:
            raise CniError(str(error)) from None

    async def add(self, network: NetworkList, target: CniTarget) -> Json:
        result: Json | None = None
        for plugin in network.plugins:
            result = await self._invoke("ADD", network, plugin, target, result)
        return result or {}

    async def check(self, network: NetworkList, target: CniTarget, cached: Json) -> None:
        for plugin in network.plugins:
            await self._invoke("CHECK", network, plugin, target, cached)

    async def delete(self, network: NetworkList, target: CniTarget, cached: Json | None) -> None:
        """Every plugin in reverse order, even after one failed; the first failure is raised."""
        failure: CniError | None = None
        for plugin in reversed(network.plugins):
            try:
                await self._invoke("DEL", network, plugin, target, cached)
            except CniError as error:
                failure = failure or error
        if failure is not None:
            raise failure
