"""docker-compose.yml as Docker Compose reads it (compose-go, the loader `docker compose config`
runs: tests/fixtures/compose_checker.py), what its services promise each other (health checks
behind every `service_healthy`, one-off jobs behind `service_completed_successfully`), its
temporal-setup script against a real Temporal server, and the controller run with exactly the
environment the compose file gives it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contracts import search_attributes
from egressgw import client_endpoints
from egressgw.dev.temporal_server import TemporalDevServer, temporal_binary
from sim.ports import free_port
from tests.fixtures.compose_checker import ROOT, ComposeChecker
from tests.fixtures.controller_stack import ControllerProcess, ControllerStack

COMPOSE_FILE = ROOT / "docker-compose.yml"
SETUP_SCRIPT = ROOT / "deploy" / "compose" / "temporal-setup.sh"


@pytest.fixture
def compose_env(tmp_path: Path) -> dict[str, str]:
    """What a user sets before `docker compose up`: the files the controller gets."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    cloud_config = tmp_path / "azure.json"
    cloud_config.write_text("{}")
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "EGRESSGW_KUBECONFIG": str(kubeconfig),
        "EGRESSGW_CLOUD_CONFIG_FILE": str(cloud_config),
        "EGRESSGW_SECRET_NAMESPACE": "gateway-keys",
        "EGRESSGW_TAG": "9.9.9",
        "EGRESSGW_USER": "1000:1000",
    }


@pytest.fixture
def compose_model(compose_checker: ComposeChecker, compose_env: dict[str, str]) -> dict[str, Any]:
    return compose_checker.load(COMPOSE_FILE, compose_env).model()


def _services(model: dict[str, Any]) -> dict[str, Any]:
    services: dict[str, Any] = model["services"]
    return services


def test_compose_file_loads_with_pinned_images_and_the_controller_image_built_here(
    compose_model: dict[str, Any],
) -> None:
    services = _services(compose_model)

    assert set(services) == {
        "postgresql",
        "temporal-schema",
        "temporal",
        "temporal-setup",
        "temporal-ui",
        "controller",
    }
    for name, service in services.items():
        repository, _, tag = service["image"].rpartition(":")
        assert repository and tag and tag != "latest", (name, service["image"])
    controller = services["controller"]
    assert controller["image"] == "ghcr.io/egressgw/egressgw:9.9.9"
    assert controller["build"]["context"] == str(ROOT)
    assert controller["entrypoint"] == ["egressgw", "controller"]


def test_every_dependency_condition_can_be_met(compose_model: dict[str, Any]) -> None:
    services = _services(compose_model)
    conditions = [
        (name, target, dependency["condition"])
        for name, service in services.items()
        for target, dependency in (service.get("depends_on") or {}).items()
    ]

    assert {condition for _, _, condition in conditions} == {
        "service_healthy",
        "service_completed_successfully",
    }
    for name, target, condition in conditions:
        if condition == "service_healthy":
            assert services[target].get("healthcheck", {}).get("test"), (name, target)
        else:  # a one-off job: restarted for ever, it would never complete
            assert services[target].get("restart") in (None, "no"), (name, target)
    # The controller starts once Temporal has its namespace and search attributes.
    assert ("controller", "temporal-setup", "service_completed_successfully") in conditions


def test_the_controller_is_configured_by_environment_and_mounted_files(
    compose_model: dict[str, Any], compose_env: dict[str, str]
) -> None:
    controller = _services(compose_model)["controller"]
    env = controller["environment"]
    mounts = {m["target"]: m for m in controller["volumes"]}

    assert env["TEMPORAL_ADDRESS"].split(":") == ["temporal", "7233"]
    assert env["TEMPORAL_NAMESPACE"] == "default"
    assert env["MY_POD_NAMESPACE"] == "gateway-keys"
    assert mounts[env["KUBECONFIG"]]["source"] == compose_env["EGRESSGW_KUBECONFIG"]
    assert (
        mounts[env["EGRESSGW_CLOUD_CONFIG"]]["source"]
        == (compose_env["EGRESSGW_CLOUD_CONFIG_FILE"])
    )
    assert all(m["read_only"] for m in mounts.values())
    assert controller["user"] == "1000:1000"


def test_temporal_and_its_ui_are_published_where_egressgw_status_looks(
    compose_model: dict[str, Any],
) -> None:
    services = _services(compose_model)
    published = {
        (name, int(port["published"])): port.get("host_ip")
        for name, service in services.items()
        for port in service.get("ports") or []
    }
    address_port = int(client_endpoints.DEFAULT_TEMPORAL_ADDRESS.rsplit(":", 1)[1])
    ui_port = int(client_endpoints.DEFAULT_UI_URL.rsplit(":", 1)[1])

    assert published == {
        ("temporal", address_port): "127.0.0.1",
        ("temporal-ui", ui_port): "127.0.0.1",
    }


def test_setup_jobs_run_scripts_of_this_repository(compose_model: dict[str, Any]) -> None:
    services = _services(compose_model)
    attributes = services["temporal-setup"]["environment"]["EGRESSGW_SEARCH_ATTRIBUTES"]

    assert attributes.split() == [name for name, _ in search_attributes.registrations()]
    for name in ("temporal-schema", "temporal-setup"):
        service = services[name]
        mount = next(m for m in service["volumes"] if m["target"] == "/egressgw")
        script = service["entrypoint"][-1]
        assert Path(mount["source"], Path(script).name).is_file(), (name, script)
    dynamic = next(
        m for m in services["temporal"]["volumes"] if m["target"].endswith("dynamicconfig")
    )
    config_file = services["temporal"]["environment"]["DYNAMIC_CONFIG_FILE_PATH"]
    assert Path(dynamic["source"], Path(config_file).name).is_file()


BROKEN = [
    pytest.param(
        ("      temporal-setup:\n        condition", "      temporal-sotup:\n        condition"),
        "temporal-sotup",
        id="depends-on-an-undefined-service",
    ),
    pytest.param(
        ("condition: service_healthy", "condition: service_ready"),
        "condition",
        id="unknown-condition",
    ),
    pytest.param(("    healthcheck:", "    healthchek:"), "healthchek", id="misspelt-key"),
    pytest.param(
        ("volumes:\n  temporal-postgresql:\n", ""),
        "temporal-postgresql",
        id="undeclared-volume",
    ),
    pytest.param(
        ("      retries: 30\n", '      retries: "thirty"\n'),
        "retries",
        id="wrong-type",
    ),
]


@pytest.mark.parametrize(("edit", "named"), BROKEN)
def test_a_broken_compose_file_is_refused_naming_the_problem(
    compose_checker: ComposeChecker,
    compose_env: dict[str, str],
    tmp_path: Path,
    edit: tuple[str, str],
    named: str,
) -> None:
    text = COMPOSE_FILE.read_text()
    assert edit[0] in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(edit[0], edit[1], 1))

    result = compose_checker.load(broken, compose_env)

    assert result.returncode == 1
    assert named in result.stderr, result.stderr
    assert result.stdout == ""


def _setup(
    server: TemporalDevServer, namespace: str, names: str
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{temporal_binary().parent}:{os.environ['PATH']}",
        "TEMPORAL_ADDRESS": server.address,
        "TEMPORAL_NAMESPACE": namespace,
        "EGRESSGW_SEARCH_ATTRIBUTES": names,
    }
    return subprocess.run(
        ["sh", str(SETUP_SCRIPT)], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_temporal_setup_creates_the_namespace_and_search_attributes_once(
    temporal_server: TemporalDevServer,
) -> None:
    namespace = f"compose-{os.urandom(4).hex()}"
    names = " ".join(name for name, _ in search_attributes.registrations())

    first = _setup(temporal_server, namespace, names)
    again = _setup(temporal_server, namespace, names)

    assert first.returncode == 0, first.stdout + first.stderr
    assert again.returncode == 0, again.stdout + again.stderr
    assert "creating namespace" in first.stdout and "creating namespace" not in again.stdout
    assert again.stdout.count("is registered") == len(search_attributes.registrations())
    listed = subprocess.run(
        [
            str(temporal_binary()),
            "operator",
            "search-attribute",
            "list",
            "--address",
            temporal_server.address,
            "--namespace",
            namespace,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = {tuple(line.split()) for line in listed.stdout.splitlines()}
    for name, kind in search_attributes.registrations():
        assert (name, kind) in rows, listed.stdout


@pytest.mark.slow
async def test_the_controller_runs_from_the_compose_environment(
    compose_model: dict[str, Any], controller_stack: ControllerStack
) -> None:
    """The controller service's environment, with its file paths and service address pointed at
    this test's stack, and no flag for any of them: a configuration becomes Ready."""
    stack = controller_stack
    service = _services(compose_model)["controller"]
    at_stack = {
        "TEMPORAL_ADDRESS": stack.temporal.address,
        "KUBECONFIG": str(stack.kubeconfig),
        "EGRESSGW_CLOUD_CONFIG": str(stack.cloud_config),
        "MY_POD_NAMESPACE": stack.secret_namespace,
    }
    assert set(at_stack) < set(service["environment"])
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/"),
        **service["environment"],
        **at_stack,
    }
    port, metrics_port = free_port(), free_port()
    entrypoint = service["entrypoint"]
    assert entrypoint[0] == "egressgw"
    command = [sys.executable, "-m", "egressgw", *entrypoint[1:]]
    # What only the test needs: the emulator's CA, free health and metrics ports, no node agents.
    command += ["--azure-ca-file", str(stack.arm.ca_path), "--health-address", f"127.0.0.1:{port}"]
    command += ["--metrics-address", f"127.0.0.1:{metrics_port}"]
    command += ["--no-configure-nodes", "--graceful-shutdown", "2s"]
    process = ControllerProcess(
        command, stack.root / "compose-controller.log", port, metrics_port, env=env
    )
    stack.controllers.append(process)
    process.start()
    await process.wait_ready()

    await stack.create_sgc("from-compose-env")
    ready = await stack.wait_ready("from-compose-env")

    assert ready["status"]["egressIpPrefix"]
    assert await process.stop() == 0
