"""Starting a node runtime as a process, for the dev stack, tests and benchmarks: the node's
credentials (client certificate system:node:<name> and kubelet serving certificate from
sim/control_plane/pki.py, a kubeconfig with them), its CNI conf dir with a bridge or ptp conflist,
and the command line of `python -m sim.node_runtime`."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sim.control_plane.kubeconfig import certificate_kubeconfig, write_kubeconfig
from sim.control_plane.pki import KeyPair, ensure_node_certificates
from sim.node_runtime.cni_config import bridge_conflist, ptp_conflist


@dataclass(frozen=True)
class NodeSpec:
    name: str
    internal_ip: str
    kubelet_port: int
    pod_subnet: str
    netns: str | None = None  # the node's network namespace; None: the host
    cni: Literal["bridge", "ptp"] = "bridge"
    labels: tuple[str, ...] = ()  # "key=value"
    taints: tuple[str, ...] = ()  # "key=value:Effect"
    provider_id: str = ""
    pod_netns_prefix: str | None = None
    extra_args: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class NodeFiles:
    state_dir: Path
    kubeconfig: Path
    serving: KeyPair
    cni_conf_dir: Path


def prepare_node(
    spec: NodeSpec,
    state_dir: Path,
    pki_dir: Path,
    server: str,
    ca: Path,
    *,
    cni_conf_dir: Path | None = None,
) -> NodeFiles:
    """Certificates, kubeconfig and CNI config of one node, under `state_dir`. With
    `cni_conf_dir` the node uses that directory's configuration as it is (e.g. the dev stack's
    network writes it) and none is written here."""
    state_dir.mkdir(parents=True, exist_ok=True)
    client, serving = ensure_node_certificates(pki_dir, spec.name)
    kubeconfig = write_kubeconfig(
        state_dir / "kubeconfig", certificate_kubeconfig(server, ca, client.cert, client.key)
    )
    if cni_conf_dir is not None:
        return NodeFiles(state_dir, kubeconfig, serving, cni_conf_dir)
    conf_dir = state_dir / "cni" / "net.d"
    conf_dir.mkdir(parents=True, exist_ok=True)
    ipam_dir = str(state_dir / "cni" / "ipam")
    network = f"egressgw-{spec.name}"
    conflist = (
        bridge_conflist(network, "cni0", spec.pod_subnet, ipam_dir)
        if spec.cni == "bridge"
        else ptp_conflist(network, spec.pod_subnet, ipam_dir)
    )
    (conf_dir / "10-egressgw.conflist").write_text(json.dumps(conflist, indent=2))
    return NodeFiles(state_dir, kubeconfig, serving, conf_dir)


def node_command(
    spec: NodeSpec, files: NodeFiles, cni_bin_dir: Path, extra_path: tuple[Path, ...] = ()
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "sim.node_runtime",
        "--node-name",
        spec.name,
        "--kubeconfig",
        str(files.kubeconfig),
        "--state-dir",
        str(files.state_dir / "runtime"),
        "--cni-conf-dir",
        str(files.cni_conf_dir),
        "--cni-bin-dir",
        str(cni_bin_dir),
        "--kubelet-port",
        str(spec.kubelet_port),
        "--serving-cert",
        str(files.serving.cert),
        "--serving-key",
        str(files.serving.key),
        "--internal-ip",
        spec.internal_ip,
    ]
    if spec.netns:
        command += ["--netns", spec.netns]
    if spec.provider_id:
        command += ["--provider-id", spec.provider_id]
    if spec.pod_netns_prefix:
        command += ["--pod-netns-prefix", spec.pod_netns_prefix]
    for label in spec.labels:
        command += ["--label", label]
    for taint in spec.taints:
        command += ["--taint", taint]
    for path in extra_path:
        command += ["--extra-path", str(path)]
    return [*command, *spec.extra_args]


class NodeRuntimeProcess:
    """One `python -m sim.node_runtime` process, its log, and its stop (SIGTERM, then SIGKILL
    after `timeout`)."""

    def __init__(self, command: list[str], log: Path) -> None:
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
                start_new_session=True,
            )

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def exited(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    async def stop(self, timeout: float = 30.0) -> int | None:
        popen, self.popen = self.popen, None
        if popen is None:
            return None
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(popen.wait, timeout)
            except subprocess.TimeoutExpired:
                popen.kill()
                await asyncio.to_thread(popen.wait)
        return popen.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would: the pods' processes live on in their own sessions."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
