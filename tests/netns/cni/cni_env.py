"""A regular node for the pod side's tests, on real namespaces: a node namespace where the
main plugin (the reference `bridge` + `host-local`) makes its bridge, pods as namespaces of their
own, the real `egressgw cni-manager` process as its ServiceAccount (deploy/rbac/cni-manager.yaml)
with its conf dir, bin dir and socket in a short temporary directory, and a chain runner that
executes a conflist the way a container runtime does (CNI spec "Section 4": prevResult passed
along, DEL in reverse order). Plugins run inside the node namespace, as a runtime on that node
would run them.

Everything made here carries the test's tag and is removed by PID or by name at teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts import kube_names
from sim.control_plane.binaries import KubeBinaries
from sim.ports import free_port

MAIN_CONFLIST = "10-podnet.conflist"
POD_SUBNET = "10.244.1.0/24"
NODE_GATEWAY = "10.244.1.1"
CLUSTER_CIDRS = ("10.244.0.0/16", "10.96.0.0/16")
PE_API = kube_names.GROUP_VERSION
SGC_KIND = kube_names.SGC_KIND
PE_KIND = kube_names.POD_ENDPOINT_KIND
WG_SOCKETS = Path("/var/run/wireguard")


def sh(*argv: str, check: bool = True, stdin: str | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def in_netns(netns: str, *argv: str, check: bool = True) -> str:
    return sh("ip", "netns", "exec", netns, *argv, check=check)


def netns_add(name: str) -> None:
    sh("ip", "netns", "add", name)
    sh("ip", "-n", name, "link", "set", "lo", "up")


def netns_delete(name: str) -> None:
    if Path(f"/var/run/netns/{name}").exists():
        sh("ip", "netns", "delete", name, check=False)


def main_conflist(ipam_dir: Path) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": "podnet",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(ipam_dir),
                },
            }
        ],
    }


@dataclass
class PluginRun:
    plugin: str
    code: int
    stdout: str
    stderr: str

    @property
    def document(self) -> dict[str, Any] | None:
        if not self.stdout.strip():
            return None
        parsed: dict[str, Any] = json.loads(self.stdout)
        return parsed


@dataclass
class Pod:
    """A pod sandbox: its Kubernetes name and its network namespace."""

    namespace: str
    name: str
    netns: str
    container_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    ifname: str = "eth0"
    result: dict[str, Any] | None = None  # the chain's ADD result

    @property
    def netns_path(self) -> str:
        return f"/var/run/netns/{self.netns}"

    @property
    def cni_args(self) -> str:
        return (
            f"IgnoreUnknown=1;K8S_POD_NAMESPACE={self.namespace};K8S_POD_NAME={self.name};"
            f"K8S_POD_INFRA_CONTAINER_ID={self.container_id}"
        )

    @property
    def ip(self) -> str:
        assert self.result is not None
        for entry in self.result["ips"]:
            if "." in entry["address"]:
                return str(entry["address"]).split("/")[0]
        raise AssertionError("no IPv4 address in the result")


class CniNode:
    """One node: its namespace, directories and manager process."""

    def __init__(self, tag: str, binaries: KubeBinaries, node_name: str) -> None:
        self.tag = tag
        self.netns = f"{tag}n"
        self.node_name = node_name
        self.binaries = binaries
        # Short: a Unix socket path has at most 107 characters.
        self.dir = Path(tempfile.mkdtemp(prefix=f"egwcni-{tag}-", dir="/tmp"))
        self.conf_dir = self.dir / "net.d"
        self.bin_dir = self.dir / "bin"
        self.state_dir = self.dir / "state"
        self.ipam_dir = self.dir / "ipam"
        self.socket_path = self.dir / "manager.sock"
        self.metrics_port = free_port()  # the manager's /metrics
        self.manager_log = self.dir / "manager.log"
        self.plugin_log = self.dir / "plugins.log"
        self._manager: subprocess.Popen[bytes] | None = None
        for directory in (self.conf_dir, self.bin_dir):
            directory.mkdir()

    # --- namespaces ------------------------------------------------------------------------------

    def create(self) -> None:
        netns_add(self.netns)
        in_netns(self.netns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        in_netns(self.netns, "sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=0")
        (self.conf_dir / MAIN_CONFLIST).write_text(json.dumps(main_conflist(self.ipam_dir)))

    def destroy(self) -> None:
        self.stop_manager()
        if self.manager_log.exists():  # shown by pytest when a test of the module failed
            print(f"--- cni-manager log of {self.node_name}:\n{self.manager_log.read_text()}")
        netns_delete(self.netns)
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- the manager -----------------------------------------------------------------------------

    def manager_argv(self, kubeconfig: Path, namespace: str, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "egressgw",
            "cni-manager",
            "--node-name",
            self.node_name,
            "--namespace",
            namespace,
            "--kubeconfig",
            str(kubeconfig),
            "--socket-path",
            str(self.socket_path),
            "--cni-conf-dir",
            str(self.conf_dir),
            "--cni-bin-dir",
            str(self.bin_dir),
            "--plugin-state-dir",
            str(self.state_dir),
            "--cluster-cidrs",
            ",".join(CLUSTER_CIDRS),
            "--wireguard-backend",
            "wireguard-go",
            "--poll-interval",
            "100ms",
            "--taint-check-interval",
            "1s",
            "--metrics-address",
            f"127.0.0.1:{self.metrics_port}",
            *extra,
        ]

    def start_manager(
        self, kubeconfig: Path, namespace: str, *extra: str, installed: bool = True
    ) -> None:
        """Start the manager and wait until it listens (and, with `installed`, has written our
        conflist)."""
        log = self.manager_log.open("ab")
        self._manager = subprocess.Popen(
            self.manager_argv(kubeconfig, namespace, *extra),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + 60
        while not (self.socket_path.exists() and (self.conflist_path.exists() or not installed)):
            if self._manager.poll() is not None:
                raise RuntimeError(f"cni-manager exited: {self.manager_log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"cni-manager not ready: {self.manager_log.read_text()[-3000:]}")
            time.sleep(0.05)

    def stop_manager(self) -> int | None:
        process, self._manager = self._manager, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                return process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                return process.wait()
        return process.returncode

    @property
    def conflist_path(self) -> Path:
        return self.conf_dir / kube_names.CNI_CONF_FILE

    def conflist(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.conflist_path.read_text())
        return parsed

    @property
    def cni_path(self) -> str:
        return f"{self.bin_dir}:{self.binaries.directory}"

    # --- pods ------------------------------------------------------------------------------------

    def new_pod(self, namespace: str, name: str) -> Pod:
        pod = Pod(namespace=namespace, name=name, netns=f"{self.tag}p{uuid.uuid4().hex[:5]}")
        netns_add(pod.netns)
        return pod

    def plugin_path(self, plugin_type: str) -> str:
        for directory in self.cni_path.split(":"):
            candidate = Path(directory) / plugin_type
            if candidate.exists():
                return str(candidate)
        raise AssertionError(f"plugin {plugin_type} not in {self.cni_path}")

    def env(self, command: str, pod: Pod) -> dict[str, str]:
        return {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": pod.container_id,
            "CNI_NETNS": pod.netns_path,
            "CNI_IFNAME": pod.ifname,
            "CNI_PATH": self.cni_path,
            "CNI_ARGS": pod.cni_args,
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        }

    async def exec_plugin(
        self,
        plugin_type: str,
        env: Mapping[str, str],
        stdin: bytes,
    ) -> PluginRun:
        """Run one plugin binary inside the node namespace, as the runtime on the node would."""
        process = await asyncio.create_subprocess_exec(
            "nsenter",
            f"--net=/var/run/netns/{self.netns}",
            self.plugin_path(plugin_type),
            env=dict(env),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate(stdin)
        assert process.returncode is not None
        run = PluginRun(plugin_type, process.returncode, out.decode(), err.decode())
        with self.plugin_log.open("a") as log:
            log.write(f"--- {plugin_type} {env.get('CNI_COMMAND')} -> {run.code}\n")
            log.write(run.stdout + "\n" + run.stderr + "\n")
        return run

    async def run_chain(
        self,
        command: str,
        pod: Pod,
        conflist: Mapping[str, Any] | None = None,
        *,
        prev_result: Mapping[str, Any] | None = None,
    ) -> list[PluginRun]:
        """ADD: every plugin in order, each given the previous result; DEL and CHECK: in
        reverse / in order, each given the ADD result. Stops at the first failure."""
        document = dict(conflist if conflist is not None else self.conflist())
        plugins: Sequence[Mapping[str, Any]] = document["plugins"]
        order = list(reversed(plugins)) if command == "DEL" else list(plugins)
        runs: list[PluginRun] = []
        previous = prev_result if command != "ADD" else None
        for plugin in order:
            config = {
                **plugin,
                "name": document["name"],
                "cniVersion": document["cniVersion"],
            }
            if previous is not None:
                config["prevResult"] = previous
            run = await self.exec_plugin(
                str(plugin["type"]), self.env(command, pod), json.dumps(config).encode()
            )
            runs.append(run)
            if run.code != 0:
                break
            if command == "ADD":
                previous = run.document
        if command == "ADD" and runs and runs[-1].code == 0:
            pod.result = runs[-1].document
        return runs

    async def add_main_only(self, pod: Pod) -> dict[str, Any]:
        """Run only the main plugin (bridge): the pod as it is when our plugin is called."""
        main = json.loads((self.conf_dir / MAIN_CONFLIST).read_text())
        runs = await self.run_chain("ADD", pod, main)
        assert runs[-1].code == 0, runs[-1].stdout + runs[-1].stderr
        return pod.result or {}

    async def delete_pod(self, pod: Pod) -> None:
        """DEL through the chain (best effort), then the namespace."""
        with contextlib.suppress(Exception):
            if pod.result is not None:
                await self.run_chain("DEL", pod, prev_result=pod.result)
        netns_delete(pod.netns)


# --- What a pod namespace and the machine hold -------------------------------------------------


def netns_snapshot(netns: str) -> dict[str, Any]:
    """Links, IPv4 routes in every table, rules and nftables tables of a namespace."""
    links = json.loads(in_netns(netns, "ip", "-j", "link", "show"))
    routes = json.loads(in_netns(netns, "ip", "-4", "-j", "route", "show", "table", "all"))
    rules = json.loads(in_netns(netns, "ip", "-4", "-j", "rule", "show"))
    tables = in_netns(netns, "nft", "list", "tables").split()
    return {
        "links": sorted(link["ifname"] for link in links),
        "routes": sorted(json.dumps(route, sort_keys=True) for route in routes),
        "rules": sorted(json.dumps(rule, sort_keys=True) for rule in rules),
        "nft": tables,
    }


def daemon_processes(name: str) -> list[int]:
    """PIDs of wireguard-go processes started for interface `name`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"wireguard-go") and name.encode() in argv:
            found.append(int(entry.name))
    return found


def route_get(netns: str, destination: str, *, mark: int | None = None) -> dict[str, Any]:
    argv = ["ip", "-j", "route", "get", destination]
    if mark is not None:
        argv += ["mark", str(mark)]
    parsed: list[dict[str, Any]] = json.loads(in_netns(netns, *argv))
    return parsed[0]


def sgc_object(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": PE_API,
        "kind": SGC_KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"gatewayNodepoolName": "gwpool", **spec},
    }


def pod_object(namespace: str, name: str, gateway: str | None) -> dict[str, Any]:
    annotations = {} if gateway is None else {kube_names.POD_GATEWAY_ANNOTATION: gateway}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": {
            # Never scheduled: no scheduler has this name, so the pod stays as the test made it.
            "schedulerName": "egressgw-test-unscheduled",
            "automountServiceAccountToken": False,
            "containers": [{"name": "app", "image": "registry.invalid/app:1"}],
        },
    }


# --- tests/fixtures/cluster.py's KubeObjects hands back a failed call's Status instead of raising
# (the dynamic client does not raise on 4xx here): these read it as absent or failed.


def present(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    if obj is None or obj.get("kind") == "Status":
        return None
    return obj


def succeeded(obj: dict[str, Any]) -> dict[str, Any]:
    if obj.get("kind") == "Status" and obj.get("status") != "Success":
        raise AssertionError(f"API call failed: {obj.get('message')}")
    return obj
