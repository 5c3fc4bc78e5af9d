"""`egressgw dev chart-values` (egressgw/dev/chart_values.py): values the chart accepts that
point its pods at the dev stack as the node network reaches it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from egressgw.dev.chart_values import chart_values
from egressgw.dev.layout import DevPorts, DevStackError, StatePaths
from egressgw.dev.stack import azure_cloud_config, endpoints_document
from sim.topology import Topology
from tests.fixtures.helm_chart import render

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def stack_values(tmp_path: Path, *, network_built: bool = True) -> dict[str, object]:
    ports = DevPorts()
    endpoints = endpoints_document(
        ports, StatePaths(tmp_path), 1, 2, network_built=network_built, egressgw=False
    )
    cloud = azure_cloud_config(Topology(), f"https://127.0.0.1:{ports.arm}", "s3cret")
    return chart_values(endpoints, cloud, CA, "10.244.0.0/16", Topology().vnet_cidr)


def test_the_pods_are_pointed_at_the_addresses_the_node_network_routes(
    helm_path: Path, tmp_path: Path
) -> None:
    ports = DevPorts()
    rendered = render(helm_path, tmp_path, stack_values(tmp_path))
    controller = rendered.container("Deployment", "egressgw-controller")
    assert f"--temporal-address=192.0.2.10:{ports.temporal}" in controller["args"]
    secret = rendered.get("Secret", "egressgw-azure-cloud-config")
    cloud = json.loads(base64.b64decode(secret["data"]["azure-cloud-config.json"]))
    assert cloud["resourceManagerEndpoint"] == f"https://192.0.2.10:{ports.arm}"
    assert cloud["aadClientSecret"] == "s3cret"  # the rest of the cloud config `dev up` wrote
    assert rendered.get("ConfigMap", "egressgw-azure-ca")["data"]["ca.pem"] == CA
    manager = rendered.container("DaemonSet", "egressgw-cni-manager")
    assert "--cluster-cidrs=10.244.0.0/16,10.96.0.0/16,10.224.0.0/12" in manager["args"]
    agent_pod = rendered.get("DaemonSet", "egressgw-agent")["spec"]["template"]["spec"]
    assert "initContainers" not in agent_pod  # dev up made the gateway namespaces


def test_a_stack_without_node_network_has_no_values(tmp_path: Path) -> None:
    with pytest.raises(DevStackError, match="node network"):
        stack_values(tmp_path, network_built=False)
