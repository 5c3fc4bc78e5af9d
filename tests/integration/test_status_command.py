"""`egressgw status` on the real stack (an `egressgw controller` process, its Temporal server, the
ARM emulator, the session's API server): a Ready and a Degraded configuration with their egress
IP, nodes, error and Web UI link, as a table and as JSON; what it still tells with the
controller stopped, for an object no controller has seen, and with Temporal unreachable."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contracts import kube_names, resource_names
from sim.ports import free_port
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller_stack import ControllerStack
from tests.fixtures.sgc_status import condition
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow

UI = "http://ui.example:8080"


async def status(
    cluster: Cluster, stack: ControllerStack, tmp_path: Path, *args: str, address: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "EGRESSGW_UI_URL", "KUBECONFIG")
    }
    command = [sys.executable, "-m", "egressgw", "status", "-n", stack.namespace]
    command += ["--kubeconfig", str(cluster.admin_kubeconfig), "--ui-url", UI]
    command += ["--temporal-address", address or stack.temporal.address]
    # No dev stack there: its endpoints.json must not supply defaults.
    command += ["--state-dir", str(tmp_path / "no-dev-stack"), *args]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, env=env, timeout=120, check=False
    )


def items(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in json.loads(done.stdout)["items"]}


def url(stack: ControllerStack, name: str) -> str:
    workflow_id = resource_names.gateway_config_workflow_id(stack.namespace, name)
    return f"{UI}/namespaces/default/workflows/{workflow_id.replace('/', '%2F')}"


async def degraded(stack: ControllerStack, name: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def check() -> bool:
        obj = await stack.get_sgc(name)
        seen["obj"] = obj
        conditions = ((obj or {}).get("status") or {}).get("conditions") or []
        return any(c["type"] == "Degraded" and c["status"] == "True" for c in conditions)

    await wait_for(check, 60, f"{name} to become Degraded")
    return dict(seen["obj"])


async def report_gateway(stack: ControllerStack, node: str, sgc: str) -> None:
    """What a node's agent writes once the configuration's gateway is ready on it."""
    await stack.custom.create_namespaced_custom_object(
        kube_names.API_GROUP,
        kube_names.API_VERSION,
        stack.namespace,
        kube_names.GATEWAY_STATUS_PLURAL,
        {
            "apiVersion": kube_names.GROUP_VERSION,
            "kind": kube_names.GATEWAY_STATUS_KIND,
            "metadata": {"name": node},
            "spec": {
                "readyGatewayConfigurations": [
                    {
                        "staticGatewayConfiguration": f"{stack.namespace}/{sgc}",
                        "interfaceName": "wg-6000",
                    }
                ]
            },
        },
    )


async def test_status_shows_each_configuration_with_its_workflow(
    controller_stack: ControllerStack, kube_cluster: Cluster, tmp_path: Path
) -> None:
    stack = controller_stack
    await stack.start_controller()
    await stack.create_sgc("ready-one")
    missing = stack.vmss_spec()
    missing["gatewayVmssProfile"]["vmssName"] = "no-such-vmss"
    await stack.create_sgc("no-vmss", missing)
    ready = await stack.wait_ready("ready-one")
    broken = await degraded(stack, "no-vmss")
    node = stack.topology.vmss_pools[0].computer_name(0)
    await report_gateway(stack, node, "ready-one")

    as_json = await status(kube_cluster, stack, tmp_path, "-o", "json")
    as_table = await status(kube_cluster, stack, tmp_path)

    assert as_json.returncode == 0, as_json.stderr
    shown = items(as_json)
    assert list(shown) == ["no-vmss", "ready-one"]  # sorted, as kubectl lists
    good = shown["ready-one"]
    assert good["uid"] == ready["metadata"]["uid"]
    assert (good["phase"], good["lastError"]) == ("Ready", "")
    assert good["egressIp"] == ready["status"]["egressIpPrefix"]
    assert good["nodes"] == {"configured": [node], "total": 2, "problems": []}
    assert good["workflow"] == {
        "id": resource_names.gateway_config_workflow_id(stack.namespace, "ready-one"),
        "status": "Running",
        "url": url(stack, "ready-one"),
    }
    bad = shown["no-vmss"]
    assert bad["phase"] == "Degraded"
    assert "no-such-vmss not found" in bad["lastError"]
    assert bad["lastError"] == condition(broken, "Degraded")["message"]
    assert (bad["egressIp"], bad["nodes"]["configured"]) == ("", [])

    assert as_table.returncode == 0, as_table.stderr
    header, *rows = as_table.stdout.splitlines()
    assert header.split() == [
        "NAMESPACE",
        "NAME",
        "PHASE",
        "EGRESS-IP",
        "NODES",
        "LAST-ERROR",
        "WORKFLOW-URL",
    ]
    ready_row = next(r for r in rows if " ready-one " in r)
    assert ready_row.split() == [
        stack.namespace,
        "ready-one",
        "Ready",
        good["egressIp"],
        "1/2",
        "-",
        url(stack, "ready-one"),
    ]
    bad_row = next(r for r in rows if " no-vmss " in r)
    assert "Degraded" in bad_row and "no-such-vmss" in bad_row
    assert bad_row.endswith(url(stack, "no-vmss"))


async def test_status_without_a_controller_or_temporal_still_shows_what_it_can(
    controller_stack: ControllerStack, kube_cluster: Cluster, tmp_path: Path
) -> None:
    stack = controller_stack
    controller = await stack.start_controller()
    await stack.create_sgc("seen")
    await stack.wait_ready("seen")
    assert await controller.stop() == 0
    await stack.create_sgc("unseen")

    stopped = await status(kube_cluster, stack, tmp_path, "-o", "json", "--query-timeout", "2s")
    unreachable = await status(
        kube_cluster, stack, tmp_path, "-o", "json", address=f"127.0.0.1:{free_port()}"
    )

    assert stopped.returncode == 0, stopped.stderr
    shown = items(stopped)
    # The phase is the workflow's search attribute; the pool's nodes only a worker could say.
    assert (shown["seen"]["phase"], shown["seen"]["nodes"]["total"]) == ("Ready", None)
    assert shown["seen"]["workflow"]["status"] == "Running"
    assert shown["unseen"]["phase"] == "NoWorkflow"
    assert "no controller has picked this configuration up" in shown["unseen"]["lastError"]

    assert unreachable.returncode == 1
    assert "not reachable" in unreachable.stderr
    for item in items(unreachable).values():
        assert item["phase"] == "Unknown"
        assert item["lastError"].startswith("cannot read the workflow: Temporal at")
