"""A second, independent client of the ARM emulator: the Azure SDK for Go (tools/arm-client,
built from pinned modules by scripts/arm-client). It finds the cloud from /metadata/endpoints,
gets its token from the IMDS stand-in the App Service way (IDENTITY_ENDPOINT/IDENTITY_HEADER),
and creates, reads and deletes a public IP prefix and a load balancer through long-running
operations, with the api-versions current Go SDKs send (network 2025-05-01, compute 2025-04-01,
scale set NICs 2018-10-01). Its report shows every exchange as Go's own code read it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sim.arm.server import ArmEmulator
from sim.imds import ImdsEmulator
from sim.topology import Topology

REPO = Path(__file__).resolve().parents[2]
LRO_LATENCY = 1.2  # seconds: long enough that the first polls find the operations running


@pytest.fixture(scope="session")
def arm_client_binary() -> Path:
    """tools/arm-client, built once and cached (needs Go the first time, as the Kubernetes
    binaries do)."""
    done = subprocess.run(
        [str(REPO / "scripts" / "arm-client")], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/arm-client could not build the Go client:\n{done.stderr}")
    return Path(done.stdout.strip())


async def _run(binary: Path, arm: ArmEmulator, imds: ImdsEmulator, topo: Topology) -> Any:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AZURE_", "IDENTITY_", "MSI_", "IMDS_", "SSL_CERT"))
    }
    env.update(imds.app_service_environment())
    env["SSL_CERT_FILE"] = str(arm.ca_path)  # Go's way to trust a private CA
    subnet = (
        f"{topo.resource_group_id}/providers/Microsoft.Network/virtualNetworks/"
        f"{topo.vnet_name}/subnets/{topo.gateway_subnet_name}"
    )
    proc = await asyncio.create_subprocess_exec(
        str(binary),
        f"-arm={arm.url}",
        f"-subscription={topo.subscription_id}",
        f"-resource-group={topo.resource_group}",
        f"-location={topo.location}",
        f"-subnet={subnet}",
        f"-scale-set={topo.vmss_pools[0].vmss_name}",
        "-name=goclient",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    report = json.loads(out) if out.strip() else {}
    failed = [s for s in report.get("steps", []) if not s["ok"]]
    assert proc.returncode == 0 and not failed, f"{failed}\n{err.decode()[-3000:]}"
    return report


def _exchanges(report: Any, method: str, path_part: str) -> list[dict[str, Any]]:
    return [
        e for e in report["exchanges"] if e["method"] == method and path_part in e["path"].lower()
    ]


async def test_the_go_sdk_runs_prefix_and_load_balancer_lros(
    arm_client_binary: Path, arm_emulator: ArmEmulator, imds: ImdsEmulator, arm_topology: Topology
) -> None:
    arm_emulator.set_latency(
        {
            "PUT publicIPPrefixes": LRO_LATENCY,
            "PUT loadBalancers": LRO_LATENCY,
            "DELETE publicIPPrefixes": LRO_LATENCY,
            # loadBalancers' DELETE stays instant: accepted, then done at the first poll.
        }
    )

    report = await _run(arm_client_binary, arm_emulator, imds, arm_topology)

    assert report["cloud"]["resourceManager"] == arm_emulator.url + "/"
    assert [r.protocol for r in imds.token_requests][:1] == ["app-service"]
    for kind in ("publicipprefixes", "loadbalancers"):
        (put,) = _exchanges(report, "PUT", f"/{kind}/")
        assert (put["status"], put.get("provisioningState")) == (201, "Updating")
        assert put["asyncOperation"] and put["apiVersion"] == "2025-05-01"
        (delete,) = _exchanges(report, "DELETE", f"/{kind}/")
        assert delete["status"] == 202 and delete["location"] and delete["asyncOperation"]
    # Every Retry-After is one Go's poller takes (strconv.Atoi), and running operations ask
    # for at least a second.
    hints = [e for e in report["exchanges"] if e.get("retryAfter")]
    assert hints and all(e["retryAfterIsWhole"] for e in hints)
    polls = _exchanges(report, "GET", "/operations/")
    assert any(int(e.get("retryAfter", "0")) >= 1 for e in polls)
    assert polls[-1]["status"] == 200
    (nics,) = _exchanges(report, "GET", "/networkinterfaces")
    assert (nics["apiVersion"], nics["status"]) == ("2018-10-01", 200)
    scale_set_gets = [
        e
        for e in _exchanges(report, "GET", "/virtualmachinescalesets/")
        if "/network" not in e["path"].lower()
    ]
    assert [(e["apiVersion"], e["status"]) for e in scale_set_gets] == [("2025-04-01", 200)]
    gone = _exchanges(report, "GET", "/publicipprefixes/goclient")[-1]
    assert (gone["status"], gone.get("code")) == (404, "ResourceNotFound")
    assert (
        arm_emulator.resource(
            f"{arm_topology.resource_group_id}/providers/Microsoft.Network/loadBalancers/goclient"
        )
        is None
    )


async def test_every_version_the_go_sdk_sends_is_served(
    arm_client_binary: Path, arm_emulator: ArmEmulator, imds: ImdsEmulator, arm_topology: Topology
) -> None:
    """All three of its version series pass the emulator's table (and nothing else got in)."""
    await _run(arm_client_binary, arm_emulator, imds, arm_topology)

    sent = {(e.resource_type, e.api_version, e.status) for e in arm_emulator.request_log.entries}
    assert {status for _, _, status in sent} <= {200, 201, 202, 204, 404}
    assert {version for _, version, _ in sent} == {"2025-05-01", "2025-04-01", "2018-10-01"}
