"""Which processes `dev down` and a `dev up` after a killed one stop: those of the state dir,
never another (egressgw/dev/process_records.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from egressgw.dev.process_records import (
    ProcessRecords,
    process_kind,
    running_parts,
    start_identity,
    stop_parts,
)

ROOT = "/tmp/egw-state"
PY = "/venv/bin/python"


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (
            [PY, "-m", "egressgw", "controller", "--kubeconfig", f"{ROOT}/kube/c.kubeconfig"],
            "controller",
        ),
        ([PY, "-m", "egressgw", "agent", "--kubeconfig", f"{ROOT}/kube/a.kubeconfig"], "agent"),
        (
            [PY, "-m", "egressgw", "cni-manager", "--cni-conf-dir", f"{ROOT}/nodes/n/cni"],
            "cni-manager",
        ),
        (
            [PY, "-m", "sim.node_runtime", "--kubeconfig", f"{ROOT}/nodes/n/kubeconfig"],
            "node-runtime",
        ),
        (["/x/bin/etcd", f"--data-dir={ROOT}/kube/etcd"], "etcd"),
        (["/x/bin/kube-apiserver", f"--cert-dir={ROOT}/kube/pki"], "kube-apiserver"),
        (
            ["/v/bin/temporal", "server", "start-dev", "--db-filename", f"{ROOT}/temporal.db"],
            "temporal",
        ),
        (
            [PY, "-m", "sim.fabric.echo", "--records", f"{ROOT}/network/e.jsonl"],
            "echo",
        ),
        (["/c/jaeger", "--config", f"file:{ROOT}/traces/jaeger.yaml"], "jaeger"),
    ],
)
def test_a_stack_program_naming_the_state_dir_is_a_part(argv: list[str], kind: str) -> None:
    assert process_kind(argv, ROOT) == kind


@pytest.mark.parametrize(
    "argv",
    [
        # The supervisor and `dev down` themselves.
        [PY, "-m", "egressgw", "dev", "up", "--state-dir", ROOT],
        [PY, "-m", "egressgw", "dev", "down", "--state-dir", ROOT],
        # Someone reading the logs.
        ["tail", "-f", f"{ROOT}/logs/controller.log"],
        [PY, "-m", "json.tool", f"{ROOT}/endpoints.json"],
        # Another state dir, one whose name starts with this one's, one that holds it.
        [PY, "-m", "egressgw", "controller", "--kubeconfig", "/tmp/other/kube/c"],
        ["/x/bin/etcd", f"--data-dir={ROOT}2/kube/etcd"],
        ["/x/bin/etcd", f"--data-dir=/home{ROOT}/kube/etcd"],
        # A stack program that does not name it.
        ["/x/bin/etcd", "--data-dir=/var/lib/etcd"],
    ],
)
def test_anything_else_is_not(argv: list[str]) -> None:
    assert process_kind(argv, ROOT) is None


def sleeper(program: str, *args: str) -> subprocess.Popen[bytes]:
    """A process whose command line reads `program args...` (it only sleeps)."""
    return subprocess.Popen(
        [program, "-c", "import time; time.sleep(120)", *args], executable=sys.executable
    )


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:  # only what this test started, by PID
        process.kill()
        process.wait()


def wait_listed(process: subprocess.Popen[bytes]) -> None:
    """Until the child has exec'd (its command line is the one given)."""
    while b"time.sleep" not in Path(f"/proc/{process.pid}/cmdline").read_bytes():
        pass


def test_the_state_dirs_processes_are_found_and_stopped_in_order_others_are_left(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    state = tmp_path / "state"
    etcd = sleeper("etcd", f"--data-dir={state}/kube/etcd")
    # Recorded under its name: found by its record even though its command line names no file.
    controller = sleeper("python3", "-m", "egressgw", "controller")
    other = sleeper("etcd", f"--data-dir={tmp_path}/other/kube/etcd")
    started += [etcd, controller, other]
    for process in started:
        wait_listed(process)
    records = ProcessRecords(tmp_path / "processes.json")
    records.record("controller", controller.pid)

    parts = running_parts(state, records)

    assert [(p.name, p.pid) for p in parts] == [("controller", controller.pid), ("etcd", etcd.pid)]
    stop_parts(parts, timeout=10)
    assert controller.wait(10) == -15 and etcd.wait(10) == -15
    assert other.poll() is None
    assert running_parts(state, records) == []


def test_a_record_whose_pid_now_names_another_process_is_ignored(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    process = sleeper("python3")
    started.append(process)
    wait_listed(process)
    path = tmp_path / "processes.json"
    # As if recorded before a PID was recycled: same PID, another start.
    path.write_text(f'{{"controller": {{"pid": {process.pid}, "started": "x:1"}}}}')

    assert running_parts(tmp_path, ProcessRecords(path)) == []
    assert start_identity(process.pid) is not None
