"""`egressgw plan` and `egressgw status` as a newcomer meets them on `egressgw dev up`: the sample's
plan, `kubectl apply`, then status with nothing but the state directory (Temporal and the Web UI
come from its endpoints.json) showing the configuration Ready with both gateway nodes reporting
it, and a second plan with nothing left to do."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from contracts import resource_names
from tests.fixtures.dev_stack import DevStackRun

pytestmark = [pytest.mark.slow, pytest.mark.needs_root, pytest.mark.kubectl]

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "samples" / "sgc-public.yaml"


def egressgw(run: DevStackRun, *args: str) -> subprocess.CompletedProcess[str]:
    env_free = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(run.state_dir)}
    return subprocess.run(
        [sys.executable, "-m", "egressgw", *args],
        capture_output=True,
        text=True,
        env={**env_free, "KUBECONFIG": str(run.kubeconfig)},
        timeout=120,
        check=False,
    )


def plan(run: DevStackRun) -> subprocess.CompletedProcess[str]:
    return egressgw(
        run,
        "plan",
        "-f",
        str(SAMPLE),
        "--cloud-config",
        str(run.state_dir / "azure.json"),
        "--azure-ca-file",
        str(run.state_dir / "ca.pem"),
    )


def test_plan_apply_status_on_the_dev_stack(
    dev_stack_with_nodes: DevStackRun, kubectl_path: Path
) -> None:
    run = dev_stack_with_nodes
    sample = yaml.safe_load(SAMPLE.read_text())
    name, namespace = sample["metadata"]["name"], sample["metadata"]["namespace"]
    endpoints = run.endpoints()

    first = plan(run)

    assert first.returncode == 0, first.stdout + first.stderr
    assert f"StaticGatewayConfiguration {namespace}/{name} (new;" in first.stdout
    assert "    + public IP prefix egressgateway-<uid>" in first.stdout
    assert "Plan: 4 to create," in first.stdout  # prefix, load balancer, two node gateways

    applied = subprocess.run(
        [str(kubectl_path), "--kubeconfig", str(run.kubeconfig), "apply", "-f", str(SAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    deadline = time.monotonic() + 90
    while True:
        done = egressgw(run, "status", "--state-dir", str(run.state_dir), "-o", "json")
        assert done.returncode == 0, done.stderr
        (item,) = json.loads(done.stdout)["items"]
        if item["phase"] == "Ready" and len(item["nodes"]["configured"]) == 2:
            break
        assert time.monotonic() < deadline, f"{item}\n{run.logs()}"
        time.sleep(1)

    workflow_id = resource_names.gateway_config_workflow_id(namespace, name)
    assert item["nodes"]["total"] == 2 and item["egressIp"].endswith("/31")
    # The stack runs --headless: no Web UI, so no link (not docker-compose's UI address).
    assert endpoints["temporal_ui_url"] is None and item["workflow"]["url"] is None
    table = egressgw(run, "status", "--state-dir", str(run.state_dir))
    row = next(line.split() for line in table.stdout.splitlines() if f" {name} " in line)
    assert row[:3] == [namespace, name, "Ready"] and row[4] == "2/2" and row[-1] == "-"
    ui = "http://127.0.0.1:18233"
    linked = egressgw(
        run, "status", "--state-dir", str(run.state_dir), "--ui-url", ui, "-o", "json"
    )
    (item,) = json.loads(linked.stdout)["items"]
    assert item["workflow"]["url"] == (
        f"{ui}/namespaces/default/workflows/{quote(workflow_id, safe='')}"
    )

    again = plan(run)
    assert again.returncode == 0, again.stderr
    assert "no changes: Azure and the nodes already match" in again.stdout
    assert again.stdout.rstrip().endswith("Plan: 0 to create, 0 to update, 0 to delete.")
