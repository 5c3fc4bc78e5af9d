"""`egressgw cni-manager` on a node of its own per test, as its ServiceAccount: our conflist right
after the main plugin and regenerated when the main configuration changes, the plugin launchers
in the bin dir, the node's cni-not-ready taint removed (again, if it comes back), and the
uninstall switch honoured on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest_asyncio

from agent.cni.cni_protocol import PodRef
from agent.cni.manager_api import ManagerError
from agent.cni.manager_client import ManagerClient
from contracts import kube_names
from tests.fixtures.cluster import Cluster, KubeObjects
from tests.fixtures.metrics_scrape import scrape
from tests.netns.cni.cni_env import CniNode, present, succeeded
from tests.netns.cni.conftest import ManagerAccess, create_node_object

MAIN = {
    "cniVersion": "1.0.0",
    "name": "k8s-pod-network",
    "extra": {"kept": True},
    "plugins": [
        {"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local"}},
        {"type": "kube-egress-cni", "socketPath": "localhost:50051"},  # a stale entry of ours
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}


@pytest_asyncio.fixture
async def node(kube_cluster: Cluster, admin_objects: KubeObjects) -> AsyncIterator[CniNode]:
    tag = "m" + uuid.uuid4().hex[:4]
    made = CniNode(tag, kube_cluster.binaries, node_name=f"{tag}-node")
    await create_node_object(admin_objects, made.node_name)
    (made.conf_dir / "10-main.conflist").write_text(json.dumps(MAIN))
    try:
        yield made
    finally:
        made.destroy()
        await admin_objects.delete("v1", "Node", made.node_name)


async def eventually(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def taint_keys(kube: KubeObjects, name: str) -> list[str]:
    node = present(await kube.get("v1", "Node", name))
    assert node is not None
    return [taint["key"] for taint in (node["spec"].get("taints") or [])]


async def test_conflist_launchers_and_taint(
    node: CniNode, kube: KubeObjects, manager_access: ManagerAccess
) -> None:
    node.start_manager(manager_access.kubeconfig, manager_access.namespace)

    ours = node.conflist()
    assert [p["type"] for p in ours["plugins"]] == ["bridge", "kube-egress-cni", "portmap"]
    assert {k: v for k, v in ours.items() if k != "plugins"} == {
        k: v for k, v in MAIN.items() if k != "plugins"
    }
    assert ours["plugins"][1] == {
        "type": "kube-egress-cni",
        "ipam": {"type": "kube-egress-cni-ipam"},
        "excludedCIDRs": list(kube_names.DEFAULT_CNI_EXCEPTION_CIDRS),
        "socketPath": str(node.socket_path),
        "clusterCIDRs": ["10.244.0.0/16", "10.96.0.0/16"],
        "stateDir": str(node.state_dir),
        "wireguardBackend": "wireguard-go",
    }
    assert oct(node.conflist_path.stat().st_mode & 0o777) == "0o644"

    # The executables: launchers of this installation's plugin modules.
    for command in ("kube-egress-cni", "kube-egress-cni-ipam"):
        launcher = node.bin_dir / command
        assert os.access(launcher, os.X_OK)
        assert launcher.read_text().splitlines()[0].endswith(" -IS")
        process = await asyncio.create_subprocess_exec(
            str(launcher),
            env={"CNI_COMMAND": "VERSION"},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate(b'{"cniVersion":"1.1.0"}')
        assert process.returncode == 0
        assert "1.1.0" in json.loads(out)["supportedVersions"]

    # Installed: the not-ready taint goes, other taints stay; and again if it comes back.
    assert "example.com/kept" in await eventually(lambda: _without_taint(kube, node.node_name))
    found = present(await kube.get("v1", "Node", node.node_name))
    assert found is not None
    succeeded(
        await kube.patch(
            "v1",
            "Node",
            node.node_name,
            {
                "spec": {
                    "taints": [
                        *found["spec"]["taints"],
                        {"key": kube_names.CNI_NOT_READY_TAINT_KEY, "effect": "NoSchedule"},
                    ]
                }
            },
        )
    )
    await eventually(lambda: _without_taint(kube, node.node_name))

    # The main configuration changes: ours follows.
    changed = {**MAIN, "plugins": [{**MAIN["plugins"][0], "bridge": "br-new"}]}
    (node.conf_dir / "10-main.conflist").write_text(json.dumps(changed))
    await eventually(lambda: node.conflist()["plugins"][0].get("bridge") == "br-new")
    assert [p["type"] for p in node.conflist()["plugins"]] == ["bridge", "kube-egress-cni"]

    # Another main configuration that sorts first (and is a single-plugin .conf): wrapped.
    (node.conf_dir / "05-ptp.conf").write_text(
        json.dumps({"cniVersion": "0.4.0", "name": "ptpnet", "type": "ptp"})
    )
    await eventually(lambda: node.conflist()["name"] == "ptpnet")
    wrapped = node.conflist()
    assert wrapped["cniVersion"] == "0.4.0"
    assert [p["type"] for p in wrapped["plugins"]] == ["ptp", "kube-egress-cni"]


async def test_a_node_registered_after_the_manager_started_loses_its_taint_at_the_next_poll(
    kube_cluster: Cluster,
    admin_objects: KubeObjects,
    kube: KubeObjects,
    manager_access: ManagerAccess,
) -> None:
    """A node's runtime may register the Node after the manager started (the dev stack starts
    both at once): the failed first look is repeated at the poll interval, not after a whole
    taint-check interval (an hour here)."""
    tag = "m" + uuid.uuid4().hex[:4]
    made = CniNode(tag, kube_cluster.binaries, node_name=f"{tag}-node")
    (made.conf_dir / "10-main.conflist").write_text(json.dumps(MAIN))
    try:
        made.start_manager(
            manager_access.kubeconfig, manager_access.namespace, "--taint-check-interval", "1h"
        )
        await eventually(lambda: "could not remove" in made.manager_log.read_text())
        await create_node_object(admin_objects, made.node_name)
        assert "example.com/kept" in await eventually(lambda: _without_taint(kube, made.node_name))
    finally:
        made.destroy()
        await admin_objects.delete("v1", "Node", made.node_name)


async def _without_taint(kube: KubeObjects, name: str) -> list[str] | None:
    keys = await taint_keys(kube, name)
    return None if kube_names.CNI_NOT_READY_TAINT_KEY in keys else keys


async def test_a_main_configuration_it_cannot_chain_into_is_left_alone(
    node: CniNode, kube: KubeObjects, manager_access: ManagerAccess
) -> None:
    (node.conf_dir / "10-main.conflist").write_text('{"cniVersion": "0.2.0", "plugins": []}')
    node.start_manager(manager_access.kubeconfig, manager_access.namespace, installed=False)
    await eventually(lambda: "not installed" in node.manager_log.read_text())
    assert "cniVersion '0.2.0'" in node.manager_log.read_text()
    assert not node.conflist_path.exists()
    # Not installed: the taint stays.
    assert kube_names.CNI_NOT_READY_TAINT_KEY in await taint_keys(kube, node.node_name)
    assert node.stop_manager() == 0


async def test_the_conflist_is_removed_on_stop_only_when_the_uninstall_switch_says_so(
    node: CniNode, kube: KubeObjects, manager_access: ManagerAccess
) -> None:
    configmap = f"uninstall-{uuid.uuid4().hex[:6]}"
    flags = ("--cni-uninstall-configmap-name", configmap)

    node.start_manager(manager_access.kubeconfig, manager_access.namespace, *flags)
    assert node.stop_manager() == 0
    assert node.conflist_path.exists()  # no ConfigMap: keep

    succeeded(
        await kube.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": configmap, "namespace": manager_access.namespace},
                "data": {"uninstall": "false"},
            }
        )
    )
    node.start_manager(manager_access.kubeconfig, manager_access.namespace, *flags)
    assert node.stop_manager() == 0
    assert node.conflist_path.exists()  # "false": keep

    succeeded(
        await kube.patch(
            "v1", "ConfigMap", configmap, {"data": {"uninstall": "true"}}, manager_access.namespace
        )
    )
    node.start_manager(manager_access.kubeconfig, manager_access.namespace, *flags)
    assert node.stop_manager() == 0
    assert not node.conflist_path.exists()
    assert (node.bin_dir / "kube-egress-cni").exists()  # pods set up before still need DEL
    assert "removed" in node.manager_log.read_text()
    await kube.delete("v1", "ConfigMap", configmap, manager_access.namespace)


async def test_metrics_count_requests_by_outcome_and_a_failed_install(
    node: CniNode, manager_access: ManagerAccess
) -> None:
    """The manager's /metrics: kube-egress-gateway's CNI configuration failure counter moves when
    the main configuration cannot be chained into, and the plugin's requests are counted by
    method and outcome."""
    (node.conf_dir / "10-main.conflist").write_text('{"cniVersion": "0.2.0", "plugins": []}')
    node.start_manager(manager_access.kubeconfig, manager_access.namespace, installed=False)
    await eventually(lambda: "not installed" in node.manager_log.read_text())

    failed = await scrape(node.metrics_port)
    assert failed.value("cnimanager_cni_config_operation_failures_total", operation="install") == 1
    assert failed.types["cnimanager_podendpoint_operation_failures"] == "counter"

    client = ManagerClient(str(node.socket_path))
    missing = PodRef(manager_access.namespace, f"absent-{uuid.uuid4().hex[:6]}")
    for _ in range(2):
        try:
            await asyncio.to_thread(client.pod_retrieve, missing)
        except ManagerError as err:
            assert err.kind == "PodNotFound"
        else:
            raise AssertionError("a pod that does not exist was found")
    await asyncio.to_thread(client.status)

    answered = await scrape(node.metrics_port)
    assert (
        answered.value(
            "egressgw_cni_manager_requests_total", method="PodRetrieve", outcome="PodNotFound"
        )
        == 2
    )
    assert answered.value("egressgw_cni_manager_requests_total", method="Status", outcome="ok") == 1
    assert answered.value("egressgw_cni_manager_request_duration_seconds_count") == 3
    assert node.stop_manager() == 0
