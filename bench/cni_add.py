"""CNI ADD wall time of kube-egress-cni for an annotated pod: the plugin process alone, started
the way a runtime starts it (the launcher `egressgw cni-manager` writes into the CNI bin dir),
after the main plugin (the reference bridge + host-local) has set the pod up. Target: p50 < 300 ms
(interpreter start included). Also: the plugin's import time, the bare interpreter start, ADD for
a pod without the annotation (pass-through) and DEL.

Real parts throughout: the control plane (sim/control_plane), `egressgw cni-manager` as its
ServiceAccount, wireguard-go, `ip` and `nft` in real namespaces. Needs root.
    .venv/bin/python bench/cni_add.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from agent.wireguard_keys import generate_private_key, public_key_of, to_base64
from contracts import kube_names
from sim.control_plane.binaries import kube_binaries
from sim.control_plane.cluster import ControlPlane, ControlPlanePorts
from sim.control_plane.service_accounts import service_account_kubeconfig
from sim.ports import free_port_block

ROOT = Path(__file__).resolve().parents[1]
CRD_DIR = ROOT / "deploy" / "crds"
NAMESPACE = "bench"
TAG = f"b{uuid.uuid4().hex[:4]}"
NODE_NS = f"{TAG}n"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def figures(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{name:<34} n={len(ms):<3} p50 {percentile(ms, 0.5):6.1f} ms   "
        f"p90 {percentile(ms, 0.9):6.1f} ms   p99 {percentile(ms, 0.99):6.1f} ms   "
        f"max {max(ms):6.1f} ms"
    )


def sh(*argv: str, stdin: str | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def import_times(runs: int = 15) -> tuple[float, float, float]:
    """Medians in ms: `python -IS -c pass`, then importing agent.cni.plugin as the launcher
    does (all a pod without the annotation needs), then agent.cni.pod_attachment on top (what an
    annotated pod adds); from -X importtime."""
    bare: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-IS", "-c", "pass"], check=True)
        bare.append(time.perf_counter() - start)
    found: dict[str, list[float]] = {"agent.cni.plugin": [], "agent.cni.pod_attachment": []}
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
        "import agent.cni.plugin, agent.cni.pod_attachment"
    )
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-IS", "-X", "importtime", "-c", code],
            capture_output=True,
            text=True,
            check=True,
        )
        for line in done.stderr.splitlines():
            module = line.rsplit("|", 1)[-1].strip()
            if module in found:
                found[module].append(int(line.split("|")[1]) / 1e6)
    return (
        statistics.median(bare) * 1000,
        statistics.median(found["agent.cni.plugin"]) * 1000,
        statistics.median(found["agent.cni.pod_attachment"]) * 1000,
    )


class Bench:
    def __init__(self, directory: Path, control_plane: ControlPlane) -> None:
        self.dir = directory
        self.cp = control_plane
        self.conf_dir = directory / "net.d"
        self.bin_dir = directory / "bin"
        self.socket = directory / "m.sock"
        self.manager: subprocess.Popen[bytes] | None = None
        self.binaries = kube_binaries()

    async def kubectl_apply(self, objects: list[dict[str, Any]]) -> None:
        await self.cp.kubectl(
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
        )

    async def set_up(self, pods: int) -> None:
        self.conf_dir.mkdir()
        self.bin_dir.mkdir()
        main = {
            "cniVersion": "1.0.0",
            "name": "podnet",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": "10.244.0.0/16"}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.dir / "ipam"),
                    },
                }
            ],
        }
        (self.conf_dir / "10-podnet.conflist").write_text(json.dumps(main))
        sh("ip", "netns", "add", NODE_NS)
        await self.kubectl_apply(
            [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}]
        )
        kubeconfig = await service_account_kubeconfig(
            self.cp, "cni-manager", NAMESPACE, self.dir / "manager.kubeconfig"
        )
        gateway_key = to_base64(public_key_of(generate_private_key()))
        await self.kubectl_apply(
            [
                {
                    "apiVersion": kube_names.GROUP_VERSION,
                    "kind": kube_names.SGC_KIND,
                    "metadata": {"name": "egress", "namespace": NAMESPACE},
                    "spec": {
                        "gatewayNodepoolName": "gw",
                        "provisionPublicIps": True,
                        "excludeCidrs": ["198.51.100.0/24"],
                    },
                }
            ]
        )
        status = {
            "status": {
                "gatewayServerProfile": {"ip": "10.224.0.4", "port": 6000, "publicKey": gateway_key}
            }
        }
        await self.cp.kubectl(
            "patch",
            "-n",
            NAMESPACE,
            "staticgatewayconfiguration",
            "egress",
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps(status),
        )
        for _ in range(200):
            try:
                await self.cp.kubectl("get", "-n", NAMESPACE, "serviceaccount", "default")
                break
            except RuntimeError:
                await asyncio.sleep(0.1)
        await self.kubectl_apply(
            [self.pod_object(f"a{i}", annotated=True) for i in range(pods)]
            + [self.pod_object(f"p{i}", annotated=False) for i in range(pods)]
        )
        self.start_manager(kubeconfig)

    def start_manager(self, kubeconfig: Path) -> None:
        log = (self.dir / "manager.log").open("ab")
        self.manager = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "egressgw",
                "cni-manager",
                "--node-name",
                f"{TAG}-node",
                "--namespace",
                NAMESPACE,
                "--kubeconfig",
                str(kubeconfig),
                "--socket-path",
                str(self.socket),
                "--cni-conf-dir",
                str(self.conf_dir),
                "--cni-bin-dir",
                str(self.bin_dir),
                "--plugin-state-dir",
                str(self.dir / "state"),
                "--cluster-cidrs",
                "10.244.0.0/16,10.96.0.0/16",
                "--metrics-address",
                "off",
                "--log-level",
                "WARNING",
            ],
            stdout=log,
            stderr=log,
            cwd=ROOT,
        )
        conflist = self.conf_dir / kube_names.CNI_CONF_FILE
        while not (conflist.exists() and self.socket.exists()):
            if self.manager.poll() is not None:
                raise RuntimeError((self.dir / "manager.log").read_text())
            time.sleep(0.05)
        self.conflist = json.loads(conflist.read_text())

    @staticmethod
    def pod_object(name: str, *, annotated: bool) -> dict[str, Any]:
        annotations = {kube_names.POD_GATEWAY_ANNOTATION: "egress"} if annotated else {}
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE, "annotations": annotations},
            "spec": {
                "schedulerName": "none",
                "automountServiceAccountToken": False,
                "containers": [{"name": "c", "image": "registry.invalid/c:1"}],
            },
        }

    def env(self, command: str, pod: str, netns: str, container: str) -> dict[str, str]:
        return {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container,
            "CNI_NETNS": f"/var/run/netns/{netns}",
            "CNI_IFNAME": "eth0",
            "CNI_PATH": f"{self.bin_dir}:{self.binaries.directory}",
            "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE={NAMESPACE};K8S_POD_NAME={pod}",
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        }

    def config(self, index: int, prev: dict[str, Any] | None) -> bytes:
        plugin = self.conflist["plugins"][index]
        conf = {**plugin, "name": self.conflist["name"], "cniVersion": self.conflist["cniVersion"]}
        if prev is not None:
            conf["prevResult"] = prev
        return json.dumps(conf).encode()

    def run_plugin(self, argv: list[str], env: dict[str, str], stdin: bytes) -> tuple[float, str]:
        start = time.perf_counter()
        done = subprocess.run(argv, input=stdin, env=env, capture_output=True, check=False)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{argv[-1]}: {done.stdout.decode()} {done.stderr.decode()}")
        return elapsed, done.stdout.decode()

    def one_pod(self, pod: str) -> tuple[float, float]:
        """(ADD seconds, DEL seconds) of our plugin for one pod sandbox."""
        netns = f"{TAG}p{uuid.uuid4().hex[:6]}"
        container = uuid.uuid4().hex
        sh("ip", "netns", "add", netns)
        in_node = ["nsenter", f"--net=/var/run/netns/{NODE_NS}"]
        try:
            _, bridge = self.run_plugin(
                [*in_node, str(self.binaries.path("bridge"))],
                self.env("ADD", pod, netns, container),
                self.config(0, None),
            )
            prev = json.loads(bridge)
            ours = str(self.bin_dir / kube_names.CNI_PLUGIN_TYPE)
            add, result = self.run_plugin(
                [ours], self.env("ADD", pod, netns, container), self.config(1, prev)
            )
            delete, _ = self.run_plugin(
                [ours], self.env("DEL", pod, netns, container), self.config(1, json.loads(result))
            )
            self.run_plugin(
                [*in_node, str(self.binaries.path("bridge"))],
                self.env("DEL", pod, netns, container),
                self.config(0, prev),
            )
            return add, delete
        finally:
            subprocess.run(["ip", "netns", "delete", netns], check=False)

    def tear_down(self) -> None:
        if self.manager is not None and self.manager.poll() is None:
            self.manager.send_signal(signal.SIGTERM)
            self.manager.wait(timeout=20)
        subprocess.run(["ip", "netns", "delete", NODE_NS], check=False)


async def main(runs: int) -> None:
    bare, plugin, attachment = import_times()
    print(f"interpreter start (python -IS -c pass)        median {bare:6.1f} ms")
    print(f"import agent.cni.plugin (every pod)            median {plugin:6.1f} ms")
    print(f"import agent.cni.pod_attachment (annotated)   +median {attachment:6.1f} ms")
    directory = Path(tempfile.mkdtemp(prefix="egwbench-", dir="/tmp"))
    base = free_port_block(3, start=random.randrange(42000, 58000))
    control_plane = ControlPlane(
        directory / "cp",
        ControlPlanePorts(api_server=base, etcd_client=base + 1, etcd_peer=base + 2),
        kube_binaries(),
        crd_dir=CRD_DIR,
        fsync=False,
    )
    await control_plane.start()
    bench = Bench(directory, control_plane)
    try:
        await bench.set_up(runs)
        await asyncio.to_thread(
            bench.one_pod, "a0"
        )  # warm-up: page cache, first API connection of the manager
        adds, dels, passes = [], [], []
        for i in range(runs):
            add, delete = await asyncio.to_thread(bench.one_pod, f"a{i}")
            adds.append(add)
            dels.append(delete)
            passes.append((await asyncio.to_thread(bench.one_pod, f"p{i}"))[0])
        print(figures("ADD, annotated pod (wg0, routes)", adds))
        print(figures("ADD, pod without the annotation", passes))
        print(figures("DEL, annotated pod", dels))
        target = "met" if percentile(adds, 0.5) < 0.3 else "MISSED"
        print(f"target p50 < 300 ms for an annotated pod: {target}")
    finally:
        bench.tear_down()
        await control_plane.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench/cni_add.py needs root (network namespaces, wireguard-go)")
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    asyncio.run(main(parser.parse_args().runs))
