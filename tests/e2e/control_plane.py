"""The pieces an end-to-end control-plane test runs: a Temporal dev server of its own (so it can be
restarted, and no other test's worker polls its task queue), the ARM and Kubernetes emulators,
and `egressgw controller` processes started exactly as a user starts them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes_asyncio
from kubernetes_asyncio.client import (
    ApiClient,
    CoreV1Api,
    CustomObjectsApi,
    V1Namespace,
    V1ObjectMeta,
)
from kubernetes_asyncio.client.exceptions import ApiException

from contracts import kube_names, resource_names
from egressgw.dev.stack import azure_cloud_config
from egressgw.dev.temporal_server import TemporalDevServer, TemporalServerSettings
from sim.arm.server import ArmEmulator
from sim.ports import free_port, free_port_block
from sim.topology import Topology

G, V, P = kube_names.API_GROUP, kube_names.API_VERSION, kube_names.SGC_PLURAL
SGC_NAMESPACE = "team-a"
SECRET_NAMESPACE = "egressgw-system"


def temporal_server_in(state: Path) -> TemporalDevServer:
    # A random start: tests running side by side (and a server stopped to be restarted) must not
    # all reach for the same first free block.
    base = free_port_block(3, start=random.randrange(41000, 58000), stop=60000)
    return TemporalDevServer(TemporalServerSettings.headless(state, base))


async def wait_for(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(every)


@dataclass
class ControllerProcess:
    """One `egressgw controller` process; its log is kept for the assertion messages."""

    command: list[str]
    log_path: Path
    health_port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    async def wait_ready(self, timeout: float = 30.0) -> None:
        async def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"controller exited with {self.process.returncode}:\n{self.log()}"
                )
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(f"http://127.0.0.1:{self.health_port}/readyz") as response,
                ):
                    return response.status == 200
            return False

        await wait_for(ready, timeout, "the controller to become ready")

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, in-flight activities are simply lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    async def stop(self, timeout: float = 30.0) -> int:
        process = self.process
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
        return process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


@dataclass
class ControlPlane:
    root: Path
    temporal: TemporalDevServer
    arm: ArmEmulator
    topology: Topology
    kubeconfig: Path
    kube: ApiClient
    drift_check: str = "5m"
    controllers: list[ControllerProcess] = field(default_factory=list)

    @property
    def custom(self) -> CustomObjectsApi:
        return CustomObjectsApi(self.kube)

    @property
    def cloud_config(self) -> Path:
        path = self.root / "azure.json"
        if not path.exists():
            path.write_text(
                json.dumps(azure_cloud_config(self.topology, self.arm.url, "e2e-secret"))
            )
        return path

    def controller(self, name: str = "controller") -> ControllerProcess:
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "egressgw",
            "controller",
            "--cloud-config",
            str(self.cloud_config),
            "--kubeconfig",
            str(self.kubeconfig),
            "--azure-ca-file",
            str(self.arm.ca_path),
            "--temporal-address",
            self.temporal.address,
            "--secret-namespace",
            SECRET_NAMESPACE,
            "--drift-check-interval",
            self.drift_check,
            # No node agents in these tests: the control plane's Azure side and status only.
            "--no-configure-nodes",
            "--health-address",
            f"127.0.0.1:{port}",
            "--graceful-shutdown",
            "2s",
        ]
        process = ControllerProcess(command, self.root / f"{name}.log", port)
        self.controllers.append(process)
        return process

    async def start_controller(self, name: str = "controller") -> ControllerProcess:
        process = self.controller(name)
        process.start()
        await process.wait_ready()
        return process

    def logs(self) -> str:
        return "\n".join(f"--- {c.log_path.name}\n{c.log()}" for c in self.controllers)

    # --- Kubernetes side --------------------------------------------------------------------

    def vmss_spec(self, prefix_length: int = 31) -> dict[str, Any]:
        pool = self.topology.vmss_pools[0]
        return {
            "gatewayVmssProfile": {
                "vmssResourceGroup": self.topology.resource_group,
                "vmssName": pool.vmss_name,
                "publicIpPrefixSize": prefix_length,
            },
            "provisionPublicIps": True,
        }

    async def create_sgc(self, name: str, spec: dict[str, Any] | None = None) -> str:
        body = {
            "apiVersion": kube_names.GROUP_VERSION,
            "kind": kube_names.SGC_KIND,
            "metadata": {"name": name, "namespace": SGC_NAMESPACE},
            "spec": spec or self.vmss_spec(),
        }
        created = await self.custom.create_namespaced_custom_object(G, V, SGC_NAMESPACE, P, body)
        return str(created["metadata"]["uid"])

    async def get_sgc(self, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await self.custom.get_namespaced_custom_object(
                G, V, SGC_NAMESPACE, P, name
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return found

    async def delete_sgc(self, name: str) -> None:
        await self.custom.delete_namespaced_custom_object(G, V, SGC_NAMESPACE, P, name)

    async def wait_ready(self, name: str, timeout: float = 60.0) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def ready() -> bool:
            obj = await self.get_sgc(name)
            seen["obj"] = obj
            return obj is not None and is_ready(obj)

        try:
            await wait_for(ready, timeout, f"{name} to become Ready")
        except AssertionError as err:
            status = (seen.get("obj") or {}).get("status")
            raise AssertionError(f"{err}; status {status}\n{self.logs()}") from None
        obj: dict[str, Any] = seen["obj"]
        return obj

    async def wait_gone(self, name: str, timeout: float = 60.0) -> None:
        async def gone() -> bool:
            return await self.get_sgc(name) is None

        try:
            await wait_for(gone, timeout, f"{name} to be deleted")
        except AssertionError as err:
            raise AssertionError(f"{err}\n{self.logs()}") from None

    async def key_secrets(self) -> list[str]:
        listed = await CoreV1Api(self.kube).list_namespaced_secret(SECRET_NAMESPACE)
        return [s.metadata.name for s in listed.items if s.metadata.name.startswith("sgw-")]

    # --- Azure side (what the emulator holds) -----------------------------------------------

    def load_balancer(self) -> dict[str, Any] | None:
        return self.arm.resource(
            resource_names.load_balancer_id(
                self.topology.subscription_id,
                self.topology.resource_group,
                resource_names.DEFAULT_LOAD_BALANCER_NAME,
            )
        )

    def prefix(self, uid: str) -> dict[str, Any] | None:
        return self.arm.resource(
            resource_names.public_ip_prefix_id(
                self.topology.subscription_id,
                self.topology.resource_group,
                resource_names.managed_resource_name(uid),
            )
        )

    def vmss_ip_config_names(self) -> list[str]:
        """ipConfiguration names in the gateway VMSS model, duplicates kept."""
        vmss = self.arm.resource(self.topology.vmss_id(self.topology.vmss_pools[0]))
        assert vmss is not None
        nics = vmss["properties"]["virtualMachineProfile"]["networkProfile"][
            "networkInterfaceConfigurations"
        ]
        return [ip["name"] for nic in nics for ip in nic["properties"]["ipConfigurations"]]


def is_ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    generation = obj["metadata"].get("generation")
    return (
        any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
        and status.get("observedGeneration") == generation
    )


@contextlib.asynccontextmanager
async def control_plane(
    root: Path,
    arm: ArmEmulator,
    topology: Topology,
    kubeconfig: Path,
    drift_check: str = "5m",
    *,
    start_temporal: bool = True,
) -> AsyncIterator[ControlPlane]:
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    temporal = temporal_server_in(root)
    if start_temporal:
        await temporal.start()
    kube = await kubernetes_asyncio.config.new_client_from_config(config_file=str(kubeconfig))
    plane = ControlPlane(root, temporal, arm, topology, kubeconfig, kube, drift_check)
    try:
        core = CoreV1Api(kube)
        for namespace in (SGC_NAMESPACE, SECRET_NAMESPACE):
            await core.create_namespace(V1Namespace(metadata=V1ObjectMeta(name=namespace)))
        yield plane
    finally:
        for controller in plane.controllers:
            controller.kill()
        await kube.close()
        await temporal.stop()
