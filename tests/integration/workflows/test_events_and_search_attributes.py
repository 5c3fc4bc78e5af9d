"""What a user sees of a configuration's life: its Events in `kubectl describe` (the kubectl
built from the pinned Go modules) and the workflow found by the search attributes and shown with
its current details, on the real dev server, the real API server and the ARM emulator
(tests/fixtures/workflow_stack.py).

Set EGRESSGW_RECORD_HISTORIES=1 to (re)write this run's history under tests/replay/next/;
tests/integration/test_workflows_replay.py replays every file there.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from azure.mgmt.network.aio import NetworkManagementClient
from temporalio.api.sdk.v1 import WorkflowMetadata

from contracts import kube_names, search_attributes
from contracts.workflow_io import SpecDelivery
from tests.fixtures.waiting import wait_for
from tests.fixtures.workflow_stack import (
    P,
    Stack,
    StackOptions,
    config_id,
    create_prefix,
    nothing_left_behind,
    record_histories,
)


@pytest.fixture
def stack_options() -> StackOptions:
    # No batching window: these scenarios send one request at a time to each single writer, and
    # the single writers then schedule no timer (a sub-second server timer fires about 1 s late).
    return StackOptions(batch_quiet=timedelta(0))


def kubectl(kubectl_path: Path, kubeconfig: Path, home: Path, *args: str) -> str:
    result = subprocess.run(
        [str(kubectl_path), "--kubeconfig", str(kubeconfig), *args],
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


@pytest.mark.kubectl
async def test_one_life_as_kubectl_describe_shows_it(
    stack: Stack,
    kubectl_path: Path,
    tmp_path: Path,
    async_network_client: Callable[..., Awaitable[NetworkManagementClient]],
) -> None:
    home = tmp_path / "kubectl-home"
    home.mkdir()
    # The user, with the admin's credentials.
    kubeconfig = stack.kube.cluster.admin_kubeconfig

    def describe(name: str) -> list[tuple[str, str, str]]:
        text = kubectl(kubectl_path, kubeconfig, home, "describe", P, name, "-n", stack.namespace)
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
        f"{search_attributes.NAMESPACE.name} = '{stack.namespace}' AND "
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
    kubectl(
        kubectl_path,
        kubeconfig,
        home,
        "delete",
        P,
        "lifecycle",
        "-n",
        stack.namespace,
        "--wait=false",
    )
    handle = await stack.deliver(SpecDelivery(sgc=sgc, generation=2, spec=byo, deleting=True))

    async def deleting_shown() -> bool:
        return ("Normal", kube_names.EVENT_DELETING) in [
            (t, r) for t, r, _ in describe("lifecycle")
        ]

    await wait_for(deleting_shown, timeout=30, what="a Deleting event in kubectl describe")
    final = await handle.result()
    assert final.phase == "Deleted"
    await nothing_left_behind(stack, sgc)
    await record_histories(stack, "events_lifecycle", {"config": config_id(sgc)})
