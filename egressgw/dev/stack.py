"""`egressgw dev up`: the embedded stack in one state directory.

One supervisor process runs both emulators on its event loop and the Temporal dev server as a
child. `--detach` starts that supervisor in the background and returns once it reports ready;
`dev down` stops it by the PID it recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sim.arm.server import ArmEmulator
from sim.kube.server import KubeEmulator

from contracts import resource_names
from egressgw.dev.kube_seed import gateway_nodes, namespaces
from egressgw.dev.layout import (
    LOCALHOST,
    DevPorts,
    StatePaths,
    busy_ports,
    resolve_ports,
    write_json_atomic,
)
from egressgw.dev.temporal_server import TemporalDevServer, TemporalServerSettings
from sim.tls import ensure_ca
from sim.topology import Topology

CRD_DIR = Path(__file__).resolve().parents[2] / "deploy" / "crds"
DEV_CLIENT_ID = "egressgw-dev"


class DevStackError(RuntimeError):
    pass


@dataclass(frozen=True)
class DevOptions:
    state_dir: Path
    port_base: int | None = None
    ui: bool = True


def endpoints_document(ports: DevPorts, paths: StatePaths, pid: int) -> dict[str, Any]:
    return {
        "temporal_address": f"{LOCALHOST}:{ports.temporal}",
        "temporal_namespace": "default",
        "temporal_ui_url": f"http://{LOCALHOST}:{ports.temporal_ui}",
        "kube_api_url": f"https://{LOCALHOST}:{ports.kube_api}",
        "arm_url": f"https://{LOCALHOST}:{ports.arm}",
        "kubeconfig": str(paths.kubeconfig.resolve()),
        "azure_config": str(paths.azure_config.resolve()),
        "ca": str(paths.ca.resolve()),
        "ports": ports.named(),
        "pid": pid,
    }


def azure_cloud_config(topology: Topology, arm_url: str, client_secret: str) -> dict[str, Any]:
    """A cloud config in the user-facing format, pointed at the ARM emulator."""
    return {
        "cloud": "AzureStackCloud",
        "resourceManagerEndpoint": arm_url,
        "tenantId": topology.tenant_id,
        "subscriptionId": topology.subscription_id,
        "aadClientId": DEV_CLIENT_ID,
        "aadClientSecret": client_secret,
        "useManagedIdentityExtension": False,
        "location": topology.location,
        "resourceGroup": topology.resource_group,
        "loadBalancerResourceGroup": topology.resource_group,
        "vnetName": topology.vnet_name,
        "vnetResourceGroup": topology.resource_group,
        "subnetName": topology.gateway_subnet_name,
        "gatewayLoadBalancerName": "kubeegressgateway-ilb",
        "userAgent": "egressgw-dev",
    }


def _read_client_secret(paths: StatePaths) -> str:
    """Keep the dev service principal's secret across restarts of the same state dir."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        existing = json.loads(paths.azure_config.read_text())["aadClientSecret"]
        if isinstance(existing, str) and existing:
            return existing
    return secrets.token_urlsafe(24)


class DevStack:
    def __init__(
        self,
        options: DevOptions,
        topology: Topology | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.options = options
        self.paths = StatePaths(options.state_dir)
        self.topology = topology or Topology()
        self.ports = resolve_ports(self.paths, options.port_base)
        self._progress = progress or (lambda _message: None)
        self.temporal: TemporalDevServer | None = None
        self.kube: KubeEmulator | None = None
        self.arm: ArmEmulator | None = None

    def _step(self, message: str) -> None:
        self._progress(message)

    async def start(self) -> dict[str, Any]:
        paths = self.paths
        paths.root.mkdir(parents=True, exist_ok=True)
        paths.logs.mkdir(exist_ok=True)
        taken = busy_ports(self.ports)
        if taken:
            listing = ", ".join(f"{name} {port}" for name, port in taken)
            raise DevStackError(
                f"ports already in use: {listing}; stop what uses them, or pick other ports "
                "with --port-base N"
            )
        write_json_atomic(paths.ports_file, self.ports.named())
        ensure_ca(paths.root)
        try:
            await self._start_temporal()
            await self._start_kube()
            await self._start_arm()
            await self._seed()
        except BaseException:
            await self.stop()
            raise
        document = endpoints_document(self.ports, paths, os.getpid())
        write_json_atomic(paths.endpoints, document)
        return document

    async def _start_temporal(self) -> None:
        self._step(f"starting Temporal dev server on {LOCALHOST}:{self.ports.temporal}")
        self.temporal = TemporalDevServer(
            TemporalServerSettings(
                host=LOCALHOST,
                port=self.ports.temporal,
                http_port=self.ports.temporal_http,
                metrics_port=self.ports.temporal_metrics,
                ui_port=self.ports.temporal_ui if self.options.ui else None,
                db_file=self.paths.temporal_db,
                log_file=self.paths.logs / "temporal.log",
                search_attributes=tuple(resource_names.SEARCH_ATTRIBUTES),
            )
        )
        await self.temporal.start()

    async def _start_kube(self) -> None:
        self._step(f"starting Kubernetes API emulator on https://{LOCALHOST}:{self.ports.kube_api}")
        self.kube = KubeEmulator(
            self.paths.kube_state, host=LOCALHOST, port=self.ports.kube_api, crd_dir=CRD_DIR
        )
        await self.kube.start()
        self.kube.write_kubeconfig(self.paths.kubeconfig, namespace=self.topology.kube_namespace)

    async def _start_arm(self) -> None:
        self._step(
            f"starting Azure Resource Manager emulator on https://{LOCALHOST}:{self.ports.arm}"
        )
        self.arm = ArmEmulator(self.paths.arm_state, host=LOCALHOST, port=self.ports.arm)
        await self.arm.start()

    async def _seed(self) -> None:
        assert self.kube is not None and self.arm is not None
        self._step("seeding Azure: resource group, vnet, gateway VMSS and VM pools")
        self.arm.seed(self.topology)
        secret = _read_client_secret(self.paths)
        write_json_atomic(
            self.paths.azure_config,
            azure_cloud_config(self.topology, self.arm.url, secret),
            mode=0o600,
        )
        self._step("seeding Kubernetes: namespaces and labelled, tainted gateway nodes")
        for obj in namespaces(self.topology):
            await self._ensure(obj)
        for node in gateway_nodes(self.topology, self.arm.primary_ips(self.topology)):
            await self._ensure(node)

    async def _ensure(self, obj: dict[str, Any]) -> None:
        assert self.kube is not None
        existing = await self.kube.get(
            obj["apiVersion"],
            obj["kind"],
            obj["metadata"]["name"],
            obj["metadata"].get("namespace"),
        )
        if existing is None:
            await self.kube.create(obj)

    async def stop(self) -> None:
        # Reverse order of start; each stop is safe when the part never started.
        if self.arm is not None:
            await self.arm.stop()
        if self.kube is not None:
            await self.kube.stop()
        if self.temporal is not None:
            await self.temporal.stop()


def describe(document: dict[str, Any], state_dir: Path) -> str:
    ports = document["ports"]
    return "\n".join(
        [
            "egressgw dev stack is ready",
            f"  Temporal        {document['temporal_address']}  (namespace default)",
            f"  Temporal Web UI {document['temporal_ui_url']}",
            f"  Temporal HTTP   {LOCALHOST}:{ports['temporal_http']}  "
            f"metrics {LOCALHOST}:{ports['temporal_metrics']}",
            f"  Kubernetes API  {document['kube_api_url']}",
            f"  Azure ARM       {document['arm_url']}",
            f"  state dir       {state_dir.resolve()}",
            f"  try:  kubectl --kubeconfig {document['kubeconfig']} get nodes",
        ]
    )


async def run_foreground(options: DevOptions, out: TextIO) -> int:
    """Start, print where everything is, and run until SIGINT/SIGTERM."""
    paths = StatePaths(options.state_dir)
    paths.root.mkdir(parents=True, exist_ok=True)
    running = _running_pid(paths)
    if running is not None:
        raise DevStackError(
            f"a dev stack is already running from {paths.root} (pid {running}); "
            f"stop it with: egressgw dev down --state-dir {paths.root}"
        )
    paths.pid_file.write_text(f"{os.getpid()}\n")

    def progress(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=out, flush=True)

    stack = DevStack(options, progress=progress)
    stop_event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_event.set)
    try:
        document = await stack.start()
        print(describe(document, paths.root), file=out, flush=True)
        print("press Ctrl-C to stop", file=out, flush=True)
        await stop_event.wait()
        progress("stopping")
        await stack.stop()
        progress("stopped; state kept in " + str(paths.root.resolve()))
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        with contextlib.suppress(OSError):
            if paths.pid_file.read_text().strip() == str(os.getpid()):
                paths.pid_file.unlink()
        with contextlib.suppress(OSError, ValueError):
            _mark_stopped(paths)


def _mark_stopped(paths: StatePaths) -> None:
    # endpoints.json stays (it documents the layout) but no longer names a live pid.
    data = json.loads(paths.endpoints.read_text())
    if data.get("pid") != os.getpid():
        return
    data["pid"] = None
    write_json_atomic(paths.endpoints, data)


def _running_pid(paths: StatePaths) -> int | None:
    try:
        pid = int(paths.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid if _is_dev_stack(pid) else None


def _is_dev_stack(pid: int) -> bool:
    """A recycled PID must not be mistaken for our supervisor."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"dev" in cmdline and b"up" in cmdline


def start_detached(options: DevOptions, out: TextIO, timeout: float = 60.0) -> int:
    """Start the supervisor in the background and return once it has written its endpoints."""
    paths = StatePaths(options.state_dir)
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.logs.mkdir(exist_ok=True)
    running = _running_pid(paths)
    if running is not None:
        raise DevStackError(
            f"a dev stack is already running from {paths.root} (pid {running}); "
            f"stop it with: egressgw dev down --state-dir {paths.root}"
        )
    cmd = [sys.executable, "-m", "egressgw", "dev", "up", "--state-dir", str(paths.root)]
    if options.port_base is not None:
        cmd += ["--port-base", str(options.port_base)]
    if not options.ui:
        cmd.append("--headless")
    log_path = paths.logs / "dev.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        child = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise DevStackError(
                f"the dev stack failed to start (exit code {child.returncode}):\n"
                + _read_from(log_path, offset)
            )
        with contextlib.suppress(OSError, ValueError):
            document = json.loads(paths.endpoints.read_text())
            if document.get("pid") == child.pid:
                print(describe(document, paths.root), file=out, flush=True)
                print(
                    f"running in the background (pid {child.pid}, log {log_path}); "
                    f"stop it with: egressgw dev down --state-dir {paths.root}",
                    file=out,
                    flush=True,
                )
                return 0
        time.sleep(0.02)
    child.terminate()
    raise DevStackError(f"the dev stack did not become ready within {timeout:.0f}s; see {log_path}")


def _read_from(path: Path, offset: int) -> str:
    with contextlib.suppress(OSError), path.open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode(errors="replace")[-4000:]
    return ""


def stop_detached(state_dir: Path, out: TextIO, timeout: float = 30.0) -> int:
    paths = StatePaths(state_dir)
    pid = _running_pid(paths)
    if pid is None:
        print(f"no dev stack is running from {paths.root}", file=out)
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print(f"stopped the dev stack (pid {pid}); state kept in {paths.root}", file=out)
            return 0
        time.sleep(0.05)
    raise DevStackError(f"the dev stack (pid {pid}) did not stop within {timeout:.0f}s")
