"""How fast pods become and stop being WireGuard peers on every gateway of their configuration
(issue 10, item 3). Needs root.

Runs the real thing: a Temporal dev server, the real Kubernetes control plane, the ARM emulator
and one `egressgw controller` process (bench/control_plane_stack.py), plus one `egressgw agent`
process per gateway node, each on a stand-in node of throwaway network namespaces with its
gateways in wireguard-go (forced, so the devices can be read through their UAPI sockets). One
configuration on a pool of two gateway nodes; once it is Ready:

  add     PodEndpoints are created at --rate per second for --seconds (each owned by a Pod made
          beforehand, as the CNI manager makes them), and for each the time from the create
          request to the first moment its public key is a peer on every gateway's device
  delete  the Pods are deleted at the same rate and the garbage collector deletes their
          PodEndpoints (--no-pods: the PodEndpoints are deleted directly, as the CNI plugin's DEL
          does); for each, the time from the delete request to the first moment its key is gone
          from every device. With Pods, the same split in two: Pod deleted -> PodEndpoint gone
          (the kube-controller-manager's garbage collector), PodEndpoint gone -> peer gone
          (egressgw), from a watch of the PodEndpoints kept by this process

"On the device" is what wireguard-go reports through its UAPI socket (`get=1`), polled every
--poll-interval by a thread of this process. Figures: p50 / p99 / max per phase, and from the
configuration workflow's histories (every run of it: it continues as new under churn) how many
signals, workflow tasks and activities each phase cost and how long the activities took.
Targets: add p99 < 1 s, delete p99 < 5 s.

    .venv/bin/python bench/peer_propagation.py [--rate N] [--seconds S] [--no-pods]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from control_plane_stack import SECRET_NAMESPACE, SGC_NAMESPACE, BenchStack, bench_stack
from kubernetes_asyncio.client import CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException
from pyroute2 import netns
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from agent import wireguard_uapi
from agent.wireguard_keys import generate_private_key, public_key_of, to_base64, to_hex
from contracts import kube_names, resource_names
from kubeclient.kube_source import KubeListWatch
from kubeclient.list_watch import list_then_watch, object_key
from sim.control_plane.service_accounts import service_account_kubeconfig

G, V = kube_names.API_GROUP, kube_names.API_VERSION
LOCAL_ACTIVITY = "core_local_activity"  # the marker name of a local activity's result
SGC_NAME = "peers"
AGENT_STOP_TIMEOUT = 30.0


# --- stand-in gateway nodes ----------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayNode:
    name: str  # the Kubernetes node name (the VMSS instance's computer name)
    host_netns: str
    gateway_netns: str
    socket_tag: str

    def socket(self, port: int) -> Path:
        return wireguard_uapi.socket_path(f"wg{self.socket_tag}{port}")


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@contextlib.contextmanager
def gateway_nodes(tag: str, names: Sequence[str]) -> Iterator[list[GatewayNode]]:
    """A host namespace per node with an `eth0` (where the agent puts the frontend IP);
    removed on exit with whatever the agents left in them."""
    nodes = [
        GatewayNode(name, f"{tag}-n{i}", f"{tag}-n{i}-gw", f"{tag}{i}")
        for i, name in enumerate(names)
    ]
    try:
        for node in nodes:
            netns.create(node.host_netns)
            # A veth pair inside the namespace (no dummy module here): eth0 only has to exist.
            sh("ip", "-n", node.host_netns, "link", "add", "eth0", "type", "veth",
               "peer", "name", "eth0p")  # fmt: skip
            for link in ("eth0", "eth0p"):
                sh("ip", "-n", node.host_netns, "link", "set", link, "up")
            sh("ip", "-n", node.host_netns, "link", "set", "lo", "up")
        yield nodes
    finally:
        for node in nodes:
            stop_daemons(node.socket_tag)
            for name in (node.gateway_netns, node.host_netns):
                if name in netns.listnetns():
                    netns.remove(name)


def stop_daemons(socket_tag: str) -> None:
    """wireguard-go daemons an agent left behind (its sockets carry the node's tag), by PID."""
    for path in sorted(wireguard_uapi.SOCKET_DIR.glob(f"wg{socket_tag}[0-9]*.sock")):
        pid = wireguard_uapi.daemon_pid(path)
        if pid is not None and Path(f"/proc/{pid}/comm").read_text().strip() == "wireguard-go":
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        path.unlink(missing_ok=True)


def start_agent(node: GatewayNode, stack: BenchStack, kubeconfig: Path) -> subprocess.Popen[bytes]:
    log = (stack.root / f"agent-{node.name}.log").open("ab")
    with log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "egressgw",
                "agent",
                "--node-name",
                node.name,
                "--temporal-address",
                stack.temporal.address,
                "--kubeconfig",
                str(kubeconfig),
                "--namespace",
                SECRET_NAMESPACE,
                "--host-netns",
                node.host_netns,
                "--gateway-netns",
                node.gateway_netns,
                "--socket-tag",
                node.socket_tag,
                "--wireguard-backend",
                "wireguard-go",
                "--probe-host",
                "0.0.0.0",
                "--probe-port",
                "0",
                "--probe-drain",
                "1s",
                "--metrics-address",
                "127.0.0.1:0",  # two agents on one host
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


async def stop_agent(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        await asyncio.to_thread(process.wait, AGENT_STOP_TIMEOUT)
    if process.poll() is None:
        process.kill()
        await asyncio.to_thread(process.wait)


# --- what the devices hold -----------------------------------------------------------------------


def device_keys(path: Path) -> set[str]:
    """Public keys (hex) of the device's peers; empty when the device is not there (yet)."""
    try:
        reply = wireguard_uapi.call(path, wireguard_uapi.get_request())
    except (FileNotFoundError, ConnectionRefusedError):
        return set()
    return {line[11:] for line in reply.splitlines() if line.startswith("public_key=")}


@dataclass
class DeviceWatch:
    """A thread that reads every gateway's peers every `interval` and notes, per key, when it
    was first seen on all devices and when it was first seen on none after `gone_after`."""

    sockets: list[Path]
    interval: float
    present_at: dict[str, float] = field(default_factory=dict)
    gone_at: dict[str, float] = field(default_factory=dict)
    watch_gone: set[str] = field(default_factory=set)
    polls: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="device watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            held = [device_keys(path) for path in self.sockets]
            now = time.monotonic()
            everywhere = set.intersection(*held) if held else set()
            anywhere = set.union(*held) if held else set()
            for key in everywhere:
                self.present_at.setdefault(key, now)
            for key in self.watch_gone - anywhere:
                self.gone_at.setdefault(key, now)
            self.polls += 1
            self._stop.wait(self.interval)


@dataclass
class EndpointWatch:
    """When each PodEndpoint (by name) was first seen and when it was seen deleted, from a
    list+watch of this process (the controller's watcher sees the same stream)."""

    added_at: dict[str, float] = field(default_factory=dict)
    deleted_at: dict[str, float] = field(default_factory=dict)

    async def run(self, stack: BenchStack) -> None:
        source = KubeListWatch(
            stack.custom.list_namespaced_custom_object,
            G,
            V,
            SGC_NAMESPACE,
            kube_names.POD_ENDPOINT_PLURAL,
        )
        async with contextlib.aclosing(list_then_watch(source)) as events:
            async for event in events:
                name = object_key(event.object).rpartition("/")[2]
                if event.type == "DELETED":
                    self.deleted_at.setdefault(name, time.monotonic())
                else:
                    self.added_at.setdefault(name, time.monotonic())


# --- the measured runs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    index: int
    name: str
    ip: str
    public_key: bytes

    @property
    def hex_key(self) -> str:
        return to_hex(self.public_key)


def make_pods(count: int, tag: str) -> list[Pod]:
    base = ipaddress.IPv4Address("10.244.0.10")
    return [
        Pod(i, f"{tag}-pod-{i}", str(base + i), public_key_of(generate_private_key()))
        for i in range(count)
    ]


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def summary(label: str, latencies: Sequence[float], expected: int) -> str:
    if not latencies:
        return f"{label}: no sample out of {expected}"
    missing = expected - len(latencies)
    return (
        f"{label}: p50 {percentile(latencies, 0.5) * 1000:7.0f} ms   "
        f"p99 {percentile(latencies, 0.99) * 1000:7.0f} ms   "
        f"max {max(latencies) * 1000:7.0f} ms   (n={len(latencies)}"
        + (f", {missing} never arrived" if missing else "")
        + ")"
    )


async def paced(count: int, rate: float, action: Any) -> list[float]:
    """Start action(i) at rate per second; the monotonic time each one was sent."""
    sent = [0.0] * count
    tasks = []
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[i] = time.monotonic()
        tasks.append(asyncio.create_task(action(i)))
    await asyncio.gather(*tasks)
    return sent


def pod_body(pod: Pod) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod.name, "namespace": SGC_NAMESPACE},
        "spec": {
            # No node runs it: the pod stays Pending (and is deleted at once when asked).
            "nodeSelector": {"egressgw.bench/nowhere": "true"},
            "containers": [{"name": "main", "image": "busybox"}],
        },
    }


def pod_endpoint_body(pod: Pod, owner_uid: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": pod.name, "namespace": SGC_NAMESPACE}
    if owner_uid is not None:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": pod.name,
                "uid": owner_uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return {
        "apiVersion": f"{G}/{V}",
        "kind": kube_names.POD_ENDPOINT_KIND,
        "metadata": metadata,
        "spec": {
            "staticGatewayConfiguration": SGC_NAME,
            "podIpAddress": f"{pod.ip}/32",
            "podPublicKey": to_base64(pod.public_key),
        },
    }


async def wait_default_service_account(core: CoreV1Api) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            await core.read_namespaced_service_account("default", SGC_NAMESPACE)
            return
        except ApiException as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)


async def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)


async def configuration_ready(stack: BenchStack) -> dict[str, Any]:
    """Create the configuration and wait until it is Ready with every node configured."""
    await stack.create_sgc(SGC_NAME, stack.vmss_spec(31))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        obj: dict[str, Any] = await stack.custom.get_namespaced_custom_object(
            G, V, SGC_NAMESPACE, kube_names.SGC_PLURAL, SGC_NAME
        )
        conditions = {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}
        ready = conditions.get("Ready", {}).get("status") == "True"
        degraded = conditions.get("Degraded", {}).get("status") == "True"
        if ready and not degraded:
            return obj
        await asyncio.sleep(0.2)
    raise TimeoutError(f"configuration not Ready with every node: {obj.get('status')}")


# --- where the time went (the configuration workflow's history) ----------------------------------


@dataclass
class ActivityTiming:
    activity_type: str
    scheduled: float
    started: float | None = None
    closed: float | None = None


def pass_timeline(timings: Sequence[ActivityTiming], since: float) -> list[str]:
    """One line per peer pass (a list, then the node calls it scheduled): when it began after
    `since`, the list's queue and work, and per node call the wait after the list (workflow
    task), queue and work, in ms."""

    def ms(start: float | None, end: float | None) -> str:
        return f"{(end - start) * 1000:5.0f}" if start is not None and end is not None else "    ?"

    lines: list[str] = []
    current: ActivityTiming | None = None
    parts: list[str] = []
    for timing in sorted(timings, key=lambda t: t.scheduled):
        if timing.activity_type.startswith("list_gateway_peers"):
            if current is not None:
                lines.append(" ".join(parts))
            current = timing
            queue, work = ms(timing.scheduled, timing.started), ms(timing.started, timing.closed)
            parts = [f"    +{(timing.scheduled - since):6.2f}s list q{queue} w{work} |"]
        elif current is not None:
            parts.append(
                f"{timing.activity_type.removeprefix('node.')} after"
                f"{ms(current.closed, timing.scheduled)} q{ms(timing.scheduled, timing.started)}"
                f" w{ms(timing.started, timing.closed)} |"
            )
    if current is not None:
        lines.append(" ".join(parts))
    return lines


async def node_pass_breakdown(
    client: Client, since: float, until: float, *, timeline: bool = False
) -> list[str]:
    """Over every run of the configuration's workflow, in [since, until] (wall-clock): signals,
    workflow tasks, runs started, and per activity type how many and the median time from
    scheduled to started (queue) and from started to completed (work)."""
    workflow_id = resource_names.gateway_config_workflow_id(SGC_NAMESPACE, SGC_NAME)
    timings: dict[tuple[str, int], ActivityTiming] = {}
    counts = {"signals": 0, "workflow tasks": 0, "runs started": 0, "history events": 0}
    async for execution in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        handle = client.get_workflow_handle(workflow_id, run_id=execution.run_id)
        history = await handle.fetch_history()
        for event in history.events:
            at = event.event_time.ToDatetime().replace(tzinfo=UTC).timestamp()
            if not since <= at <= until:
                continue
            counts["history events"] += 1
            key = (execution.run_id, event.event_id)
            match event.event_type:
                case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                    counts["runs started"] += 1
                case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                    counts["signals"] += 1
                case EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                    counts["workflow tasks"] += 1
                case EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                    name = event.activity_task_scheduled_event_attributes.activity_type.name
                    timings[key] = ActivityTiming(name, at)
                case EventType.EVENT_TYPE_MARKER_RECORDED:
                    # A local activity (the peer list): only when its result was recorded.
                    if event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY:
                        timings[key] = ActivityTiming("list_gateway_peers (local)", at, at, at)
                case EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                    scheduled = event.activity_task_started_event_attributes.scheduled_event_id
                    if (execution.run_id, scheduled) in timings:
                        timings[(execution.run_id, scheduled)].started = at
                case EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                    scheduled = event.activity_task_completed_event_attributes.scheduled_event_id
                    if (execution.run_id, scheduled) in timings:
                        timings[(execution.run_id, scheduled)].closed = at
    lines = ["    " + ", ".join(f"{name}: {count}" for name, count in counts.items())]
    by_type: dict[str, list[ActivityTiming]] = {}
    for timing in timings.values():
        by_type.setdefault(timing.activity_type, []).append(timing)
    for name, group in sorted(by_type.items()):
        queue = [t.started - t.scheduled for t in group if t.started is not None]
        work = [t.closed - t.started for t in group if t.closed and t.started is not None]
        lines.append(
            f"    {name:<28} x{len(group):<4} queue p50 "
            f"{statistics.median(queue) * 1000 if queue else 0:6.0f} ms   work p50 "
            f"{statistics.median(work) * 1000 if work else 0:6.0f} ms   work max "
            f"{max(work) * 1000 if work else 0:6.0f} ms"
        )
    if timeline:
        lines += pass_timeline(list(timings.values()), since)
    return lines


# --- main ----------------------------------------------------------------------------------------


@dataclass
class Phase:
    label: str
    latencies: list[float]
    since: float  # wall clock, for the histories
    until: float


async def run(args: argparse.Namespace) -> None:
    tag = "pp" + uuid.uuid4().hex[:3]
    count = round(args.rate * args.seconds)
    pods = make_pods(count, tag)
    flags = ("--configure-nodes", "--node-answer-timeout", "30s")
    async with bench_stack(controller_flags=flags) as stack:
        pool = stack.topology.vmss_pools[0]
        names = [pool.computer_name(i) for i in range(pool.instance_count)]
        kubeconfig = await service_account_kubeconfig(
            stack.kube, "agent", SECRET_NAMESPACE, stack.root / "agent.kubeconfig"
        )
        client = await Client.connect(stack.temporal.address)
        core = CoreV1Api(stack.api)
        endpoints = EndpointWatch()
        endpoint_watch = asyncio.create_task(endpoints.run(stack))
        with gateway_nodes(tag, names) as nodes:
            agents = [start_agent(node, stack, kubeconfig) for node in nodes]
            try:
                obj = await configuration_ready(stack)
                port = obj["status"]["gatewayServerProfile"]["port"]
                print(f"configuration Ready on {len(nodes)} gateway nodes, wg-{port}", flush=True)
                owners: dict[str, str] = {}
                if args.pods:
                    await wait_default_service_account(core)
                    semaphore = asyncio.Semaphore(20)

                    async def create_pod(pod: Pod) -> None:
                        async with semaphore:
                            created = await core.create_namespaced_pod(SGC_NAMESPACE, pod_body(pod))
                            owners[pod.name] = created.metadata.uid

                    await asyncio.gather(*(create_pod(pod) for pod in pods))
                    print(f"{count} Pods created (Pending: no node runs them)", flush=True)

                watch = DeviceWatch([node.socket(port) for node in nodes], args.poll_interval)
                watch.start()
                try:
                    phases, created_sent, deleted_sent = await measure(
                        args, stack, core, pods, owners, watch
                    )
                finally:
                    watch.stop()
            finally:
                await asyncio.gather(*(stop_agent(agent) for agent in agents))
                endpoint_watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await endpoint_watch
                if args.keep_logs:
                    await asyncio.to_thread(
                        subprocess.run, ["cp", "-r", str(stack.root), f"/tmp/{tag}-logs"]
                    )
                    print(f"logs copied to /tmp/{tag}-logs")

        print(
            f"{count} pods at {args.rate:g}/s for {args.seconds:g} s; "
            f"devices read {watch.polls} times, every {args.poll_interval * 1000:.0f} ms"
        )
        watched = [
            endpoints.added_at[pod.name] - created_sent[pod.index]
            for pod in pods
            if pod.name in endpoints.added_at
        ]
        for phase in phases:
            print(summary(phase.label, phase.latencies, count))
            if phase is phases[0]:
                # What the API server and this machine add before any of egressgw's work.
                print(summary("  of which created -> seen by a watch here", watched, count))
            breakdown = node_pass_breakdown(
                client, phase.since, phase.until, timeline=args.timeline
            )
            for line in await breakdown:
                print(line)
        if args.pods:
            gc = [
                endpoints.deleted_at[pod.name] - deleted_sent[pod.index]
                for pod in pods
                if pod.name in endpoints.deleted_at
            ]
            ours = [
                watch.gone_at[pod.hex_key] - endpoints.deleted_at[pod.name]
                for pod in pods
                if pod.name in endpoints.deleted_at and pod.hex_key in watch.gone_at
            ]
            print("  of which:")
            print(summary("  Pod deleted -> PodEndpoint deleted (garbage collector)", gc, count))
            print(summary("  PodEndpoint deleted -> peer gone from every gateway", ours, count))


async def measure(
    args: argparse.Namespace,
    stack: BenchStack,
    core: CoreV1Api,
    pods: list[Pod],
    owners: dict[str, str],
    watch: DeviceWatch,
) -> tuple[list[Phase], list[float], list[float]]:
    """The add phase, then the delete phase; and when each create and each delete request was
    sent."""
    keys = {pod.hex_key for pod in pods}

    async def create_endpoint(i: int) -> None:
        pod = pods[i]
        await stack.custom.create_namespaced_custom_object(
            G,
            V,
            SGC_NAMESPACE,
            kube_names.POD_ENDPOINT_PLURAL,
            pod_endpoint_body(pod, owners.get(pod.name)),
        )

    print(f"add: {len(pods)} PodEndpoints at {args.rate:g}/s", flush=True)
    add_start = time.time()
    sent = await paced(len(pods), args.rate, create_endpoint)
    with contextlib.suppress(TimeoutError):
        await wait_until(lambda: keys <= watch.present_at.keys(), args.timeout, "peers present")
    added = [
        watch.present_at[pod.hex_key] - sent[pod.index]
        for pod in pods
        if pod.hex_key in watch.present_at
    ]
    add = Phase("PodEndpoint created -> peer on every gateway", added, add_start, time.time())

    watch.watch_gone = set(keys)
    what = "Pod" if args.pods else "PodEndpoint"
    print(f"delete: {len(pods)} {what}s at {args.rate:g}/s", flush=True)

    async def delete(i: int) -> None:
        pod = pods[i]
        if args.pods:
            await core.delete_namespaced_pod(pod.name, SGC_NAMESPACE)
        else:
            await stack.custom.delete_namespaced_custom_object(
                G, V, SGC_NAMESPACE, kube_names.POD_ENDPOINT_PLURAL, pod.name
            )

    delete_start = time.time()
    deleted_sent = await paced(len(pods), args.rate, delete)
    with contextlib.suppress(TimeoutError):
        await wait_until(lambda: keys <= watch.gone_at.keys(), args.timeout, "peers gone")
    removed = [
        watch.gone_at[pod.hex_key] - deleted_sent[pod.index]
        for pod in pods
        if pod.hex_key in watch.gone_at
    ]
    gone = Phase(
        f"{what} deleted -> peer gone from every gateway", removed, delete_start, time.time()
    )
    return [add, gone], sent, deleted_sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="per second (default 100)")
    parser.add_argument("--seconds", type=float, default=10.0, help="burst length (default 10)")
    parser.add_argument(
        "--pods",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="PodEndpoints owned by Pods, and the Pods deleted (default); --no-pods creates and "
        "deletes bare PodEndpoints",
    )
    parser.add_argument(
        "--poll-interval", type=float, default=0.05, help="device reads, seconds (default 0.05)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="per phase, seconds")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument(
        "--timeline", action="store_true", help="one line per peer pass: where its time went"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root: network namespaces and wireguard-go")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
