"""Which processes belong to a dev stack, so that `dev down` and the next `dev up` stop every one
of them, whoever started it, and never another.

Two sources, both checked when a process is about to be signalled:

- `processes.json` in the state dir: every process the stack starts, restarts included, recorded
  as it starts with its PID, boot and start time (a recycled PID has another start time);
- the process table: a stack program (the control plane, Temporal, Jaeger, `python -m egressgw
  controller|agent|cni-manager`, `python -m sim.node_runtime`, the node network's echo service
  `python -m sim.fabric.echo`) whose command line names a file of this state dir: what a person
  started again by hand, or what a killed `dev up` started before it could record it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from egressgw.dev.layout import write_json_atomic

# Stopped in this order: the controller first (it would spend its shutdown retrying a vanished
# Temporal), the node runtimes (they stop their pods), the node processes, then the servers
# they talk to, the API server before etcd.
STOP_ORDER: Final = (
    "controller",
    "node-runtime",
    "cni-manager",
    "agent",
    "echo",
    "temporal",
    "jaeger",
    "kube-scheduler",
    "kube-controller-manager",
    "kube-apiserver",
    "etcd",
)
_BINARIES: Final = {
    "temporal": "temporal",
    "etcd": "etcd",
    "kube-apiserver": "kube-apiserver",
    "kube-controller-manager": "kube-controller-manager",
    "kube-scheduler": "kube-scheduler",
}
_EGRESSGW_COMMANDS: Final = {
    "controller": "controller",
    "agent": "agent",
    "cni-manager": "cni-manager",
}
STOP_TIMEOUT: Final = 15.0


@dataclass(frozen=True)
class ProcessRecord:
    name: str  # "<kind>" or "<kind>/<node>", kind one of STOP_ORDER
    pid: int
    started: str  # "<boot id>:<start time in clock ticks since boot>"

    @property
    def kind(self) -> str:
        return self.name.split("/", 1)[0]


def process_kind(argv: Sequence[str], root: str) -> str | None:
    """The stack part `argv` runs when it names a file under `root` (an absolute state dir),
    else None. `egressgw dev ...` (the supervisor, `dev down`) is no part."""
    if not any(_names_path(arg, root) for arg in argv[1:]):
        return None
    program = Path(argv[0]).name if argv else ""
    if program.startswith("jaeger"):
        return "jaeger"
    if program in _BINARIES:
        return _BINARIES[program]
    if "-m" not in argv:
        return None
    module_at = argv.index("-m") + 1
    module = argv[module_at] if module_at < len(argv) else ""
    if module == "sim.node_runtime":
        return "node-runtime"
    if module == "sim.fabric.echo":
        return "echo"  # the node network's "internet" service
    if module == "egressgw" and module_at + 1 < len(argv):
        return _EGRESSGW_COMMANDS.get(argv[module_at + 1])
    return None


def _names_path(arg: str, root: str) -> bool:
    """`arg` is `root`, or a path under it, also after a `--flag=` or `file:` prefix."""
    for start in (0, arg.find("=") + 1, arg.find(":") + 1):
        tail = arg[start:]
        if tail == root or tail.startswith(root + "/"):
            return True
    return False


def start_identity(pid: int) -> str | None:
    """Boot id and start time of a running process; None when it is gone (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    # Fields after the command name, which may hold spaces and parentheses itself.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return f"{boot}:{fields[19]}"


class ProcessRecords:
    """`processes.json`: the last process started under each name."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, name: str, pid: int) -> None:
        started = start_identity(pid)
        if started is None:
            return  # exited already: nothing to stop later
        document = self._read()
        document[name] = {"pid": pid, "started": started}
        write_json_atomic(self.path, document)

    def records(self) -> list[ProcessRecord]:
        out = []
        for name, entry in self._read().items():
            with contextlib.suppress(KeyError, TypeError, ValueError):
                out.append(ProcessRecord(name, int(str(entry["pid"])), str(entry["started"])))
        return out

    def _read(self) -> dict[str, dict[str, object]]:
        try:
            document = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return document if isinstance(document, dict) else {}


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def _table_processes(root: str) -> list[ProcessRecord]:
    """Stack programs naming the state dir, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        kind = process_kind(_cmdline(pid), root)
        started = start_identity(pid) if kind is not None else None
        if kind is not None and started is not None:
            found.append(ProcessRecord(kind, pid, started))
    return found


def running_parts(state_root: Path, records: ProcessRecords) -> list[ProcessRecord]:
    """Every process of this stack still running, in stop order (without this process)."""
    by_pid: dict[int, ProcessRecord] = {}
    for record in records.records():
        if record.pid != os.getpid() and start_identity(record.pid) == record.started:
            by_pid[record.pid] = record
    for record in _table_processes(str(state_root.resolve())):
        if record.pid != os.getpid():
            by_pid.setdefault(record.pid, record)
    return sorted(by_pid.values(), key=lambda r: (_order(r.kind), r.name))


def _order(kind: str) -> int:
    return STOP_ORDER.index(kind) if kind in STOP_ORDER else len(STOP_ORDER)


def stop_parts(parts: Iterable[ProcessRecord], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM kind by kind in STOP_ORDER, each kind's processes together; SIGKILL what has not
    exited after `timeout`. A process is signalled only while its start time is the recorded
    one."""
    by_kind: dict[str, list[ProcessRecord]] = {}
    for part in parts:
        by_kind.setdefault(part.kind, []).append(part)
    for kind in sorted(by_kind, key=_order):
        group = by_kind[kind]
        _signal(group, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(group) and time.monotonic() < deadline:
            time.sleep(0.05)
        _signal(_alive(group), signal.SIGKILL)


def _alive(group: Iterable[ProcessRecord]) -> list[ProcessRecord]:
    return [part for part in group if start_identity(part.pid) == part.started]


def _signal(group: Iterable[ProcessRecord], signum: signal.Signals) -> None:
    for part in _alive(group):
        with contextlib.suppress(ProcessLookupError):
            os.kill(part.pid, signum)


def describe_parts(parts: Iterable[ProcessRecord]) -> str:
    return ", ".join(f"{part.name} (pid {part.pid})" for part in parts)
