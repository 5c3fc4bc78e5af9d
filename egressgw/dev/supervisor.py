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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from egressgw.dev.layout import LOCALHOST, DevOptions, DevStackError, StatePaths, write_json_atomic

if TYPE_CHECKING:
    from egressgw.dev.stack import DevStack


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
            f"  controller      pid {document.get('controller_pid')}, "
            f"log {document.get('controller_log')}",
            f"  state dir       {state_dir.resolve()}",
            f"  try:  kubectl --kubeconfig {document['kubeconfig']} get nodes",
            f"        kubectl --kubeconfig {document['kubeconfig']} apply -f "
            "deploy/samples/sgc-public.yaml",
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
    paths.pid_file.write_text(f"{os.getpid()}\n")

    def progress(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=out, flush=True)

    stack = DevStack(options, progress=progress)
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_requested.set)
    try:
        document = await stack.start()
        print(describe(document, paths.root), file=out, flush=True)
        print("press Ctrl-C to stop", file=out, flush=True)
        watching = asyncio.create_task(_report_controller_exit(stack, document, progress))
        await stop_requested.wait()
        watching.cancel()
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
            if paths.pid_file.read_text().strip() == str(os.getpid()):
                paths.pid_file.unlink()


async def _report_controller_exit(
    stack: DevStack, document: dict[str, Any], progress: Callable[[str], None]
) -> None:
    """Say so when the controller dies on its own: the rest of the stack keeps serving, but
    configurations would silently stop reconciling."""
    process = stack.controller
    if process is not None:
        # A thread blocked in wait(): it returns at the latest when the stack stops the process.
        await asyncio.to_thread(process.wait)
        progress(
            f"the controller exited with code {process.returncode}; "
            f"see {document.get('controller_log')}"
        )


def _mark_stopped(paths: StatePaths) -> None:
    # endpoints.json stays (it documents the layout) but no longer names a live process.
    data = json.loads(paths.endpoints.read_text())
    if data.get("pid") != os.getpid():
        return
    data["pid"] = None
    data["temporal_pid"] = None
    data["controller_pid"] = None
    write_json_atomic(paths.endpoints, data)


def _running_pid(paths: StatePaths) -> int | None:
    try:
        pid = int(paths.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if pid == os.getpid() or not _alive(pid):
        return None
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


def start_detached(options: DevOptions, out: TextIO, timeout: float = 60.0) -> int:
    """Start the supervisor in the background and return once it has written its endpoints."""
    paths = StatePaths(options.state_dir)
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.logs.mkdir(exist_ok=True)
    error = _already_running(paths)
    if error is not None:
        raise error
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
    paths = StatePaths(state_dir)
    pid = _running_pid(paths)
    if pid is None:
        print(f"no dev stack is running from {paths.root}", file=out)
        _stop_orphans(paths)
        return 0
    os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, timeout):
        raise DevStackError(f"the dev stack (pid {pid}) did not stop within {timeout:.0f}s")
    _stop_orphans(paths)
    print(f"stopped the dev stack (pid {pid}); state kept in {paths.root}", file=out)
    return 0


def _stop_orphans(paths: StatePaths) -> None:
    """A supervisor killed with SIGKILL leaves its children running: the controller (first, so it
    does not spend its shutdown retrying a vanished Temporal) and the Temporal server."""
    try:
        document = json.loads(paths.endpoints.read_text())
    except (OSError, ValueError):
        return
    for key, words in (("controller_pid", (b"controller",)), ("temporal_pid", (b"start-dev",))):
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            pid = int(document[key])
            if _alive(pid) and _cmdline_has(pid, *words):
                os.kill(pid, signal.SIGTERM)
                _wait_gone(pid, 15)
