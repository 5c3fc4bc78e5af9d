"""What the control-plane benchmarks run: a Temporal dev server, the ARM emulator (on this
process's event loop), a real Kubernetes control plane (sim/control_plane: etcd, kube-apiserver,
controller manager, scheduler, from the binaries scripts/k8s-binaries caches) and one `egressgw
controller` process, as a user would start it: with a kubeconfig holding the token of its
ServiceAccount, bound to the roles of deploy/rbac/controller.yaml.

Imported by bench/control_plane_*.py (run them as `.venv/bin/python bench/<name>.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes_asyncio
from kubernetes_asyncio.client import ApiClient, CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException

from contracts import kube_names
from egressgw.dev.stack import azure_cloud_config
from egressgw.dev.temporal_server import TemporalDevServer, TemporalServerSettings
from sim.arm.server import ArmEmulator
from sim.control_plane.binaries import kube_binaries
from sim.control_plane.cluster import ControlPlane, ControlPlanePorts
from sim.control_plane.service_accounts import service_account_kubeconfig
from sim.jaeger.server import Jaeger, JaegerPorts, jaeger_binary
from sim.ports import free_port, free_port_block
from sim.topology import Topology

ROOT = Path(__file__).resolve().parents[1]
G, V, P = kube_names.API_GROUP, kube_names.API_VERSION, kube_names.SGC_PLURAL
SGC_NAMESPACE = "bench"
SECRET_NAMESPACE = "egressgw-system"

# Issue 3's "realistic" operation durations, in seconds.
REALISTIC_LATENCY: Mapping[str, float] = {
    "PUT loadBalancers": 3.0,
    "PUT publicIPPrefixes": 2.0,
    "PUT virtualMachineScaleSets": 5.0,
    "PUT virtualMachineScaleSets/virtualMachines": 10.0,
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class BenchStack:
    root: Path
    temporal: TemporalDevServer
    arm: ArmEmulator
    kube: ControlPlane
    topology: Topology
    api: ApiClient
    controller: subprocess.Popen[bytes]
    # The gateway agents' ServiceAccount (deploy/rbac/agent.yaml); with configure_nodes only.
    agent_kubeconfig: Path | None = None

    @property
    def custom(self) -> CustomObjectsApi:
        return CustomObjectsApi(self.api)

    def vmss_spec(self, prefix_length: int) -> dict[str, Any]:
        pool = self.topology.vmss_pools[0]
        return {
            "gatewayVmssProfile": {
                "vmssResourceGroup": self.topology.resource_group,
                "vmssName": pool.vmss_name,
                "publicIpPrefixSize": prefix_length,
            },
            "provisionPublicIps": True,
        }

    async def create_sgc(self, name: str, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": kube_names.GROUP_VERSION,
            "kind": kube_names.SGC_KIND,
            "metadata": {"name": name, "namespace": SGC_NAMESPACE},
            "spec": spec,
        }
        await self.custom.create_namespaced_custom_object(G, V, SGC_NAMESPACE, P, body)

    async def ready_names(self) -> set[str]:
        listed = await self.custom.list_namespaced_custom_object(G, V, SGC_NAMESPACE, P)
        return {o["metadata"]["name"] for o in listed["items"] if _is_ready(o)}

    async def wait_ready(
        self, names: set[str], timeout: float, every: float = 0.1
    ) -> dict[str, float]:
        """Monotonic time at which each name was first seen Ready."""
        seen: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while len(seen) < len(names):
            if time.monotonic() > deadline:
                missing = sorted(names - set(seen))
                raise TimeoutError(f"not Ready after {timeout:.0f}s: {missing[:5]}")
            now = time.monotonic()
            for name in (await self.ready_names()) & names:
                seen.setdefault(name, now)
            await asyncio.sleep(every)
        return seen

    async def delete_sgc(self, name: str) -> None:
        await self.custom.delete_namespaced_custom_object(G, V, SGC_NAMESPACE, P, name)

    async def delete_all(self, timeout: float = 300) -> None:
        listed = await self.custom.list_namespaced_custom_object(G, V, SGC_NAMESPACE, P)
        for obj in listed["items"]:
            with contextlib.suppress(ApiException):
                await self.custom.delete_namespaced_custom_object(
                    G, V, SGC_NAMESPACE, P, obj["metadata"]["name"]
                )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            listed = await self.custom.list_namespaced_custom_object(G, V, SGC_NAMESPACE, P)
            if not listed["items"]:
                return
            await asyncio.sleep(0.2)
        raise TimeoutError("configurations not deleted")


def _is_ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return status.get("observedGeneration") == obj["metadata"].get("generation") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
    )


@contextlib.asynccontextmanager
async def bench_stack(
    topology: Topology | None = None,
    latency: Mapping[str, float] | None = None,
    drift_check: str = "5m",
    controller_flags: tuple[str, ...] = (),
    *,
    metrics: bool = False,
    tracing: bool = False,
    configure_nodes: bool = False,
) -> AsyncIterator[BenchStack]:
    """`metrics`: the controller serves /metrics, scraped every second by this process;
    `tracing`: it sends its traces to a Jaeger started here (sim/jaeger). Both off by default.
    `configure_nodes`: the controller configures gateway nodes, whose agents the benchmark runs
    itself (as the agents' ServiceAccount: BenchStack.agent_kubeconfig)."""
    topology = topology or Topology()
    async with contextlib.AsyncExitStack() as cleanup:  # stops what started, in reverse
        root = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="egressgw-bench-")))
        base = free_port_block(6, start=random.randrange(42000, 58000))
        temporal = TemporalDevServer(TemporalServerSettings.headless(root, base))
        await temporal.start()
        cleanup.push_async_callback(temporal.stop)
        kube = ControlPlane(
            root / "kube",
            ControlPlanePorts(api_server=base + 3, etcd_client=base + 4, etcd_peer=base + 5),
            await asyncio.to_thread(kube_binaries),
            crd_dir=ROOT / "deploy" / "crds",
            fsync=False,  # a throwaway cluster
        )
        await kube.start()
        cleanup.push_async_callback(kube.stop)
        await kube.apply_objects(
            [
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
                for namespace in (SGC_NAMESPACE, SECRET_NAMESPACE)
            ]
        )
        kubeconfig = await service_account_kubeconfig(
            kube, "controller", SECRET_NAMESPACE, root / "controller.kubeconfig"
        )
        agent_kubeconfig = (
            await service_account_kubeconfig(
                kube, "agent", SECRET_NAMESPACE, root / "agent.kubeconfig"
            )
            if configure_nodes
            else None
        )
        arm = ArmEmulator(root / "arm", port=0, latency=dict(latency or {}))
        arm.seed(topology)
        await arm.start()
        cleanup.push_async_callback(arm.stop)
        cloud_config = root / "azure.json"
        cloud_config.write_text(json.dumps(azure_cloud_config(topology, arm.url, "bench")))
        # The benchmark plays the user: the admin's credentials.
        api = await kubernetes_asyncio.config.new_client_from_config(
            config_file=str(kube.paths.admin_kubeconfig)
        )
        cleanup.push_async_callback(api.close)
        environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        metrics_address = "off"
        if tracing:
            jaeger = Jaeger(
                root / "jaeger",
                JaegerPorts.from_base(free_port_block(4, start=random.randrange(42000, 58000))),
                await asyncio.to_thread(jaeger_binary),
            )
            await jaeger.start()
            cleanup.push_async_callback(jaeger.stop)
            environment.update(jaeger.otel_environment())
        if metrics:
            metrics_port = free_port()
            metrics_address = f"127.0.0.1:{metrics_port}"
            scraping = asyncio.create_task(scrape_every_second(metrics_port))
            cleanup.callback(scraping.cancel)
        log = cleanup.enter_context((root / "controller.log").open("ab"))
        controller = await asyncio.to_thread(
            subprocess.Popen,
            [
                sys.executable,
                "-m",
                "egressgw",
                "controller",
                "--cloud-config",
                str(cloud_config),
                "--kubeconfig",
                str(kubeconfig),
                "--azure-ca-file",
                str(arm.ca_path),
                "--temporal-address",
                temporal.address,
                "--secret-namespace",
                SECRET_NAMESPACE,
                "--drift-check-interval",
                drift_check,
                "--health-address",
                "off",
                "--metrics-address",
                metrics_address,
                # Most control-plane benchmarks measure Azure and status; no node agents run.
                "--configure-nodes" if configure_nodes else "--no-configure-nodes",
                *controller_flags,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
        cleanup.push_async_callback(stop_controller, controller)
        yield BenchStack(root, temporal, arm, kube, topology, api, controller, agent_kubeconfig)


async def scrape_every_second(port: int) -> None:
    """What a (busy) Prometheus does to the controller: a scrape every second."""
    async with aiohttp.ClientSession() as session:
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"http://127.0.0.1:{port}/metrics") as answer:
                    await answer.read()
            await asyncio.sleep(1.0)


async def stop_controller(controller: subprocess.Popen[bytes]) -> None:
    controller.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        await asyncio.to_thread(controller.wait, 30)
    if controller.poll() is None:
        controller.kill()
        await asyncio.to_thread(controller.wait)
