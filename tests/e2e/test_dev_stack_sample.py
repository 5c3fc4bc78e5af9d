"""The newcomer's path: `egressgw dev up`, `kubectl apply -f deploy/samples/sgc-public.yaml`, the
configuration becomes Ready; `kubectl delete` leaves nothing behind in Azure; `dev down` stops
the controller with the rest."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as kube_client
from kubernetes import config as kube_config

from contracts import kube_names, resource_names
from egressgw.azure_credential import azure_clients_from_config
from egressgw.cloud_config import load_cloud_config
from sim.topology import Topology
from tests.fixtures.dev_stack import dev_port_base
from tests.fixtures.sgc_status import is_ready

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "samples" / "sgc-public.yaml"

pytestmark = [pytest.mark.slow, pytest.mark.kubectl]


def run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    state = tmp_path / "state"
    base = dev_port_base(26000)
    run(
        sys.executable,
        "-m",
        "egressgw",
        "dev",
        "up",
        "--detach",
        "--headless",
        "--state-dir",
        str(state),
        "--port-base",
        str(base),
        # As root the stack builds its node network: names of this test's own.
        "--net-prefix",
        "s" + uuid.uuid4().hex[:5],
    )
    yield state
    subprocess.run(
        [sys.executable, "-m", "egressgw", "dev", "down", "--state-dir", str(state)],
        capture_output=True,
        timeout=60,
        check=False,
    )


def wait_until(check: Any, timeout: float, what: str, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(
        f"timed out waiting for {what}; controller log:\n{log.read_text()[-4000:]}"
    )


async def azure_leftovers(state: Path) -> dict[str, list[str]]:
    """What the configuration could have left in Azure, read through the product's own
    credential path: prefixes, public IPs, load balancers, managed ipConfigs in VMSS models."""
    config = load_cloud_config(state / "azure.json").config
    async with azure_clients_from_config(config, connection_verify=str(state / "ca.pem")) as (
        network,
        compute,
    ):
        group = config.resource_group
        prefixes = [p.name async for p in network.public_ip_prefixes.list(group)]
        addresses = [
            a.name
            async for a in network.public_ip_addresses.list(group)
            if a.name != Topology().outbound_ip_name  # seeded by the stack, not left over
        ]
        balancers = [lb.name async for lb in network.load_balancers.list(group)]
        ip_configs = [
            ip.name
            async for vmss in compute.virtual_machine_scale_sets.list(group)
            for nic in vmss.virtual_machine_profile.network_profile.network_interface_configurations
            for ip in nic.ip_configurations
            if resource_names.is_managed_resource_name(ip.name)
        ]
    return {
        "publicIPPrefixes": prefixes,
        "publicIPAddresses": addresses,
        "loadBalancers": balancers,
        "managed ipConfigs": ip_configs,
    }


async def test_sample_applied_with_kubectl_becomes_ready_and_deletes_cleanly(
    state_dir: Path, kubectl_path: Path
) -> None:
    kubectl = str(kubectl_path)
    kubeconfig = str(state_dir / "kubeconfig")
    endpoints = json.loads((state_dir / "endpoints.json").read_text())
    controller_pid = endpoints["controller_pid"]
    controller_log = Path(endpoints["controller_log"])
    sample = yaml.safe_load(SAMPLE.read_text())
    name, namespace = sample["metadata"]["name"], sample["metadata"]["namespace"]
    api = kube_config.new_client_from_config(kubeconfig)  # type: ignore[no-untyped-call]
    custom = kube_client.CustomObjectsApi(api)

    def get() -> dict[str, Any] | None:
        try:
            found = custom.get_namespaced_custom_object(
                kube_names.API_GROUP, kube_names.API_VERSION, namespace, kube_names.SGC_PLURAL, name
            )
        except kube_client.ApiException as err:
            if err.status == 404:
                return None
            raise
        assert isinstance(found, dict)
        return found

    run(kubectl, "--kubeconfig", kubeconfig, "apply", "-f", str(SAMPLE))
    obj = wait_until(
        lambda: (found := get()) and is_ready(found) and found, 60, "Ready", controller_log
    )

    status = obj["status"]
    assert status["egressIpPrefix"].endswith("/31")
    profile = status["gatewayServerProfile"]
    assert profile["ip"] and profile["port"] == 6000 and profile["publicKey"]
    secret = profile["privateKeySecretRef"]["name"]
    assert secret == resource_names.gateway_secret_name(obj["metadata"]["uid"])
    shown = run(
        kubectl,
        "--kubeconfig",
        kubeconfig,
        "get",
        "-n",
        namespace,
        "staticgatewayconfigurations",
        name,
        "-o",
        "jsonpath={.status.egressIpPrefix}",
    )
    assert shown.stdout == status["egressIpPrefix"]
    before = await azure_leftovers(state_dir)
    assert before["publicIPPrefixes"] and before["managed ipConfigs"]

    run(kubectl, "--kubeconfig", kubeconfig, "delete", "-f", str(SAMPLE), "--timeout=60s")

    assert get() is None
    assert await azure_leftovers(state_dir) == {
        "publicIPPrefixes": [],
        "publicIPAddresses": [],
        "loadBalancers": [],
        "managed ipConfigs": [],
    }
    secrets = kube_client.CoreV1Api(api).list_namespaced_secret(
        profile["privateKeySecretRef"]["namespace"]
    )
    assert secret not in [s.metadata.name for s in secrets.items if s.metadata is not None]

    run(sys.executable, "-m", "egressgw", "dev", "down", "--state-dir", str(state_dir))
    with pytest.raises(ProcessLookupError):
        os.kill(controller_pid, 0)


def gone(pid: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # Our own children linger as zombies until reaped; theirs are reparented and reaped.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    return False


def test_dev_down_stops_the_controller_of_a_killed_supervisor(state_dir: Path) -> None:
    endpoints = json.loads((state_dir / "endpoints.json").read_text())
    supervisor, controller = endpoints["pid"], endpoints["controller_pid"]
    temporal = endpoints["temporal_pid"]
    assert not gone(controller, timeout=0.5)

    os.kill(supervisor, signal.SIGKILL)
    assert gone(supervisor)
    done = run(sys.executable, "-m", "egressgw", "dev", "down", "--state-dir", str(state_dir))

    assert "no dev stack is running" in done.stdout
    assert gone(controller) and gone(temporal)
