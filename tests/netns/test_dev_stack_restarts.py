"""`egressgw dev up` as root brings back what crashes, as a kubelet would: a node runtime, a
gateway agent, a CNI manager and the scheduler killed with SIGKILL run again, their node stays
Ready, the agent answers the load balancer's probe again, the CNI manager its plugin; and `dev
down` then leaves no process of the stack and no namespace behind."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from egressgw.dev.cni_managers import manager_answers
from tests.fixtures.dev_stack import DevStackRun, dev, stack_pids
from tests.netns.test_dev_stack_nodes import alive, probe_from_router, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.needs_root]


def ready_nodes(run: DevStackRun, kubectl_path: Path) -> set[str]:
    lines = run.kubectl(
        kubectl_path,
        "get",
        "nodes",
        "--no-headers",
        "-o",
        'custom-columns=N:.metadata.name,R:.status.conditions[?(@.type=="Ready")].status',
        check=False,
    ).splitlines()
    return {line.split()[0] for line in lines if line.split()[1:] == ["True"]}


def test_killed_node_processes_come_back(
    dev_stack_with_nodes: DevStackRun, kubectl_path: Path
) -> None:
    run = dev_stack_with_nodes
    before: dict[str, Any] = run.endpoints()
    gateway = run.nodes("gateway")[0]
    regular = run.nodes("regular")[0]
    killed = {
        f"node-runtime/{gateway['name']}": before["node_runtime_pids"][gateway["name"]],
        f"agent/{gateway['name']}": before["agent_pids"][gateway["name"]],
        f"cni-manager/{regular['name']}": before["cni_manager_pids"][regular["name"]],
        "kube-scheduler": before["kube_pids"]["kube-scheduler"],
    }
    for pid in killed.values():
        os.kill(pid, signal.SIGKILL)

    def all_restarted() -> bool:
        return all(run.endpoints()["restarts"].get(name) == 1 for name in killed)

    wait_until(all_restarted, 120, "the killed processes to be started again")
    after = run.endpoints()
    again = {
        f"node-runtime/{gateway['name']}": after["node_runtime_pids"][gateway["name"]],
        f"agent/{gateway['name']}": after["agent_pids"][gateway["name"]],
        f"cni-manager/{regular['name']}": after["cni_manager_pids"][regular["name"]],
        "kube-scheduler": after["kube_pids"]["kube-scheduler"],
    }
    assert all(alive(pid) and pid != killed[name] for name, pid in again.items())
    log = (run.state_dir / "logs" / "dev.log").read_text()
    for name, pid in killed.items():
        assert f"{name} (pid {pid}) exited with signal SIGKILL" in log

    every = {node["name"] for node in run.network()["nodes"]}
    wait_until(lambda: ready_nodes(run, kubectl_path) == every, 90, "every node Ready")
    socket = Path(run.network()["cni_managers"][regular["name"]]["socket"])
    wait_until(lambda: manager_answers(socket), 60, "the CNI manager answering")
    network = run.network()
    wait_until(
        lambda: probe_from_router(network, gateway["primary_ip"], "unknown") == "503",
        90,
        "the agent's probe answering",
    )

    down = dev("down", "--state-dir", str(run.state_dir), timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert stack_pids(run.state_dir) == []
    assert run.netns_names() == []
