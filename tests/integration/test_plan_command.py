"""`egressgw plan -f sgc.yaml` on the real stack (the ARM emulator, the session's API server, an
`egressgw controller` process applying what the test then plans again): a new configuration's
creates, nothing left to do once it is applied, a changed spec's updates and deletes, a pool
moved to another pool (its old nodes and ipConfigs go, the new ones come), refusals (one of them
a move whose public IP prefix is too small, which the controller then meets too), and no
write anywhere: the emulator's request log holds only reads and the API server (through a
logging proxy) only GETs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts import kube_names, resource_names
from sim.arm.request_log import READ_METHODS
from tests.fixtures.cluster import Cluster
from tests.fixtures.controller_stack import ControllerStack
from tests.fixtures.kube_proxy import KubeProxy
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow

G, V, P = kube_names.API_GROUP, kube_names.API_VERSION, kube_names.SGC_PLURAL


class Planner:
    """Runs `egressgw plan` as a user would, against the stack, and checks it wrote nothing."""

    def __init__(self, stack: ControllerStack, proxy: KubeProxy, kubeconfig: Path, root: Path):
        self.stack = stack
        self.proxy = proxy
        self.kubeconfig = kubeconfig
        self.root = root

    def manifest(self, name: str, spec: dict[str, Any]) -> Path:
        path = self.root / f"{name}.yaml"
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": kube_names.GROUP_VERSION,
                    "kind": kube_names.SGC_KIND,
                    "metadata": {"name": name, "namespace": self.stack.namespace},
                    "spec": spec,
                }
            )
        )
        return path

    async def run(
        self, manifest: Path, *extra: str, reads_azure: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`reads_azure` False: a refusal the controller makes before reading Azure."""
        self.stack.arm.request_log.clear()
        self.proxy.requests.clear()
        # In a thread: the proxy serves on this event loop.
        done = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "egressgw",
                "plan",
                "-f",
                str(manifest),
                "--kubeconfig",
                str(self.kubeconfig),
                "--cloud-config",
                str(self.stack.cloud_config),
                "--azure-ca-file",
                str(self.stack.arm.ca_path),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        arm = self.stack.arm.request_log.entries
        if not reads_azure:
            assert arm == [], [(e.method, e.path) for e in arm]
        assert arm or not reads_azure, f"the plan read nothing from Azure: {done.stdout}"
        assert {e.method for e in arm} <= READ_METHODS, [(e.method, e.path) for e in arm]
        kube = self.proxy.sent()
        assert kube, f"the plan read nothing from the API server: {done.stderr}"
        assert {r.method for r in kube} == {"GET"}, [(r.method, r.path) for r in kube]
        return done

    async def plan(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        done = await self.run(self.manifest(name, spec), "-o", "json")
        assert done.returncode == 0, done.stdout + done.stderr
        items: list[dict[str, Any]] = json.loads(done.stdout)["items"]
        assert len(items) == 1
        return items[0]


@pytest.fixture
def planner(
    controller_stack: ControllerStack, kube_proxy: KubeProxy, kube_cluster: Cluster, tmp_path: Path
) -> Planner:
    kubeconfig = kube_proxy.kubeconfig_for(kube_cluster.admin_kubeconfig, tmp_path / "admin.yaml")
    return Planner(controller_stack, kube_proxy, kubeconfig, tmp_path)


def changes(item: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    """(action, resource) -> details."""
    return {(c["action"], c["resource"]): c["details"] for c in item["changes"]}


def resources(item: dict[str, Any], action: str, prefix: str) -> list[str]:
    return sorted(r for a, r in changes(item) if a == action and r.startswith(prefix))


async def apply(stack: ControllerStack, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """What `kubectl apply` and the controller do: the object created or its spec replaced, then
    Ready for that generation; the controller stopped again, so only the plan talks to Azure."""
    controller = await stack.start_controller(f"controller-{len(stack.controllers)}")
    existing = await stack.get_sgc(name)
    if existing is None:
        await stack.create_sgc(name, spec)
    else:
        await stack.custom.patch_namespaced_custom_object(
            G, V, stack.namespace, P, name, [{"op": "replace", "path": "/spec", "value": spec}]
        )
    ready = await stack.wait_ready(name, timeout=90)
    assert await controller.stop() == 0
    return ready


def vmss_nodes(stack: ControllerStack) -> list[str]:
    pool = stack.topology.vmss_pools[0]
    return [pool.computer_name(i) for i in range(pool.instance_count)]


async def test_a_new_configuration_is_created_everywhere_then_nothing_is_left_to_do(
    planner: Planner,
) -> None:
    stack = planner.stack
    spec = stack.vmss_spec()
    vmss = stack.topology.vmss_pools[0].vmss_name

    new = await planner.plan("fresh", spec)

    assert new["uid"] is None and new["valid"] and new["refusal"] is None
    planned = changes(new)
    assert ("create", "public IP prefix egressgateway-<uid>") in planned
    lb = planned[("create", f"load balancer {resource_names.DEFAULT_LOAD_BALANCER_NAME}")]
    assert "added rule <uid> on port 6000" in lb
    assert any(
        "added ipConfig egressgateway-<uid>" in d for d in planned[("update", f"VMSS {vmss} model")]
    )
    assert len(resources(new, "update", f"VMSS {vmss} instance")) == 2
    assert resources(new, "create", "node ") == [f"node {n}" for n in vmss_nodes(stack)]
    for node in vmss_nodes(stack):
        (detail,) = planned[("create", f"node {node}")]
        assert detail.startswith("gateway wg-6000: frontend (allocated by Azure):6000")

    ready = await apply(stack, "fresh", spec)
    again = await planner.plan("fresh", spec)

    assert again["uid"] == ready["metadata"]["uid"]
    assert again["changes"] == [], again


async def test_a_changed_spec_updates_the_ipconfigs_and_releases_the_managed_prefix(
    planner: Planner,
) -> None:
    stack = planner.stack
    ready = await apply(stack, "goes-private", stack.vmss_spec())
    uid = ready["metadata"]["uid"]
    vmss = stack.topology.vmss_pools[0].vmss_name
    private = {**stack.vmss_spec(), "provisionPublicIps": False}
    del private["gatewayVmssProfile"]["publicIpPrefixSize"]

    item = await planner.plan("goes-private", private)

    planned = changes(item)
    assert ("delete", f"public IP prefix egressgateway-{uid}") in planned
    model = planned[("update", f"VMSS {vmss} model")]
    assert model == [f"replaced ipConfig egressgateway-{uid} (its public IP differed)"]
    assert len(resources(item, "update", f"VMSS {vmss} instance")) == 2
    # Same rule, same port, same secondary IPs: the gateways on the nodes stay as they are.
    assert not any(resource.startswith("node ") for _, resource in planned)
    assert item["refusal"] is None

    await apply(stack, "goes-private", private)
    assert (await planner.plan("goes-private", private))["changes"] == []


async def test_a_configuration_moved_to_another_pool_leaves_the_old_one_for_the_new(
    planner: Planner,
) -> None:
    stack = planner.stack
    ready = await apply(stack, "moves", stack.vmss_spec())
    uid = ready["metadata"]["uid"]
    vmss = stack.topology.vmss_pools[0].vmss_name
    vm_pool = stack.topology.vm_pools[0]
    # Private mode: a /31 managed prefix could not hold the new pool's public IPs while the old
    # pool's still hold it (the workflow registers with the new pool before leaving the old).
    moved = {"gatewayNodepoolName": vm_pool.pool_name, "provisionPublicIps": False}

    item = await planner.plan("moves", moved)

    planned = changes(item)
    lb = planned[("update", f"load balancer {resource_names.DEFAULT_LOAD_BALANCER_NAME}")]
    assert f"replaced rule {uid}" in lb
    assert f"added frontend {resource_names.vm_pool_lb_pool_name(vm_pool.pool_name)}" in lb
    assert planned[("update", f"VMSS {vmss} model")][0] == f"removed ipConfig egressgateway-{uid}"
    nics = [vm_pool.nic_name(i) for i in range(vm_pool.vm_count)]
    vms = [vm_pool.vm_name(i) for i in range(vm_pool.vm_count)]
    assert resources(item, "update", "NIC ") == [
        f"NIC {n} ({v})" for n, v in zip(nics, vms, strict=True)
    ]
    assert ("delete", f"public IP prefix egressgateway-{uid}") in planned
    assert resources(item, "delete", "node ") == [f"node {n}" for n in vmss_nodes(stack)]
    assert resources(item, "create", "node ") == [f"node {v}" for v in vms]

    await apply(stack, "moves", moved)
    assert (await planner.plan("moves", moved))["changes"] == []


async def test_a_configuration_the_controller_would_refuse_exits_1_with_the_reason(
    planner: Planner,
) -> None:
    stack = planner.stack
    spec = stack.vmss_spec()
    spec["gatewayVmssProfile"]["vmssName"] = "no-such-vmss"

    done = await planner.run(planner.manifest("nowhere", spec))

    assert done.returncode == 1
    refusal = "! the controller would refuse it: spec.gatewayVmssProfile: gateway VMSS no-such-vmss"
    assert f"{refusal} not found" in done.stdout
    assert done.stdout.rstrip().endswith("Plan: 0 to create, 0 to update, 0 to delete.")


OTHER_SUBSCRIPTION_PREFIX = (
    "/subscriptions/00000000-0000-0000-0000-0000000000ff/resourceGroups/elsewhere"
    "/providers/Microsoft.Network/publicIPPrefixes/theirs"
)


@pytest.mark.parametrize(
    ("case", "change", "refusal"),
    [
        (
            "size-27",
            {"publicIpPrefixSize": 27},
            "spec.gatewayVmssProfile.publicIpPrefixSize: Invalid value: 27: must be 28 to 31",
        ),
        (
            "size-in-private-mode",
            {"provisionPublicIps": False},
            "spec.gatewayVmssProfile.publicIpPrefixSize: Forbidden: 31: may only be set when",
        ),
        (
            "byo-other-subscription",
            {"publicIpPrefixId": OTHER_SUBSCRIPTION_PREFIX},
            "spec.publicIpPrefixId: Invalid value: the prefix is in subscription 00000000-",
        ),
    ],
)
async def test_what_the_controller_refuses_before_azure_the_plan_refuses_without_reading_it(
    planner: Planner, case: str, change: dict[str, Any], refusal: str
) -> None:
    """The same validation as the controller's (contracts/spec_validation.controller_errors):
    the API server accepts these, the controller would refuse them before its first Azure
    request, and so does the plan."""
    spec = planner.stack.vmss_spec()
    if "publicIpPrefixSize" in change:
        spec["gatewayVmssProfile"]["publicIpPrefixSize"] = change.pop("publicIpPrefixSize")
    spec.update(change)

    done = await planner.run(planner.manifest(case, spec), reads_azure=False)

    assert done.returncode == 1, done.stdout + done.stderr
    assert f"! the controller would refuse it: {refusal}" in done.stdout
    assert done.stdout.rstrip().endswith("Plan: 0 to create, 0 to update, 0 to delete.")


async def test_a_move_the_prefix_cannot_hold_is_refused_as_azure_then_refuses_it(
    planner: Planner,
) -> None:
    """A /31 prefix holds the two VMSS instances' IPs; moving to the two-VM pool keeps it and
    registers there before leaving the VMSS, so it would need four."""
    stack = planner.stack
    await apply(stack, "boxed", stack.vmss_spec())
    moved = {"gatewayNodepoolName": stack.topology.vm_pools[0].pool_name}

    done = await planner.run(planner.manifest("boxed", moved))

    assert done.returncode == 1, done.stdout + done.stderr
    assert "(PublicIpPrefixOutOfIpAddresses)" in done.stdout
    controller = await stack.start_controller("controller-move")
    await stack.custom.patch_namespaced_custom_object(
        G, V, stack.namespace, P, "boxed", [{"op": "replace", "path": "/spec", "value": moved}]
    )

    async def refused_by_azure() -> bool:
        obj = await stack.get_sgc("boxed") or {}
        conditions = (obj.get("status") or {}).get("conditions") or []
        return any(
            c["type"] == "Degraded" and "PublicIpPrefixOutOfIpAddresses" in c["message"]
            for c in conditions
        )

    await wait_for(refused_by_azure, 90, "Azure to refuse the new pool's public IPs")
    assert await controller.stop() == 0
