"""The Helm chart really installs: `egressgw dev up --no-egressgw` (a cluster, Temporal, the ARM
emulator and the node network, none of the stack's own controller, agents or CNI managers), then
`helm install` with the stack's Temporal address and an Azure cloud config for the ARM emulator
(as the node network reaches them), and the node runtimes run the chart's pods exactly as
rendered: commands, env, mounts, ServiceAccount tokens.

What a user notices: every chart pod Running and Ready; the sample configuration Ready and the
sample pod leaving with an address of its egressIpPrefix (its `kubectl logs`); `helm upgrade`
with a changed value rolls every pod while a second configuration is being provisioned, and both
end Ready with histories that replay; `helm uninstall` leaves none of the chart's objects (the
CRDs stay, as Helm keeps crds/).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from contracts import kube_names, resource_names
from egressgw.dev.kube_seed import SYSTEM_NAMESPACE
from tests.fixtures.dev_stack import DevStackRun, running_dev_stack
from tests.fixtures.helm_chart import CHART
from tests.fixtures.sgc_status import is_ready

pytestmark = [pytest.mark.slow, pytest.mark.needs_root, pytest.mark.kubectl]

T = TypeVar("T")
RELEASE = "egw"
SAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "samples"
DEMO = "egressgw-demo"
API = kube_names.GROUP_VERSION
COMPONENTS = ("controller", "agent", "cni-manager")


def chart_values(stack: DevStackRun) -> str:
    """`egressgw dev chart-values`: the stack's services as the nodes reach them, the cloud
    config `dev up` wrote pointed at the same ARM emulator, the node network's cluster CIDRs."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "egressgw",
            "dev",
            "chart-values",
            "--state-dir",
            str(stack.state_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


@pytest.fixture(scope="module")
def bare_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStackRun]:
    with running_dev_stack(
        tmp_path_factory.mktemp("helm") / "state", 30500, ("--no-egressgw",)
    ) as run:
        yield run


class Cluster:
    def __init__(self, stack: DevStackRun, kubectl_path: Path, helm_path: Path) -> None:
        self.stack = stack
        self.kubectl_path = kubectl_path
        self.helm_path = helm_path

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        return self.stack.kubectl(self.kubectl_path, *args, stdin=stdin, check=check)

    def get(self, *args: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.kubectl("get", *args, "-o", "json"))
        return found

    def helm(self, *args: str) -> str:
        done = subprocess.run(
            [
                str(self.helm_path),
                "--kubeconfig",
                str(self.stack.kubeconfig),
                "--namespace",
                SYSTEM_NAMESPACE,
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"helm {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    async def wait(self, probe: Callable[[], Awaitable[T | None]], timeout: float, what: str) -> T:
        deadline = time.monotonic() + timeout
        while True:
            found = await probe()
            if found:
                return found
            if time.monotonic() > deadline:
                pods = self.kubectl("get", "pods", "-A", "-o", "wide", check=False)
                raise AssertionError(f"timed out waiting for {what}\n{pods}\n{self.stack.logs()}")
            await asyncio.sleep(0.5)

    def chart_pods(self) -> list[dict[str, Any]]:
        listed = self.get(
            "pods", "-n", SYSTEM_NAMESPACE, "-l", f"app.kubernetes.io/instance={RELEASE}"
        )
        return list(listed["items"])

    async def all_chart_pods_ready(self, expected: int, exclude: set[str]) -> list[dict[str, Any]]:
        """Every chart pod Running and Ready, `expected` of them, none of UID in `exclude`."""

        async def ready() -> list[dict[str, Any]] | None:
            pods = await asyncio.to_thread(self.chart_pods)
            live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
            if len(live) != expected or len(pods) != expected:
                return None
            for pod in live:
                if pod["metadata"]["uid"] in exclude or pod["status"].get("phase") != "Running":
                    return None
                conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
                if conditions.get("Ready") != "True":
                    return None
            return live

        return await self.wait(ready, 240, f"{expected} chart pods Running and Ready")

    async def sgc_ready(self, name: str) -> dict[str, Any]:
        async def ready() -> dict[str, Any] | None:
            found = await asyncio.to_thread(self.get, kube_names.SGC_PLURAL, "-n", DEMO, name)
            return found if is_ready(found) else None

        return await self.wait(ready, 240, f"configuration {DEMO}/{name} Ready")


def expected_pod_count(stack: DevStackRun, replicas: int = 2) -> int:
    return replicas + len(stack.nodes("gateway")) + len(stack.nodes("regular"))


async def test_helm_install_upgrade_uninstall(
    bare_stack: DevStackRun, kubectl_path: Path, helm_path: Path, tmp_path: Path
) -> None:
    cluster = Cluster(bare_stack, kubectl_path, helm_path)
    # The stack started none of its own: the chart's pods are the only egressgw processes.
    assert bare_stack.endpoints()["controller_pid"] is None
    assert not bare_stack.endpoints()["agent_pids"]
    assert not bare_stack.endpoints()["cni_manager_pids"]
    values = tmp_path / "values.json"
    values.write_text(chart_values(bare_stack))

    cluster.helm("install", RELEASE, str(CHART), "--values", str(values))
    expected = expected_pod_count(bare_stack)
    first = await cluster.all_chart_pods_ready(expected, set())
    assert {p["metadata"]["labels"]["app.kubernetes.io/component"] for p in first} == set(
        COMPONENTS
    )

    cluster.kubectl("apply", "-f", str(SAMPLES / "sgc-public.yaml"))
    cluster.kubectl("apply", "-f", str(SAMPLES / "pod-egress.yaml"))
    sgc = await cluster.sgc_ready("public-egress")
    prefix = ipaddress.ip_network(sgc["status"]["egressIpPrefix"], strict=False)

    async def left_with_prefix() -> str | None:
        logs = await asyncio.to_thread(
            cluster.kubectl, "logs", "-n", DEMO, "egress-client", check=False
        )
        for line in logs.splitlines():
            seen = line.rsplit(" ", 1)[-1].split(":")[0]
            try:
                if ipaddress.ip_address(seen) in prefix:
                    return line
            except ValueError:
                continue
        return None

    await cluster.wait(left_with_prefix, 120, f"egress-client's logs showing {prefix}")

    # A second configuration while the upgrade rolls every pod.
    second = yaml.safe_load((SAMPLES / "sgc-public.yaml").read_text())
    second["metadata"]["name"] = "public-egress-2"
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(second))
    provisioning = cluster.get(kube_names.SGC_PLURAL, "-n", DEMO, "public-egress-2")
    assert not is_ready(provisioning), "the second configuration must be rolled over, not done"
    old_uids = {p["metadata"]["uid"] for p in first}
    upgrade = [
        f"--set={component}.podLabels.rollout=second"
        for component in ("gatewayControllerManager", "gatewayDaemonManager", "gatewayCNIManager")
    ]
    await asyncio.to_thread(
        cluster.helm, "upgrade", RELEASE, str(CHART), "--values", str(values), *upgrade
    )
    await cluster.all_chart_pods_ready(expected, old_uids)
    await cluster.sgc_ready("public-egress")
    await cluster.sgc_ready("public-egress-2")

    # The histories of both configurations replay against this code.
    temporal = bare_stack.endpoints()["temporal_address"]
    replay = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "egressgw",
            "replay",
            "--address",
            temporal,
            "--workflow-id",
            resource_names.gateway_config_workflow_id(DEMO, "public-egress"),
            "--workflow-id",
            resource_names.gateway_config_workflow_id(DEMO, "public-egress-2"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr

    cluster.kubectl("delete", "-f", str(SAMPLES / "pod-egress.yaml"), "--wait=true")
    for name in ("public-egress", "public-egress-2"):
        cluster.kubectl("delete", kube_names.SGC_PLURAL, "-n", DEMO, name, "--wait=true")
    cluster.helm("uninstall", RELEASE, "--wait")
    selector = f"app.kubernetes.io/instance={RELEASE}"
    left = cluster.get(
        "deployments,daemonsets,serviceaccounts,secrets,configmaps,roles,rolebindings",
        "-n",
        SYSTEM_NAMESPACE,
        "-l",
        selector,
    )
    cluster_wide = cluster.get("clusterroles,clusterrolebindings", "-l", selector)
    assert left["items"] == [] and cluster_wide["items"] == []

    async def pods_gone() -> bool:
        return not await asyncio.to_thread(cluster.chart_pods)

    await cluster.wait(pods_gone, 120, "the chart's pods gone")
    crds = cluster.get("crd")
    assert any(
        c["metadata"]["name"].startswith("staticgatewayconfigurations.") for c in crds["items"]
    )
