"""`egressgw controller` as an operator meets it: flag and file errors, health endpoints, waiting
for a Temporal server that is not up yet, a clean stop on SIGTERM, and logs without secrets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from kubernetes_asyncio.client import ApiClient

from egressgw.dev.stack import azure_cloud_config
from sim.arm.server import ArmEmulator
from sim.ports import free_port
from sim.topology import Topology
from tests.fixtures.controller_stack import ControllerStack, controller_stack_in
from tests.fixtures.kube_accounts import ComponentAccount, ControllerNamespaces
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow


def controller(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "egressgw", "controller", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_unusable_settings_are_refused_with_the_reason(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MY_POD_NAMESPACE"}
    cloud_config = tmp_path / "azure.json"
    cloud_config.write_text(json.dumps({"cloud": "AzurePublicCloud", "location": "westeurope"}))
    valid = tmp_path / "valid.json"
    valid.write_text(json.dumps(azure_cloud_config(Topology(), "https://127.0.0.1:1", "s")))

    missing = controller("--cloud-config", str(tmp_path / "nope.json"), "--secret-namespace", "s")
    duration = controller("--drift-check-interval", "soon")
    health = controller("--health-address", "localhost")
    incomplete = controller("--cloud-config", str(cloud_config), "--secret-namespace", "s")
    no_namespace = controller("--cloud-config", str(cloud_config), env=env)
    no_kubeconfig = controller(
        "--cloud-config",
        str(valid),
        "--kubeconfig",
        str(tmp_path / "kubeconfig"),
        "--secret-namespace",
        "s",
    )

    assert missing.returncode == 2 and "nope.json" in missing.stderr
    assert duration.returncode == 2 and "'soon'" in duration.stderr
    assert health.returncode == 2 and "HOST:PORT" in health.stderr
    assert incomplete.returncode == 2 and "subscriptionId" in incomplete.stderr
    assert no_namespace.returncode == 2 and "MY_POD_NAMESPACE" in no_namespace.stderr
    assert no_kubeconfig.returncode == 2 and "--kubeconfig" in no_kubeconfig.stderr


def test_unusable_metrics_and_tracing_settings_are_refused_with_the_reason(
    tmp_path: Path,
) -> None:
    valid = tmp_path / "valid.json"
    valid.write_text(json.dumps(azure_cloud_config(Topology(), "https://127.0.0.1:1", "s")))
    base = ["--cloud-config", str(valid), "--secret-namespace", "s", "--health-address", "off"]
    otel = {**os.environ, "OTEL_TRACES_EXPORTER": "zipkin"}

    address = controller(*base, "--metrics-address", "localhost")
    exporter = controller(*base, "--metrics-address", "off", env=otel)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = controller(*base, "--metrics-address", f"127.0.0.1:{port}")

    assert address.returncode == 2 and "HOST:PORT" in address.stderr
    assert exporter.returncode == 2 and "OTEL_TRACES_EXPORTER" in exporter.stderr
    assert busy.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr


def test_a_temporal_connection_it_cannot_use_is_refused_at_start(tmp_path: Path) -> None:
    """Not retried like a server that is down: the process exits at once, naming the flag."""
    valid = tmp_path / "valid.json"
    valid.write_text(json.dumps(azure_cloud_config(Topology(), "https://127.0.0.1:1", "s")))
    base = ["--cloud-config", str(valid), "--secret-namespace", "s"]

    no_port = controller(*base, "--temporal-address", "temporal-frontend")
    scheme = controller(*base, "--temporal-address", "https://temporal:7233")
    missing_ca = controller(*base, "--temporal-tls-ca-file", str(tmp_path / "ca.pem"))
    half_mtls = controller(*base, "--temporal-tls-cert-file", str(valid))
    env = dict(os.environ, TEMPORAL_TLS_SERVER_CA_CERT_PATH=str(valid))
    not_pem = controller(*base, env=env)

    assert no_port.returncode == 2, no_port.stderr
    assert "--temporal-address 'temporal-frontend' is not HOST:PORT" in no_port.stderr
    assert scheme.returncode == 2 and "is not HOST:PORT" in scheme.stderr
    assert missing_ca.returncode == 2
    assert f"--temporal-tls-ca-file {tmp_path / 'ca.pem'}: no such file" in missing_ca.stderr
    assert half_mtls.returncode == 2 and "mTLS needs both" in half_mtls.stderr
    assert not_pem.returncode == 2 and "holds no PEM certificate" in not_pem.stderr
    for refused in (no_port, scheme, missing_ca, half_mtls, not_pem):
        assert "Traceback" not in refused.stderr
        assert "not reachable yet" not in refused.stderr


def test_cloud_config_keys_it_does_not_act_on_are_warned_about_once_at_start_up(
    tmp_path: Path,
) -> None:
    document = azure_cloud_config(Topology(), "https://127.0.0.1:1", "s") | {
        "cloudProviderBackoff": True,
        "cloudProviderBackoffRetries": 6,
        "cloudConfigType": "merge",
    }
    cloud_config = tmp_path / "azure.json"
    cloud_config.write_text(json.dumps(document))
    log_path = tmp_path / "controller.log"
    command = [sys.executable, "-m", "egressgw", "controller", "--cloud-config", str(cloud_config)]
    command += ["--secret-namespace", "s", "--temporal-address", f"127.0.0.1:{free_port()}"]
    command += ["--metrics-address", "off"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "not reachable yet" not in log_path.read_text():  # past start-up, waiting
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    output = log_path.read_text()
    assert output.count("cloudProviderBackoff, cloudProviderBackoffRetries: not supported") == 1
    assert output.count("cloudConfigType: merge is not supported") == 1


@pytest.fixture
async def stack_without_temporal(
    tmp_path: Path,
    arm_emulator: ArmEmulator,
    arm_topology: Topology,
    kube_api: ApiClient,
    controller_account: ComponentAccount,
    controller_namespaces: ControllerNamespaces,
) -> AsyncIterator[ControllerStack]:
    async with controller_stack_in(
        tmp_path / "plane",
        arm_emulator,
        arm_topology,
        kube_api,
        controller_account.kubeconfig,
        controller_namespaces,
        start_temporal=False,
    ) as stack:
        yield stack


async def status_of(port: int, path: str) -> int:
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}{path}") as response,
        ):
            return response.status
    except aiohttp.ClientError:
        return 0


async def test_waits_for_temporal_serves_health_and_stops_cleanly(
    stack_without_temporal: ControllerStack,
) -> None:
    stack = stack_without_temporal
    process = stack.controller()
    process.start()

    async def alive() -> bool:
        return await status_of(process.health_port, "/healthz") == 200

    await wait_for(alive, 30, "/healthz")
    assert await status_of(process.health_port, "/readyz") == 503

    await stack.temporal.start()
    await process.wait_ready()
    await stack.create_sgc("health")
    await stack.wait_ready("health")

    assert await process.stop() == 0
    log = process.log()
    assert "not reachable yet" in log and "controller stopped" in log
    secret = json.loads(stack.cloud_config.read_text())["aadClientSecret"]
    assert secret not in log


def test_the_cloud_config_path_comes_from_the_flag_then_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "EGRESSGW_CLOUD_CONFIG": str(tmp_path / "from-env.json")}

    from_env = controller("--secret-namespace", "s", env=env)
    from_flag = controller(
        "--cloud-config", str(tmp_path / "from-flag.json"), "--secret-namespace", "s", env=env
    )

    assert from_env.returncode == 2 and "from-env.json" in from_env.stderr
    assert from_flag.returncode == 2 and "from-flag.json" in from_flag.stderr
