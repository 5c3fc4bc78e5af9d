"""Readiness and liveness probes (exec, httpGet, tcpSocket) as the kubelet runs them.

The decisions are pure (`Probe.from_json`, `ProbeCounter`); the checks run in the pod's network:
an exec probe through container_launcher.py (the container's namespaces and mounts), a TCP or
HTTP probe from a short-lived thread that joins the pod's network namespace with setns (which
affects only that thread) before it connects. startupProbe is not run.
"""

from __future__ import annotations

import asyncio
import ctypes
import http.client
import marshal
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sim.node_runtime.launch_spec import LaunchSpec
from sim.node_runtime.pod_state_dir import write_private
from sim.node_runtime.processes import LAUNCHER

Json = dict[str, Any]
CLONE_NEWNET: Final = 0x40000000


@dataclass(frozen=True)
class Probe:
    kind: str  # "exec", "httpGet", "tcpSocket"
    command: tuple[str, ...]
    host: str
    port: int
    path: str
    scheme: str
    initial_delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int

    @staticmethod
    def from_json(raw: Json, container: Json) -> Probe | None:
        """None for a probe kind the runtime does not run (grpc)."""
        named = {
            str(p.get("name")): int(p["containerPort"])
            for p in container.get("ports") or []
            if p.get("name")
        }

        def port_of(value: Any) -> int:
            return named.get(str(value), 0) if isinstance(value, str) else int(value)

        def make(kind: str, command: tuple[str, ...], host: str, port: int, path: str) -> Probe:
            return Probe(
                kind=kind,
                command=command,
                host=host,
                port=port,
                path=path,
                scheme=str((raw.get("httpGet") or {}).get("scheme", "HTTP")),
                initial_delay=float(raw.get("initialDelaySeconds", 0)),
                period=float(raw.get("periodSeconds", 10)),
                timeout=float(raw.get("timeoutSeconds", 1)),
                success_threshold=int(raw.get("successThreshold", 1)),
                failure_threshold=int(raw.get("failureThreshold", 3)),
            )

        if "exec" in raw:
            return make("exec", tuple(str(a) for a in raw["exec"].get("command") or []), "", 0, "")
        if "httpGet" in raw:
            http = raw["httpGet"]
            return make(
                "httpGet",
                (),
                str(http.get("host", "")),
                port_of(http.get("port", 0)),
                str(http.get("path", "/")),
            )
        if "tcpSocket" in raw:
            tcp = raw["tcpSocket"]
            return make("tcpSocket", (), str(tcp.get("host", "")), port_of(tcp.get("port", 0)), "")
        return None


@dataclass
class ProbeCounter:
    """Consecutive results against the thresholds: the state flips after `success_threshold`
    successes or `failure_threshold` failures in a row."""

    success_threshold: int
    failure_threshold: int
    healthy: bool
    successes: int = 0
    failures: int = 0

    def record(self, ok: bool) -> bool:
        """Returns whether the state changed."""
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if not self.healthy and self.successes >= self.success_threshold:
                self.healthy = True
                return True
        else:
            self.failures, self.successes = self.failures + 1, 0
            if self.healthy and self.failures >= self.failure_threshold:
                self.healthy = False
                return True
        return False


def _in_netns(netns: str | None, work: Any, timeout: float) -> bool:
    """Run `work()` in a thread that first joins `netns` (None: the runtime's own)."""
    outcome: list[bool] = []

    def run() -> None:
        try:
            if netns:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        return
                finally:
                    os.close(fd)
            outcome.append(bool(work()))
        except (OSError, http.client.HTTPException):
            outcome.append(False)

    thread = threading.Thread(target=run, name="probe", daemon=True)
    thread.start()
    thread.join(timeout + 1.0)
    return bool(outcome and outcome[0])


def check_network(probe: Probe, pod_ip: str, netns: str | None) -> bool:
    host = probe.host or pod_ip

    def tcp() -> bool:
        with socket.create_connection((host, probe.port), timeout=probe.timeout):
            return True

    def http_get() -> bool:
        cls = http.client.HTTPSConnection if probe.scheme == "HTTPS" else http.client.HTTPConnection
        connection = cls(host, probe.port, timeout=probe.timeout)
        try:
            connection.request("GET", probe.path, headers={"User-Agent": "kube-probe/1.34"})
            return 200 <= connection.getresponse().status < 400
        finally:
            connection.close()

    return _in_netns(netns, tcp if probe.kind == "tcpSocket" else http_get, probe.timeout)


async def check_exec(probe: Probe, spec: LaunchSpec, spec_file: Path) -> bool:
    """The probe's command in the container's namespaces and mounts; exit 0 passes."""
    write_private(spec_file, marshal.dumps({**spec.to_json(), "argv": list(probe.command)}))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-S",
        str(LAUNCHER),
        str(spec_file),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        return await asyncio.wait_for(process.wait(), probe.timeout) == 0
    except TimeoutError:
        os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        return False


async def check(
    probe: Probe, pod_ip: str, netns: str | None, spec: LaunchSpec, spec_file: Path
) -> bool:
    if probe.kind == "exec":
        return await check_exec(probe, spec, spec_file)
    return await asyncio.to_thread(check_network, probe, pod_ip, netns)
