"""Runs a real Kubernetes control plane as local processes: etcd, kube-apiserver (TLS, Node and
RBAC authorization, ServiceAccount token signing, the default admission chain plus
NodeRestriction), kube-controller-manager and kube-scheduler, all on 127.0.0.1.

State lives in one directory (etcd's data, certificates, logs), so a control plane stopped and
started again over the same directory keeps every object. The project's CRDs are applied with
server-side apply once the API server is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from sim.control_plane.binaries import KubeBinaries
from sim.control_plane.kubeconfig import certificate_kubeconfig, write_kubeconfig
from sim.control_plane.pki import (
    SERVICE_CLUSTER_IP_RANGE,
    ControlPlanePki,
    ensure_control_plane_pki,
)

LOCALHOST: Final = "127.0.0.1"
# Controllers a cloud-less cluster has no use for: node IPAM (the node runtime's CNI config
# assigns pod CIDRs), cloud node lifecycle, service load balancers and routes.
CONTROLLERS: Final = "*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route"
# How long a node may go without renewing its Lease before the node lifecycle controller marks it
# NotReady (Kubernetes' default is 40 s; the node runtime renews every few seconds).
NODE_MONITOR_GRACE: Final = "20s"
SUPERVISE_INTERVAL: Final = 1.0  # seconds between checks of the controller manager and scheduler


class ControlPlaneError(RuntimeError):
    """A control plane process did not start or did not become ready."""


@dataclass(frozen=True)
class ControlPlanePorts:
    api_server: int
    etcd_client: int
    etcd_peer: int


@dataclass(frozen=True)
class ControlPlanePaths:
    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def controller_manager_kubeconfig(self) -> Path:
        return self.root / "kube-controller-manager.kubeconfig"

    @property
    def scheduler_kubeconfig(self) -> Path:
        return self.root / "kube-scheduler.kubeconfig"


class ControlPlaneProcess:
    """One control plane process, its log file and its stop."""

    def __init__(self, name: str, command: list[str], log: Path) -> None:
        self.name = name
        self.command = command
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the supervisor, which stops us in order
            )

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def exited(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    async def stop(self, timeout: float = 15.0) -> None:
        popen, self.popen = self.popen, None
        if popen is None or popen.poll() is not None:
            return
        popen.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(popen.wait, timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            await asyncio.to_thread(popen.wait)

    def failure(self) -> str:
        return (
            f"{self.name} exited with {self.exited()}; last lines of {self.log}:\n{_tail(self.log)}"
        )


class ControlPlane:
    def __init__(
        self,
        root: Path,
        ports: ControlPlanePorts,
        binaries: KubeBinaries,
        *,
        crd_dir: Path | None = None,
        fsync: bool = True,
        api_server_flags: tuple[str, ...] = (),
        restart_exited: bool = True,
    ) -> None:
        """`fsync=False` runs etcd with --unsafe-no-fsync: for throwaway test clusters.
        `api_server_flags` are added to kube-apiserver's command line (e.g.
        `--watch-cache-sizes=secrets#0`: Secrets' watches then go to etcd itself, not to the API
        server's watch cache, so that an etcd compaction reaches them at once).
        `restart_exited=False` leaves restarting the controller manager and the scheduler to
        the caller, which supervises every process (`processes()`)."""
        self.paths = ControlPlanePaths(root)
        self.ports = ports
        self.binaries = binaries
        self.crd_dir = crd_dir
        self.fsync = fsync
        self.api_server_flags = api_server_flags
        self.restart_exited = restart_exited
        self.pki: ControlPlanePki | None = None
        self._etcd: ControlPlaneProcess | None = None
        self._api_server: ControlPlaneProcess | None = None
        self._controller_manager: ControlPlaneProcess | None = None
        self._scheduler: ControlPlaneProcess | None = None
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def server(self) -> str:
        return f"https://{LOCALHOST}:{self.ports.api_server}"

    @property
    def etcd_url(self) -> str:
        return f"http://{LOCALHOST}:{self.ports.etcd_client}"

    def processes(self) -> list[ControlPlaneProcess]:
        """The started processes (etcd, kube-apiserver, controller manager, scheduler): each
        with its name, PID, log, exit code (`exited()`) and `start()` to start it again."""
        return [
            p
            for p in (self._etcd, self._api_server, self._controller_manager, self._scheduler)
            if p is not None
        ]

    def pids(self) -> dict[str, int | None]:
        return {
            p.name: p.pid
            for p in (self._etcd, self._api_server, self._controller_manager, self._scheduler)
            if p is not None
        }

    # --- Start and stop --------------------------------------------------------------------------

    async def start(self, timeout: float = 60.0) -> None:
        """Start every process, wait for /readyz and apply the CRDs."""
        paths = self.paths
        paths.root.mkdir(parents=True, exist_ok=True)
        self.pki = pki = await asyncio.to_thread(ensure_control_plane_pki, paths.pki)
        write_kubeconfig(
            paths.admin_kubeconfig,
            certificate_kubeconfig(self.server, pki.ca, pki.admin.cert, pki.admin.key),
        )
        write_kubeconfig(
            paths.controller_manager_kubeconfig,
            certificate_kubeconfig(
                self.server, pki.ca, pki.controller_manager.cert, pki.controller_manager.key
            ),
        )
        write_kubeconfig(
            paths.scheduler_kubeconfig,
            certificate_kubeconfig(self.server, pki.ca, pki.scheduler.cert, pki.scheduler.key),
        )
        try:
            self._etcd = ControlPlaneProcess("etcd", self._etcd_command(), paths.logs / "etcd.log")
            self._etcd.start()
            self._api_server = ControlPlaneProcess(
                "kube-apiserver", self._api_server_command(), paths.logs / "kube-apiserver.log"
            )
            self._api_server.start()
            await self.wait_ready(timeout)
            self._controller_manager = ControlPlaneProcess(
                "kube-controller-manager",
                self._controller_manager_command(),
                paths.logs / "kube-controller-manager.log",
            )
            self._controller_manager.start()
            self._scheduler = ControlPlaneProcess(
                "kube-scheduler", self._scheduler_command(), paths.logs / "kube-scheduler.log"
            )
            self._scheduler.start()
            if self.restart_exited:
                self._supervisor = asyncio.create_task(self._supervise(), name="control plane")
            if self.crd_dir is not None:
                await self.apply(self.crd_dir)
                await self.kubectl("wait", "--for=condition=Established", "crd", "--all")
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop in reverse order; safe when (part of) it never started."""
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        for process in (self._scheduler, self._controller_manager, self._api_server, self._etcd):
            if process is not None:
                await process.stop()

    async def _supervise(self) -> None:
        """Start the controller manager and the scheduler again when they exit, as a kubelet
        restarts static pods: both exit when the API server is gone at a bad moment (e.g. the
        controller manager while it starts its controllers)."""
        while True:
            await asyncio.sleep(SUPERVISE_INTERVAL)
            for process in (self._controller_manager, self._scheduler):
                if process is not None and process.exited() is not None:
                    process.start()

    async def restart_api_server(self, down_for: float = 0.0) -> None:
        """Stop kube-apiserver (clients see their connections and watches break), wait
        `down_for` seconds, start it again and wait until it is ready."""
        assert self._api_server is not None
        # Its graceful stop waits for the controller manager's and scheduler's watches; a
        # restart in a test needs no grace.
        await self._api_server.stop(timeout=1.0)
        await asyncio.sleep(down_for)
        self._api_server.start()
        await self.wait_ready()

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for process in (self._etcd, self._api_server):
                if process is not None and process.exited() is not None:
                    raise ControlPlaneError(process.failure())
            try:
                status, body = await asyncio.to_thread(self._get, "/readyz")
            except OSError as err:
                last = str(err)
            else:
                if status == 200:
                    return
                last = f"HTTP {status}: {body[:300]}"
            await asyncio.sleep(0.2)
        raise ControlPlaneError(f"kube-apiserver not ready after {timeout:.0f} s: {last}")

    # --- Helpers for callers ----------------------------------------------------------------------

    async def get_json(self, path: str) -> dict[str, Any]:
        """GET an API path as the admin (cheaper than a kubectl process for frequent reads)."""
        status, body = await asyncio.to_thread(self._get, path)
        if status != 200:
            raise ControlPlaneError(f"GET {path}: HTTP {status}: {body[:300]}")
        result: dict[str, Any] = json.loads(body)
        return result

    async def kubectl(self, *args: str, stdin: str | None = None) -> str:
        """Run kubectl as the admin; raises ControlPlaneError with its output on failure."""
        command = [
            str(self.binaries.kubectl),
            "--kubeconfig",
            str(self.paths.admin_kubeconfig),
            *args,
        ]
        done = await asyncio.to_thread(
            subprocess.run, command, input=stdin, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise ControlPlaneError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    async def apply(self, path: Path) -> None:
        """Server-side apply of a file or directory of manifests, as the admin."""
        await self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=egressgw-dev",
            "-f",
            str(path),
        )

    async def apply_objects(self, objects: list[dict[str, Any]]) -> None:
        """Server-side apply of objects (dicts), as the admin."""
        await self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=egressgw-dev",
            "-f",
            "-",
            stdin=yaml.safe_dump_all(objects),
        )

    async def compact_etcd(self) -> int:
        """Compact etcd's history up to its current revision, so that a watch resuming from an
        older resourceVersion gets 410 Gone; returns the revision compacted to.

        Only watches served by etcd itself see it at once: the API server's watch cache (on for
        every resource unless `--watch-cache-sizes=<resource>#0` turns it off) keeps serving its
        window of recent events after a compaction. A restarted API server starts its cache
        afresh, and answers 410 to any resourceVersion older than that."""
        header = await asyncio.to_thread(self._etcd_post, "/v3/kv/range", {"key": "AA=="})
        revision = int(header["header"]["revision"])
        await asyncio.to_thread(
            self._etcd_post, "/v3/kv/compaction", {"revision": revision, "physical": True}
        )
        return revision

    def _ssl(self) -> ssl.SSLContext:
        assert self.pki is not None
        ctx = ssl.create_default_context(cafile=str(self.pki.ca))
        ctx.load_cert_chain(str(self.pki.admin.cert), str(self.pki.admin.key))
        return ctx

    def _get(self, path: str) -> tuple[int, str]:
        request = urllib.request.Request(f"{self.server}{path}")
        try:
            with urllib.request.urlopen(request, context=self._ssl(), timeout=5) as response:
                return int(response.status), response.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            return int(err.code), err.read().decode(errors="replace")

    def _etcd_post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.etcd_url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result

    # --- Commands ---------------------------------------------------------------------------------

    def _etcd_command(self) -> list[str]:
        peer = f"http://{LOCALHOST}:{self.ports.etcd_peer}"
        command = [
            str(self.binaries.path("etcd")),
            "--name=egressgw-dev",
            f"--data-dir={self.paths.etcd_data}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=egressgw-dev={peer}",
            "--log-level=warn",
        ]
        if not self.fsync:
            command.append("--unsafe-no-fsync")
        return command

    def _api_server_command(self) -> list[str]:
        pki = self.pki
        assert pki is not None
        return [
            str(self.binaries.path("kube-apiserver")),
            f"--etcd-servers={self.etcd_url}",
            f"--bind-address={LOCALHOST}",
            f"--advertise-address={LOCALHOST}",
            f"--secure-port={self.ports.api_server}",
            f"--cert-dir={self.paths.pki}",
            f"--tls-cert-file={pki.api_server.cert}",
            f"--tls-private-key-file={pki.api_server.key}",
            f"--client-ca-file={pki.ca}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={pki.service_account_public}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--allow-privileged=true",
            # Logs and exec: the API server calls a node runtime's kubelet endpoint.
            f"--kubelet-client-certificate={pki.api_server_kubelet_client.cert}",
            f"--kubelet-client-key={pki.api_server_kubelet_client.key}",
            f"--kubelet-certificate-authority={pki.ca}",
            # Node runtimes register InternalDNS=localhost for their kubelet endpoint on
            # 127.0.0.1 (sim/node_runtime/node_object.py); InternalIP stays the node's own.
            "--kubelet-preferred-address-types=InternalDNS,Hostname,InternalIP",
            # The `kubernetes` Service would point at 127.0.0.1, which Endpoints refuse.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            *self.api_server_flags,
        ]

    def _controller_manager_command(self) -> list[str]:
        pki = self.pki
        assert pki is not None
        ca_key = pki.ca.with_name("ca-key.pem")
        return [
            str(self.binaries.path("kube-controller-manager")),
            f"--kubeconfig={self.paths.controller_manager_kubeconfig}",
            f"--service-account-private-key-file={pki.service_account_key}",
            f"--root-ca-file={pki.ca}",
            f"--cluster-signing-cert-file={pki.ca}",
            f"--cluster-signing-key-file={ca_key}",
            "--use-service-account-credentials=true",
            f"--controllers={CONTROLLERS}",
            f"--node-monitor-grace-period={NODE_MONITOR_GRACE}",
            "--leader-elect=false",
            "--secure-port=0",
        ]

    def _scheduler_command(self) -> list[str]:
        return [
            str(self.binaries.path("kube-scheduler")),
            f"--kubeconfig={self.paths.scheduler_kubeconfig}",
            "--leader-elect=false",
            "--secure-port=0",
        ]


def _tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""
