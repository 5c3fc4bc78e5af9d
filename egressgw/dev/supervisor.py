"""Running the dev stack in the foreground, detaching it, and stopping it by PID.

Kept free of heavy imports: `dev up --detach` and `dev down` only spawn and signal processes, and
their speed is part of what a newcomer notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from egressgw.dev.layout import LOCALHOST, DevOptions, DevStackError, StatePaths, write_json_atomic
from egressgw.dev.process_records import (
    ProcessRecords,
    describe_parts,
    running_parts,
    start_identity,
    stop_parts,
)


def _network_lines(document: dict[str, Any]) -> list[str]:
    """The agents and node network, from network.json (written just before the endpoints)."""
    path = Path(document.get("network") or "")
    try:
        network = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    agents: dict[str, dict[str, Any]] = network.get("agents") or {}
    pids = ", ".join(str(info.get("pid")) for info in agents.values())
    logs = {str(Path(str(info.get("log"))).parent) for info in agents.values()}
    lines = [f"  gateway agents  {len(agents)} (pids {pids}), logs {' '.join(logs)}/agent-*.log"]
    managers: dict[str, dict[str, Any]] = network.get("cni_managers") or {}
    if managers:
        manager_pids = ", ".join(str(info.get("pid")) for info in managers.values())
        lines.append(
            f"  CNI managers    {len(managers)} (pids {manager_pids}), one per regular node, "
            f"logs {' '.join(logs)}/cni-manager-*.log"
        )
    if not network.get("built"):
        lines.append(
            f"  node network    not built ({network.get('reason')}): agents record what they "
            f"would do in {path.parent.resolve()}/agents/<node>.jsonl"
        )
        return lines
    nodes = " ".join(node["netns"] for node in network.get("nodes", []))
    echo = network["echo"]
    lines += [
        f"  node network    router {network['router_netns']}, nodes {nodes}",
        f"  internet echo   {echo['ip']}:{echo['port']} in {network['internet_netns']}, "
        f"records {echo['records']}",
        f"  network layout  {path}",
    ]
    return lines


def _trace_lines(document: dict[str, Any]) -> list[str]:
    """With --traces: where Jaeger listens and how to see a configuration's trace."""
    query = document.get("jaeger_query_url")
    if not query:
        return []
    return [
        f"  traces          Jaeger (pid {document.get('jaeger_pid')}), OTLP "
        f"{document.get('otlp_http_endpoint')}, query API {query}/api/traces",
        f"                  trace page {query}/?config=NAMESPACE/NAME",
        "                  print one: egressgw dev trace NAMESPACE/NAME",
    ]


def describe(document: dict[str, Any], state_dir: Path) -> str:
    ports = document["ports"]
    return "\n".join(
        [
            "egressgw dev stack is ready",
            f"  Temporal        {document['temporal_address']}  (namespace default)",
            *(
                [f"  Temporal Web UI {document['temporal_ui_url']}"]
                if document.get("temporal_ui_url")
                else []
            ),
            f"  Temporal HTTP   {LOCALHOST}:{ports['temporal_http']}  "
            f"metrics {LOCALHOST}:{ports['temporal_metrics']}",
            f"  Kubernetes API  {document['kube_api_url']}",
            f"  Azure ARM       {document['arm_url']}",
            *(
                [
                    f"  controller      pid {document.get('controller_pid')}, "
                    f"log {document.get('controller_log')}"
                ]
                if document.get("egressgw", True)
                else [
                    "  egressgw        not started (--no-egressgw); values for the Helm chart: "
                    f"egressgw dev chart-values --state-dir {state_dir}"
                ]
            ),
            *(
                [
                    f"  from the nodes  Kubernetes {from_nodes['kube_api_url']}, Temporal "
                    f"{from_nodes['temporal_address']}, ARM {from_nodes['arm_url']}"
                ]
                if (from_nodes := document.get("from_nodes"))
                else []
            ),
            *_network_lines(document),
            *_trace_lines(document),
            f"  state dir       {state_dir.resolve()}",
            f"  try:  kubectl --kubeconfig {document['kubeconfig']} get nodes",
            f"        kubectl --kubeconfig {document['kubeconfig']} apply -f "
            "deploy/samples/sgc-public.yaml",
            *(
                [
                    f"        kubectl --kubeconfig {document['kubeconfig']} apply -f "
                    "deploy/samples/pod-egress.yaml"
                ]
                if document.get("cni_manager_pids")
                else []
            ),
        ]
    )


def _already_running(paths: StatePaths) -> DevStackError | None:
    running = _running_pid(paths)
    if running is None:
        return None
    return DevStackError(
        f"a dev stack is already running from {paths.root} (pid {running}); "
        f"stop it with: egressgw dev down --state-dir {paths.root}"
    )


async def run_foreground(options: DevOptions, out: TextIO) -> int:
    """Start, print where everything is, and run until SIGINT/SIGTERM."""
    from egressgw.dev.stack import DevStack

    paths = StatePaths(options.state_dir)
    paths.root.mkdir(parents=True, exist_ok=True)
    error = _already_running(paths)
    if error is not None:
        raise error
    # The PID and its start: a recycled PID (another state dir's `dev up`, say) is not ours.
    paths.pid_file.write_text(f"{os.getpid()}\n{start_identity(os.getpid())}\n")

    def progress(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=out, flush=True)

    stopped = stop_leftovers(paths, network=False)
    if stopped:
        progress(f"a previous dev up was killed; stopped what it left running: {stopped}")

    from egressgw.agent_process import isolate_forked_children

    isolate_forked_children()  # the node network is built with pyroute2, which forks
    stack = DevStack(options, progress=progress)
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_requested.set)
    try:
        document = await stack.start()
        print(describe(document, paths.root), file=out, flush=True)
        print("press Ctrl-C to stop", file=out, flush=True)
        # Meanwhile the stack's restarter starts again whatever exits (egressgw/dev/restarts.py).
        await stop_requested.wait()
        progress("stopping")
        await stack.stop()
        progress(f"stopped; state kept in {paths.root.resolve()}")
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        with contextlib.suppress(OSError, ValueError):
            _mark_stopped(paths)
        with contextlib.suppress(OSError):
            if paths.pid_file.read_text().split()[:1] == [str(os.getpid())]:
                paths.pid_file.unlink()


def _mark_stopped(paths: StatePaths) -> None:
    # endpoints.json stays (it documents the layout) but no longer names a live process.
    data = json.loads(paths.endpoints.read_text())
    if data.get("pid") != os.getpid():
        return
    data["pid"] = None
    data["temporal_pid"] = None
    data["controller_pid"] = None
    data["agent_pids"] = {}
    data["kube_pids"] = {}
    data["node_runtime_pids"] = {}
    data["cni_manager_pids"] = {}
    if "jaeger_pid" in data:
        data["jaeger_pid"] = None
    write_json_atomic(paths.endpoints, data)


def _running_pid(paths: StatePaths) -> int | None:
    try:
        fields = paths.pid_file.read_text().split()
        pid = int(fields[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid == os.getpid() or not _alive(pid):
        return None
    if len(fields) > 1 and start_identity(pid) != fields[1]:
        return None  # the PID names another process now
    return pid if _cmdline_has(pid, b"dev", b"up") else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline_has(pid: int, *words: bytes) -> bool:
    """A recycled PID must not be mistaken for one of ours."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return all(word in cmdline for word in words)


def start_detached(options: DevOptions, out: TextIO, timeout: float = 180.0) -> int:
    """Start the supervisor in the background and return once it has written its endpoints."""
    paths = StatePaths(options.state_dir)
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.logs.mkdir(exist_ok=True)
    error = _already_running(paths)
    if error is not None:
        raise error
    stopped = stop_leftovers(paths, network=False)
    if stopped:
        print(
            f"a previous dev up was killed; stopped what it left running: {stopped}",
            file=out,
            flush=True,
        )
    # A first start builds the Kubernetes binaries (minutes, with progress): here, in the
    # foreground, not behind the background process's ready timeout.
    from sim.control_plane.binaries import BinariesError, kube_binaries

    try:
        kube_binaries()
    except BinariesError as err:
        raise DevStackError(str(err)) from err
    if options.traces:
        from sim.jaeger.server import JaegerError, jaeger_binary

        try:
            jaeger_binary()
        except JaegerError as err:
            raise DevStackError(str(err)) from err
    cmd = [sys.executable, "-m", "egressgw", "dev", "up", "--state-dir", str(paths.root)]
    if options.port_base is not None:
        cmd += ["--port-base", str(options.port_base)]
    if not options.ui:
        cmd.append("--headless")
    cmd += ["--network", options.network, "--net-prefix", options.net_prefix]
    if options.traces:
        cmd.append("--traces")
    if not options.egressgw:
        cmd.append("--no-egressgw")
    log_path = paths.logs / "dev.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        child = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in this terminal must not reach the stack
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise DevStackError(
                f"the dev stack failed to start (exit code {child.returncode}); "
                f"{log_path} says:\n{_read_from(log_path, offset)}"
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


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def stop_detached(state_dir: Path, out: TextIO, timeout: float = 30.0) -> int:
    """Stop the supervisor, then whatever of the stack still runs, whoever started it."""
    paths = StatePaths(state_dir)
    pid = _running_pid(paths)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            raise DevStackError(f"the dev stack (pid {pid}) did not stop within {timeout:.0f}s")
    stopped = stop_leftovers(paths)
    if pid is not None:
        print(f"stopped the dev stack (pid {pid}); state kept in {paths.root}", file=out)
        if stopped:
            print(f"also stopped processes it did not own: {stopped}", file=out)
    elif stopped:
        print(
            f"no dev stack is running from {paths.root}; stopped what a killed one left "
            f"running: {stopped}",
            file=out,
        )
    else:
        print(f"no dev stack is running from {paths.root}", file=out)
    return 0


def stop_leftovers(paths: StatePaths, *, network: bool = True) -> str:
    """Stop every process of the stack that no running supervisor owns: those a killed
    supervisor left, those restarted by hand (egressgw/dev/process_records.py); then with
    `network`, when one was built, the node network (with the pods' wireguard-go daemons; `dev
    up` leaves that to the network's build, which removes what an earlier run left). Returns
    what it stopped, "" for nothing."""
    parts = running_parts(paths.root, ProcessRecords(paths.process_records))
    stop_parts(parts)
    if not network:
        return describe_parts(parts)
    try:
        document = json.loads(paths.endpoints.read_text())
    except (OSError, ValueError):
        document = {}
    if document.get("network_built"):
        with contextlib.suppress(OSError, ValueError):
            built = json.loads(paths.network_file.read_text())
            from egressgw.dev.node_network import teardown_leftover_network

            teardown_leftover_network(built, paths.network_state, paths.nodes_dir)
            built["built"] = False
            built["reason"] = "removed by dev down"
            write_json_atomic(paths.network_file, built)
    return describe_parts(parts)
