"""The watchers' pure decisions: node → pool, delivery dedup, finalizer, key Secret owner."""

from __future__ import annotations

from typing import Any

from contracts import kube_names, resource_names
from contracts.activity_io import SgcRef
from contracts.gateway_config import StaticGatewayConfigurationSpec
from contracts.workflow_io import SpecDelivery
from kubeclient.list_watch import WatchEvent
from watchers.delivery import already_delivered, delivery_key, spec_delivery
from watchers.node_watcher import membership_changes, pool_workflow_id
from watchers.secret_watcher import metadata_only, secret_owner
from watchers.sgc_watcher import finalizer_addition_patch

SUB = "00000000-0000-0000-0000-000000000001"
VMSS_ID = resource_names.vmss_id(SUB, "MC_rg_aks_eastus", "aks-gwpool-12345678-vmss")


def node(name: str, provider_id: str, pool: str = "") -> dict[str, Any]:
    labels = {kube_names.AKS_AGENT_POOL_LABEL: pool} if pool else {}
    return {"metadata": {"name": name, "labels": labels}, "spec": {"providerID": provider_id}}


def test_a_vmss_node_belongs_to_its_scale_set_pool() -> None:
    found = pool_workflow_id(node("n0", f"azure://{VMSS_ID}/virtualMachines/0"))
    # ARM is case-insensitive and AKS lower-cases resource groups in provider IDs: one workflow.
    lowered = pool_workflow_id(node("n0", f"azure://{VMSS_ID.lower()}/virtualMachines/0"))
    assert (
        found
        == lowered
        == resource_names.gateway_pool_workflow_id(
            SUB, "MC_rg_aks_eastus", "aks-gwpool-12345678-vmss"
        )
    )


def test_a_standalone_vm_node_belongs_to_its_agent_pool() -> None:
    vm = resource_names.vm_id(SUB, "rg", "aks-gwvmpool-0")
    assert pool_workflow_id(node("aks-gwvmpool-0", f"azure://{vm}", pool="gwvmpool")) == (
        resource_names.gateway_pool_workflow_id(SUB, "rg", "gwvmpool")
    )
    assert pool_workflow_id(node("aks-gwvmpool-0", f"azure://{vm}")) is None  # no pool label


def test_nodes_outside_azure_or_with_odd_provider_ids_have_no_pool() -> None:
    assert pool_workflow_id(node("kind-worker", "kind://docker/kind/kind-worker")) is None
    assert pool_workflow_id(node("n", "azure:///subscriptions/s")) is None
    assert pool_workflow_id({"metadata": {"name": "bare"}}) is None
    disk = resource_names.ArmResourceId(SUB, "rg", "Microsoft.Compute", ("disks",), ("d",))
    assert pool_workflow_id(node("n", f"azure://{disk}")) is None


def test_pool_membership_changes_only_on_join_leave_or_move() -> None:
    n0 = node("n0", f"azure://{VMSS_ID}/virtualMachines/0")
    pool = pool_workflow_id(n0)
    assert pool is not None
    members, changed = membership_changes({}, WatchEvent("ADDED", n0, synthetic=True))
    assert members == {"n0": pool} and changed == (pool,)
    members, changed = membership_changes(members, WatchEvent("MODIFIED", n0))
    assert changed == ()  # a status update of a known member
    other_vmss = resource_names.vmss_id(SUB, "rg", "other-vmss")
    moved = node("n0", f"azure://{other_vmss}/virtualMachines/0")
    members, changed = membership_changes(members, WatchEvent("MODIFIED", moved))
    assert changed == (pool, pool_workflow_id(moved))
    members, changed = membership_changes(members, WatchEvent("DELETED", moved))
    assert members == {} and changed == (pool_workflow_id(moved),)


def sgc_raw(generation: int = 1, deleting: bool = False, finalizers: Any = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "gw",
        "namespace": "ns",
        "uid": "u1",
        "generation": generation,
        "resourceVersion": "42",
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if finalizers is not None:
        meta["finalizers"] = finalizers
    return {"metadata": meta, "spec": {"gatewayNodepoolName": "gwpool"}}


def test_deleting_is_a_deletion_timestamp_or_a_deleted_object() -> None:
    assert not spec_delivery(sgc_raw()).deleting
    assert spec_delivery(sgc_raw(deleting=True)).deleting
    assert spec_delivery(sgc_raw(), gone=True).deleting
    delivery = spec_delivery(sgc_raw(generation=3))
    assert delivery.sgc == SgcRef("ns", "gw", "u1") and delivery.generation == 3
    assert delivery.spec.gateway_nodepool_name == "gwpool"


def delivery(uid: str = "u1", generation: int = 1, deleting: bool = False) -> SpecDelivery:
    return SpecDelivery(
        SgcRef("ns", "gw", uid), generation, StaticGatewayConfigurationSpec(), deleting
    )


def test_deliveries_already_sent_are_skipped_new_ones_are_not() -> None:
    sent = delivery_key(delivery(generation=2))
    assert already_delivered(sent, delivery(generation=2))  # relist, or our own status write
    assert not already_delivered(sent, delivery(generation=3))
    assert not already_delivered(sent, delivery(generation=2, deleting=True))
    assert not already_delivered(sent, delivery(uid="u2", generation=1))  # recreated object
    assert not already_delivered(None, delivery())
    gone = delivery_key(delivery(generation=3, deleting=True))
    assert already_delivered(gone, delivery(generation=4, deleting=True))  # the final DELETED


def test_finalizer_is_added_once_and_never_to_an_object_being_deleted() -> None:
    assert finalizer_addition_patch(sgc_raw()["metadata"]) == {
        "metadata": {"resourceVersion": "42", "finalizers": [kube_names.SGC_FINALIZER]}
    }
    patch = finalizer_addition_patch(sgc_raw(finalizers=["other"])["metadata"])
    assert patch is not None
    assert patch["metadata"]["finalizers"] == ["other", kube_names.SGC_FINALIZER]
    assert (
        finalizer_addition_patch(sgc_raw(finalizers=[kube_names.SGC_FINALIZER])["metadata"]) is None
    )
    assert finalizer_addition_patch(sgc_raw(deleting=True)["metadata"]) is None


def test_key_secret_owner_comes_from_labels_and_name_and_data_is_dropped() -> None:
    secret: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "sgw-u1",
            "namespace": "egressgw-system",
            "labels": {
                kube_names.SECRET_OWNER_NAMESPACE_LABEL: "ns",
                kube_names.SECRET_OWNER_NAME_LABEL: "gw",
            },
        },
        "data": {"PrivateKey": "c2VjcmV0"},
    }
    assert secret_owner(secret) == (resource_names.ObjectKey("ns", "gw"), "u1")
    assert "data" not in metadata_only(secret)
    unlabelled = {"metadata": {"name": "sgw-u1"}}
    assert secret_owner(unlabelled) is None
    assert secret_owner({**secret, "metadata": {**secret["metadata"], "name": "other"}}) is None


def test_a_long_owner_name_comes_from_the_annotation() -> None:
    """A name longer than a label value holds is derived in the label, whole in the
    annotation."""
    name = "n" * 253
    secret: dict[str, Any] = {
        "metadata": {
            "name": "sgw-u2",
            "labels": {
                kube_names.SECRET_OWNER_NAMESPACE_LABEL: "ns",
                kube_names.SECRET_OWNER_NAME_LABEL: resource_names.owner_name_label_value(name),
            },
            "annotations": {kube_names.SECRET_OWNER_NAME_ANNOTATION: name},
        }
    }
    assert secret_owner(secret) == (resource_names.ObjectKey("ns", name), "u2")
