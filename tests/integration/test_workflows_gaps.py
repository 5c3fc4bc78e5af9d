"""Issue 3's remaining workflow scenarios on the real dev server with the emulators: private
VM-pool mode, Azure refusals, transient Azure failures, the Events a user sees with kubectl, and
the search attributes.

Set EGRESSGW_RECORD_HISTORIES=1 to (re)write these runs' histories under tests/replay/;
test_workflows_replay.py replays every file there.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.network.aio import NetworkManagementClient
from azure.mgmt.network.models import (
    PublicIPPrefix,
    PublicIPPrefixPropertiesFormat,
    PublicIPPrefixSku,
)
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata

from activities.temporal.single_writers import load_balancer_workflow_id
from contracts import kube_names, resource_names, search_attributes
from contracts.activity_io import SgcRef
from contracts.gateway_config import StaticGatewayConfigurationSpec
from contracts.workflow_io import SpecDelivery
from sim.arm.faults import FaultRule
from sim.topology import Topology, VmssPool
from tests.fixtures import histories
from tests.fixtures.arm import client_kwargs
from tests.integration import test_workflows as base
from tests.integration.test_workflows import (
    NAMESPACE,
    SECRET_NAMESPACE,
    G,
    P,
    Stack,
    StackOptions,
    V,
    condition,
    wait_for,
)

# The workflow tests' fixtures, shared by name.
arm_topology = base.arm_topology
kube_async_client = base.kube_async_client
stack = base.stack


@pytest.fixture
def stack_options() -> StackOptions:
    # No batching window: these scenarios send one request at a time to each single writer, and
    # the single writers then schedule no timer (a sub-second server timer fires about 1 s late).
    return StackOptions(batch_quiet=timedelta(0))


KUBECTL = Path("/usr/bin/kubectl")
OTHER_SUBSCRIPTION = "00000000-0000-0000-0000-0000000000ff"


# --- Helpers -------------------------------------------------------------------------------------


async def record(stack: Stack, scenario: str, workflow_ids: dict[str, str]) -> None:
    """Write the named workflows' histories for the replay test (only when asked to)."""
    await histories.record(stack.client, scenario, workflow_ids)


def config_id(sgc: SgcRef) -> str:
    return resource_names.gateway_config_workflow_id(sgc.namespace, sgc.name)


def single_writer_ids(stack: Stack, pool_name: str) -> dict[str, str]:
    return {
        "lb": load_balancer_workflow_id(stack.settings.scope),
        "pool": resource_names.gateway_pool_workflow_id(
            stack.topology.subscription_id, stack.topology.resource_group, pool_name
        ),
    }


def nic_ip_configs(stack: Stack, nic_name: str) -> dict[str, str]:
    """ipConfiguration name -> private IP of one NIC, as ARM returns it."""
    nic = stack.arm_resource(
        f"{stack.rg_id}/providers/Microsoft.Network/networkInterfaces/{nic_name}"
    )
    assert nic is not None
    return {
        ip["name"]: ip["properties"].get("privateIPAddress", "")
        for ip in nic["properties"]["ipConfigurations"]
    }


async def nothing_left_behind(stack: Stack, sgc: SgcRef) -> None:
    assert stack.load_balancer() is None
    assert stack.prefix(sgc.uid) is None
    assert not any(n.startswith("egressgateway-") for n in stack.vmss_ip_config_names())
    secrets = await stack.core.list_namespaced_secret(SECRET_NAMESPACE)
    assert [s.metadata.name for s in secrets.items] == []


async def create_prefix(
    network: NetworkManagementClient, stack: Stack, rg: str, name: str, length: int
) -> str:
    poller = await network.public_ip_prefixes.begin_create_or_update(
        rg,
        name,
        PublicIPPrefix(
            location=stack.topology.location,
            sku=PublicIPPrefixSku(name="Standard"),
            properties=PublicIPPrefixPropertiesFormat(
                prefix_length=length, public_ip_address_version="IPv4"
            ),
        ),
    )
    made = await poller.result()
    assert made.id is not None
    return made.id


async def activity_completions(stack: Stack, sgc: SgcRef, prefix: str) -> int:
    """How many activities whose ID starts with `prefix` the configuration's workflow completed."""
    history = await stack.handle(sgc).fetch_history()
    scheduled: dict[int, str] = {}
    done = 0
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_id
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            started = event.activity_task_completed_event_attributes.scheduled_event_id
            done += scheduled.get(started, "").startswith(prefix)
    return done


# --- 1. Private VM-pool mode ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "stack_options", [StackOptions(drift_check_seconds=1, batch_quiet=timedelta(0))]
)
async def test_private_vm_pool_mode_keeps_its_private_ips(stack: Stack) -> None:
    vm_pool = stack.topology.vm_pools[0]
    spec = StaticGatewayConfigurationSpec(
        gateway_nodepool_name=vm_pool.pool_name, provision_public_ips=False
    )
    sgc = await stack.create_sgc("private", spec)
    ours = resource_names.managed_resource_name(sgc.uid)
    nic_names = [vm_pool.nic_name(i) for i in range(vm_pool.vm_count)]

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    assert status.phase == "Ready", status.message
    private_ips = {nic: nic_ip_configs(stack, nic)[ours] for nic in nic_names}
    assert all(private_ips.values()) and len(set(private_ips.values())) == vm_pool.vm_count
    obj = await stack.get_sgc("private")
    assert obj is not None
    st = obj["status"]
    assert set(st["egressIpPrefix"].split(",")) == set(private_ips.values())
    profile = st["gatewayServerProfile"]
    assert profile["ip"] == status.frontend_ip and profile["port"] == 6000
    assert profile["publicKey"]
    assert profile["privateKeySecretRef"]["name"] == resource_names.gateway_secret_name(sgc.uid)
    assert condition(obj, "Ready")["status"] == "True"
    assert stack.prefix(sgc.uid) is None  # private mode: no public IP prefix at all

    # A drift pass re-reads the NICs and keeps the addresses.
    first_passes = await activity_completions(stack, sgc, "ipconfig/ensure/")

    async def drift_pass_done() -> bool:
        return await activity_completions(stack, sgc, "ipconfig/ensure/") > first_passes

    await wait_for(drift_pass_done, timeout=30, what="a drift pass over the VM pool")
    assert {nic: nic_ip_configs(stack, nic)[ours] for nic in nic_names} == private_ips

    # A spec update (another excluded CIDR) keeps them too.
    updated = StaticGatewayConfigurationSpec(
        gateway_nodepool_name=vm_pool.pool_name,
        provision_public_ips=False,
        exclude_cidrs=("10.0.0.0/8",),
    )
    again = await stack.apply(SpecDelivery(sgc=sgc, generation=2, spec=updated))
    assert again.phase == "Ready", again.message
    assert {nic: nic_ip_configs(stack, nic)[ours] for nic in nic_names} == private_ips
    assert set(again.egress_ip_prefix.split(",")) == set(private_ips.values())
    obj = await stack.get_sgc("private")
    assert obj is not None and obj["status"]["observedGeneration"] == 2
    assert obj["status"]["egressIpPrefix"] == st["egressIpPrefix"]

    # Deletion removes our ipConfig from every NIC (the NICs themselves are the pool's).
    await stack.custom.delete_namespaced_custom_object(G, V, NAMESPACE, P, "private")
    final = await stack.apply(SpecDelivery(sgc=sgc, generation=2, spec=updated, deleting=True))
    assert final.phase == "Deleted"
    for nic in nic_names:
        assert ours not in nic_ip_configs(stack, nic)
    assert stack.load_balancer() is None
    assert await stack.get_sgc("private") is None
    await record(
        stack,
        "private_vm_pool",
        {"config": config_id(sgc), **single_writer_ids(stack, vm_pool.pool_name)},
    )


# --- 3. Azure refusals ---------------------------------------------------------------------------


async def _missing_pool(
    stack: Stack, network: NetworkManagementClient, credential: Any
) -> StaticGatewayConfigurationSpec:
    return StaticGatewayConfigurationSpec(gateway_nodepool_name="nosuchpool")


async def _byo_other_subscription(
    stack: Stack, network: NetworkManagementClient, credential: Any
) -> StaticGatewayConfigurationSpec:
    # A real prefix in another subscription of the same tenant: it exists, and still is refused.
    elsewhere = Topology(
        subscription_id=OTHER_SUBSCRIPTION, resource_group="elsewhere", vmss_pools=(), vm_pools=()
    )
    stack.arm.seed(elsewhere)
    other = NetworkManagementClient(credential, OTHER_SUBSCRIPTION, **client_kwargs(stack.arm))
    try:
        prefix_id = await create_prefix(other, stack, "elsewhere", "theirs", 31)
    finally:
        await other.close()
    return stack.vmss_spec(public_ip_prefix_id=prefix_id)


async def _byo_wrong_length(
    stack: Stack, network: NetworkManagementClient, credential: Any
) -> StaticGatewayConfigurationSpec:
    prefix_id = await create_prefix(network, stack, stack.topology.resource_group, "short", 30)
    return stack.vmss_spec(public_ip_prefix_id=prefix_id)


async def _quota_on_prefix_put(
    stack: Stack, network: NetworkManagementClient, credential: Any
) -> StaticGatewayConfigurationSpec:
    # Azure's answer when a subscription has used up its public IP quota; FaultRule is built
    # directly because the JSON fault API only offers 5xx for "error".
    stack.arm.faults.add(
        FaultRule(
            effect="error",
            method="PUT",
            resource_type="publicIPPrefixes",
            status=400,
            code="PublicIPCountLimitReached",
            message="Cannot create more than 10 public IP addresses for this subscription in"
            " this region.",
        )
    )
    return stack.vmss_spec()


# (setup, what the user reads, the Azure call that was refused or None)
REFUSALS: dict[str, tuple[Any, str, tuple[str, str] | None]] = {
    "missing-pool": (_missing_pool, "nosuchpool", None),
    "byo-other-subscription": (
        _byo_other_subscription,
        "the prefix must be in the same subscription",
        ("GET", "publicIPPrefixes"),
    ),
    "byo-wrong-length": (
        _byo_wrong_length,
        "is a /30 prefix, but the gateway pool needs a /31 prefix",
        ("GET", "publicIPPrefixes"),
    ),
    "quota-on-prefix-put": (
        _quota_on_prefix_put,
        "Cannot create more than 10 public IP addresses",
        ("PUT", "publicIPPrefixes"),
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_azure_refusal_is_reported_once_and_leaves_nothing(
    stack: Stack,
    async_network_client: Callable[..., Awaitable[NetworkManagementClient]],
    arm_async_credential: Any,
    case: str,
) -> None:
    setup, expected, refused_call = REFUSALS[case]
    network = await async_network_client()
    spec = await setup(stack, network, arm_async_credential)
    sgc = await stack.create_sgc(case, spec)
    stack.arm.request_log.clear()

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    assert status.phase == "Degraded"
    assert expected in status.message
    obj = await stack.get_sgc(case)
    assert obj is not None
    degraded = condition(obj, "Degraded")
    assert degraded["status"] == "True" and expected in degraded["message"]
    assert condition(obj, "Ready")["status"] == "False"
    warnings = [m for t, r, m in await stack.events(sgc) if t == "Warning"]
    assert any(expected in m for m in warnings)
    log = stack.arm.request_log
    if refused_call is None:
        # Refused from one look at the resource group's scale sets and VMs, not retried, and
        # before anything was created.
        assert log.count("GET", "virtualMachineScaleSets") == 1
        assert log.count("GET", "virtualMachines") == 1
        assert log.writes() == 0
    elif case == "byo-other-subscription":
        assert log.count(*refused_call) == 0  # refused from the ID alone
    else:
        assert log.count(*refused_call) == 1  # not retried
    await nothing_left_behind(stack, sgc)
    if spec.public_ip_prefix_id:
        assert stack.arm_resource(spec.public_ip_prefix_id) is not None  # the user's, untouched
    if case in ("missing-pool", "quota-on-prefix-put"):
        await record(stack, f"refused_{case.replace('-', '_')}", {"config": config_id(sgc)})


FOUR_INSTANCES = Topology(
    resource_group=f"egressgw-{uuid.uuid4().hex[:8]}",
    vmss_pools=(
        VmssPool(
            pool_name="gwpool",
            vmss_name="aks-gwpool-87654321-vmss",
            instance_count=4,
            ip_prefix_size=31,
        ),
    ),
)


@pytest.mark.parametrize("arm_topology", [FOUR_INSTANCES])
async def test_prefix_too_small_for_the_pool_is_refused_without_azure_writes(
    stack: Stack,
) -> None:
    spec = stack.vmss_spec()  # /31: two addresses for four instances
    sgc = await stack.create_sgc("crowded", spec)
    stack.arm.request_log.clear()

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    assert status.phase == "Degraded"
    expected = "a /31 public IP prefix holds 2 addresses but gateway pool"
    assert expected in status.message and "4 instances" in status.message
    obj = await stack.get_sgc("crowded")
    assert obj is not None and expected in condition(obj, "Degraded")["message"]
    assert stack.arm.request_log.writes() == 0
    await nothing_left_behind(stack, sgc)


# --- 4. Transient Azure failures -----------------------------------------------------------------

TARGETS = (
    ("PUT", "loadBalancers"),
    ("PUT", "virtualMachineScaleSets"),
    ("PUT", "virtualMachineScaleSets/virtualMachines"),  # an instance update
)
FAULTS: dict[str, dict[str, Any]] = {
    "500": {"effect": "error", "status": 500},
    "503-retry-after": {"effect": "error", "status": 503, "retry_after": 1},
    "failed-operation": {"effect": "fail-operation"},
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_transient_azure_failures_converge(stack: Stack, fault: str) -> None:
    rules = [
        stack.arm.faults.add(method=method, resource_type=kind, count=1, **FAULTS[fault])
        for method, kind in TARGETS
    ]
    spec = stack.vmss_spec()
    sgc = await stack.create_sgc(f"bumpy-{fault}", spec)

    status = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))

    assert status.phase == "Ready", status.message
    assert [rule.hits for rule in rules] == [1, 1, 1]
    obj = await stack.get_sgc(f"bumpy-{fault}")
    assert obj is not None and condition(obj, "Ready")["status"] == "True"
    assert obj["status"]["egressIpPrefix"] == status.egress_ip_prefix
    lb = stack.load_balancer()
    assert lb is not None
    assert [r["name"] for r in lb["properties"]["loadBalancingRules"]] == [sgc.uid]
    assert resource_names.managed_resource_name(sgc.uid) in stack.vmss_ip_config_names()
    await record(
        stack,
        f"transient_{fault.replace('-', '_')}",
        {"config": config_id(sgc), **single_writer_ids(stack, stack.vmss_pool.vmss_name)},
    )


# --- 5. Events a user sees, and the search attributes ---------------------------------------------


def kubectl(kubeconfig: Path, home: Path, *args: str) -> str:
    result = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(home), "KUBECACHEDIR": str(home / "cache")},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def described_events(text: str) -> list[tuple[str, str, str]]:
    """(type, reason, message) rows of the Events table in `kubectl describe` output."""
    _, _, table = text.partition("\nEvents:")
    rows = []
    for line in table.splitlines()[3:]:
        fields = re.split(r"\s{2,}", line.strip(), maxsplit=4)
        if len(fields) == 5:
            rows.append((fields[0], fields[1], fields[4]))
    return rows


@pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl is not installed")
async def test_one_life_as_kubectl_describe_shows_it(
    stack: Stack,
    kubeconfig_path: Path,
    tmp_path: Path,
    async_network_client: Callable[..., Awaitable[NetworkManagementClient]],
) -> None:
    home = tmp_path / "kubectl-home"
    home.mkdir()

    def describe(name: str) -> list[tuple[str, str, str]]:
        text = kubectl(kubeconfig_path, home, "describe", P, name, "-n", NAMESPACE)
        return described_events(text)

    spec = stack.vmss_spec()
    sgc = await stack.create_sgc("lifecycle", spec)
    ready = await stack.apply(SpecDelivery(sgc=sgc, generation=1, spec=spec))
    assert ready.phase == "Ready", ready.message

    events = describe("lifecycle")
    assert ("Normal", "Reconciling", "provisioning generation 1") in events
    reconciled = [m for t, r, m in events if (t, r) == ("Normal", "Reconciled")]
    assert reconciled and ready.egress_ip_prefix in reconciled[0]

    # Visible to operators: the configuration is found by phase, name and pool.
    query = (
        f"{search_attributes.PHASE.name} = 'Ready' AND "
        f"{search_attributes.NAME.name} = 'lifecycle' AND "
        f"{search_attributes.NAMESPACE.name} = '{NAMESPACE}' AND "
        f"{search_attributes.POOL.name} = '{stack.vmss_pool.vmss_name}'"
    )

    async def listed() -> bool:
        found = [w.id async for w in stack.client.list_workflows(query)]
        return found == [config_id(sgc)]

    await wait_for(listed, timeout=30, what=f"the workflow listed by {query!r}")

    # A bring-your-own prefix of the wrong length: Degraded, with the reason in a Warning.
    network = await async_network_client()
    short = await create_prefix(network, stack, stack.topology.resource_group, "short", 30)
    byo = stack.vmss_spec(public_ip_prefix_id=short)
    degraded = await stack.apply(SpecDelivery(sgc=sgc, generation=2, spec=byo))
    assert degraded.phase == "Degraded"
    warnings = [m for t, r, m in describe("lifecycle") if (t, r) == ("Warning", "ReconcileError")]
    assert warnings and "needs a /31 prefix" in warnings[0]

    async def listed_degraded() -> bool:
        query = f"{search_attributes.PHASE.name} = 'Degraded'"
        return config_id(sgc) in [w.id async for w in stack.client.list_workflows(query)]

    await wait_for(listed_degraded, timeout=30, what="the workflow listed as Degraded")
    described = await stack.handle(sgc).describe()
    assert described.search_attributes[search_attributes.PHASE.name] == ["Degraded"]
    # The Web UI's Current Details say what the workflow waits for now.
    metadata = await stack.handle(sgc).query(
        "__temporal_workflow_metadata", result_type=WorkflowMetadata
    )
    details = metadata.current_details
    assert "**Degraded**" in details and "generation 2" in details
    assert "waiting for a new spec or the drift timer" in details

    # Deletion, slowed down so that the object is still there to describe while it happens.
    stack.arm.set_latency({"DELETE publicIPPrefixes": 1.5})
    kubectl(kubeconfig_path, home, "delete", P, "lifecycle", "-n", NAMESPACE, "--wait=false")
    handle = await stack.deliver(SpecDelivery(sgc=sgc, generation=2, spec=byo, deleting=True))

    async def deleting_shown() -> bool:
        return ("Normal", kube_names.EVENT_DELETING) in [
            (t, r) for t, r, _ in describe("lifecycle")
        ]

    await wait_for(deleting_shown, timeout=30, what="a Deleting event in kubectl describe")
    final = await handle.result()
    assert final.phase == "Deleted"
    await nothing_left_behind(stack, sgc)
    await record(stack, "events_lifecycle", {"config": config_id(sgc)})
