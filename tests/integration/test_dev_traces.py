"""`egressgw dev up --traces`: Jaeger beside the stack, the controller's and agents' spans sent to
it, and `egressgw dev trace NAMESPACE/NAME` printing a configuration's trace; `dev down` stops
Jaeger with the rest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as kube_client
from kubernetes import config as kube_config

from contracts import kube_names
from tests.fixtures.dev_stack import dev_port_base

pytestmark = pytest.mark.slow

EGRESSGW = [sys.executable, "-m", "egressgw"]


def egressgw(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EGRESSGW, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def ready(api: kube_client.ApiClient, name: str) -> bool:
    obj: dict[str, Any] = kube_client.CustomObjectsApi(api).get_namespaced_custom_object(
        kube_names.API_GROUP,
        kube_names.API_VERSION,
        "egressgw-demo",
        "staticgatewayconfigurations",
        name,
    )
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_dev_stack_with_traces_prints_a_configurations_trace(tmp_path: Path) -> None:
    state = tmp_path / "state"
    without = egressgw("dev", "trace", "egressgw-demo/x", "--state-dir", str(state))
    assert without.returncode == 1 and "no dev stack has run" in without.stderr

    up = egressgw(
        "dev", "up", "--detach", "--headless", "--network", "off", "--traces",
        "--state-dir", str(state), "--port-base", str(dev_port_base(23000)),
        timeout=240,
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "traces          Jaeger" in up.stdout and "egressgw dev trace" in up.stdout
        endpoints = json.loads((state / "endpoints.json").read_text())
        jaeger_pid = int(endpoints["jaeger_pid"])

        api = kube_config.new_client_from_config(str(state / "kubeconfig"))
        kube_client.CustomObjectsApi(api).create_namespaced_custom_object(
            kube_names.API_GROUP,
            kube_names.API_VERSION,
            "egressgw-demo",
            "staticgatewayconfigurations",
            {
                "apiVersion": kube_names.GROUP_VERSION,
                "kind": kube_names.SGC_KIND,
                "metadata": {"name": "traced", "namespace": "egressgw-demo"},
                "spec": {
                    "gatewayVmssProfile": {
                        "vmssResourceGroup": "egressgw-dev",
                        "vmssName": "aks-gwpool-12345678-vmss",
                        "publicIpPrefixSize": 31,
                    }
                },
            },
        )
        deadline = time.monotonic() + 60
        while not ready(api, "traced"):
            assert time.monotonic() < deadline, "not Ready within 60 s"
            time.sleep(0.5)

        # The agents' spans arrive within a second of the controller's.
        printed = egressgw("dev", "trace", "egressgw-demo/traced", "--state-dir", str(state))
        deadline = time.monotonic() + 30
        while "egressgw-agent" not in printed.stdout and time.monotonic() < deadline:
            time.sleep(1)
            printed = egressgw("dev", "trace", "egressgw-demo/traced", "--state-dir", str(state))
        assert printed.returncode == 0, printed.stdout + printed.stderr
        lines = printed.stdout.splitlines()
        assert "egressgw-agent, egressgw-controller" in lines[0]
        body = "\n".join(lines[3:])
        for name in (
            "reconcile StaticGatewayConfiguration",
            "RunActivity:ensure_gateway_key",
            "ARM PUT Microsoft.Network/loadBalancers",
            "RunActivity:node.apply_gateway",
        ):
            assert name in body, printed.stdout
        # The same trace on the trace page the query port serves.
        page = lines[1].strip()
        assert page.endswith(f"/?config=egressgw-demo/traced#trace={lines[0].split()[1]}"), page
        with urllib.request.urlopen(page, timeout=10) as answer:
            assert b"static/trace-view.js" in answer.read()
        # The reconcile is the root: the first span line, not indented.
        assert lines[3].split("  ")[-1].strip() == "reconcile StaticGatewayConfiguration"
        unknown = egressgw("dev", "trace", "egressgw-demo/absent", "--state-dir", str(state))
        assert unknown.returncode == 1 and "no trace of egressgw-demo/absent" in unknown.stdout
    finally:
        down = egressgw("dev", "down", "--state-dir", str(state))
    assert down.returncode == 0, down.stdout + down.stderr
    with pytest.raises(ProcessLookupError):
        os.kill(jaeger_pid, 0)
