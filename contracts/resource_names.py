"""Every name the product derives: Temporal workflow IDs, task queues and search attributes;
Azure resource names and ARM resource IDs; node-side names built from configuration data.

Where code meets a name and must tell what it belongs to (an ipConfiguration on a NIC, a rule on
a shared load balancer, a key Secret, an ARM ID), the builder has a parser that inverts it, so no
lookup table is needed. Azure names and IDs compare case-insensitively, as ARM does.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Final

from contracts import kube_names

# --- Temporal: workflow IDs ----------------------------------------------------------------------

_WORKFLOW_ID_ROOT: Final = "egressgw"
_SGC_WORKFLOW_KIND: Final = "sgc"
_LB_WORKFLOW_KIND: Final = "lb"
_POOL_WORKFLOW_KIND: Final = "pool"


@dataclass(frozen=True)
class ObjectKey:
    """A namespaced Kubernetes object's identity."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def _check_segment(what: str, value: str) -> str:
    if not value or "/" in value:
        raise ValueError(f"{what} must be non-empty and contain no '/': {value!r}")
    return value


def gateway_config_workflow_id(namespace: str, name: str) -> str:
    """ID of the per-configuration workflow: `egressgw/sgc/<namespace>/<name>`."""
    _check_segment("namespace", namespace)
    _check_segment("name", name)
    return f"{_WORKFLOW_ID_ROOT}/{_SGC_WORKFLOW_KIND}/{namespace}/{name}"


def _azure_workflow_id(kind: str, subscription: str, resource_group: str, name: str) -> str:
    parts = (
        _check_segment("subscription", subscription),
        _check_segment("resource group", resource_group),
        _check_segment("name", name),
    )
    # ARM names are case-insensitive: one resource must map to one workflow however it is spelt.
    return "/".join((_WORKFLOW_ID_ROOT, kind, *(part.lower() for part in parts)))


def load_balancer_workflow_id(subscription: str, resource_group: str, lb_name: str) -> str:
    """ID of the single writer of one load balancer: `egressgw/lb/<sub>/<rg>/<lb>`."""
    return _azure_workflow_id(_LB_WORKFLOW_KIND, subscription, resource_group, lb_name)


def gateway_pool_workflow_id(subscription: str, resource_group: str, pool_name: str) -> str:
    """ID of the single writer of one gateway pool: `egressgw/pool/<sub>/<rg>/<vmss or pool>`."""
    return _azure_workflow_id(_POOL_WORKFLOW_KIND, subscription, resource_group, pool_name)


# --- Temporal: task queues -----------------------------------------------------------------------

CONTROLLER_TASK_QUEUE: Final = "egressgw-controller"
_NODE_TASK_QUEUE_PREFIX: Final = "egressgw-node-"


def node_task_queue(node_name: str) -> str:
    """Task queue served by the gateway agent on `node_name`."""
    if not node_name:
        raise ValueError("node name must be non-empty")
    return f"{_NODE_TASK_QUEUE_PREFIX}{node_name}"


# --- Azure: tags the product reads ---------------------------------------------------------------

TAG_POOL_NAME: Final = "aks-managed-poolName"
TAG_STATIC_GATEWAY_NIC: Final = "aks-managed-static-gateway-nic"
TAG_GATEWAY_IP_PREFIX_SIZE: Final = "aks-managed-gatewayIPPrefixSize"

# --- Azure: resource names -----------------------------------------------------------------------

DEFAULT_LOAD_BALANCER_NAME: Final = "kubeegressgateway-ilb"
# Every Azure resource and sub-resource the product creates carries this prefix (or is named by
# a UID), so what it owns is obvious in the portal.
MANAGED_RESOURCE_PREFIX: Final = "egressgateway-"
# Upstream's uuid.NewMD5 namespace for VM pools; uuid3 is the same construction.
VM_POOL_ID_NAMESPACE: Final = uuid.UUID("2c96e82c-842f-11f0-8ea5-6bee14278ecd")


def managed_resource_name(uid: str) -> str:
    """Name of the managed public IP prefix and of the NIC ipConfiguration of one SGC."""
    return f"{MANAGED_RESOURCE_PREFIX}{_check_segment('uid', uid)}"


def is_managed_resource_name(name: str) -> bool:
    return name.lower().startswith(MANAGED_RESOURCE_PREFIX) and len(name) > len(
        MANAGED_RESOURCE_PREFIX
    )


def parse_managed_resource_name(name: str) -> str:
    """The SGC UID in a managed resource name (prefix matched case-insensitively)."""
    if not is_managed_resource_name(name):
        raise ValueError(f"not a {MANAGED_RESOURCE_PREFIX}<uid> name: {name!r}")
    return name[len(MANAGED_RESOURCE_PREFIX) :]


def lb_rule_name(uid: str) -> str:
    """Load-balancing rule of one SGC; the health probe has the same name."""
    return _check_segment("uid", uid)


lb_probe_name = lb_rule_name


def parse_lb_rule_name(name: str) -> str:
    """The SGC UID a rule or probe belongs to; other rules on a shared LB are not ours."""
    try:
        return str(uuid.UUID(name))
    except ValueError:
        raise ValueError(f"not a rule or probe named by an SGC UID: {name!r}") from None


def vmss_lb_pool_name(vmss_unique_id: str) -> str:
    """Frontend IP configuration and backend pool name for a VMSS gateway pool."""
    return _check_segment("VMSS uniqueId", vmss_unique_id)


def vm_pool_lb_pool_name(pool_name: str) -> str:
    """Frontend and backend pool name for a VM gateway pool (no uniqueId exists there)."""
    return str(uuid.uuid3(VM_POOL_ID_NAMESPACE, _check_segment("pool name", pool_name)))


_FNV64_OFFSET: Final = 0xCBF29CE484222325
_FNV64_PRIME: Final = 0x100000001B3


def fnv1a_64(data: str) -> int:
    """FNV-1a, 64 bit, of the UTF-8 bytes (Go's hash/fnv New64a)."""
    value = _FNV64_OFFSET
    for byte in data.encode():
        value = ((value ^ byte) * _FNV64_PRIME) & 0xFFFFFFFFFFFFFFFF
    return value


@dataclass(frozen=True)
class VmPoolPublicIpName:
    prefix_name: str
    nic_hash: int  # fnv1a_64 of the NIC name

    def belongs_to(self, nic_name: str) -> bool:
        return self.nic_hash == fnv1a_64(nic_name)


def vm_pool_public_ip_name(prefix_name: str, nic_name: str) -> str:
    """Public IP of one VM-pool NIC, carved from the prefix: `<prefix>-<fnv64a(nic) in hex>`."""
    _check_segment("prefix name", prefix_name)
    return f"{prefix_name}-{fnv1a_64(_check_segment('NIC name', nic_name)):x}"


def parse_vm_pool_public_ip_name(name: str) -> VmPoolPublicIpName:
    prefix_name, dash, digest = name.rpartition("-")
    if not dash or not prefix_name or not 0 < len(digest) <= 16:
        raise ValueError(f"not a <prefix>-<hash> public IP name: {name!r}")
    try:
        nic_hash = int(digest, 16)
    except ValueError:
        raise ValueError(f"not a <prefix>-<hash> public IP name: {name!r}") from None
    return VmPoolPublicIpName(prefix_name=prefix_name, nic_hash=nic_hash)


# --- Kubernetes and node-side names built from configuration data --------------------------------

_SECRET_PREFIX: Final = "sgw-"


def gateway_secret_name(uid: str) -> str:
    """Secret, in the controller's namespace, holding one SGC's gateway WireGuard key pair."""
    return f"{_SECRET_PREFIX}{_check_segment('uid', uid)}"


def parse_gateway_secret_name(name: str) -> str:
    uid = name.removeprefix(_SECRET_PREFIX)
    if uid == name or not uid:
        raise ValueError(f"not a {_SECRET_PREFIX}<uid> secret name: {name!r}")
    return uid


_LABEL_HASH_LENGTH: Final = 10


def owner_name_label_value(name: str) -> str:
    """The key Secret's owning-gateway-config-name label for an SGC called `name`.

    A name that fits a label value (63 characters) is the value, byte for byte as 0.1.0 and
    upstream write it. A longer one (object names go up to 253) becomes its first 52 characters,
    `-` and 10 hex digits of its SHA-256: still unique in practice and a valid label value (an
    object name starts with a letter or digit, the digest ends with one); the whole name goes in
    the annotation kube_names.SECRET_OWNER_NAME_ANNOTATION.
    """
    limit = kube_names.MAX_LABEL_VALUE_LENGTH
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_LABEL_HASH_LENGTH]
    return f"{name[: limit - _LABEL_HASH_LENGTH - 1]}-{digest}"


def probe_path(uid: str) -> str:
    """HTTP path the load balancer probes on each gateway node for one SGC."""
    return f"{kube_names.PROBE_PATH_PREFIX}{_check_segment('uid', uid)}"


# --- ARM resource IDs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmResourceId:
    """A parsed ARM resource ID below a resource group.

    `types` and `names` pair up: ("loadBalancers", "probes") with ("ilb", "<uid>") is the probe
    <uid> of load balancer ilb. A resource group's own ID has no provider, types or names.
    """

    subscription: str
    resource_group: str
    provider: str = ""
    types: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_segment("subscription", self.subscription)
        _check_segment("resource group", self.resource_group)
        if len(self.types) != len(self.names):
            raise ValueError("an ARM ID needs one name per resource type")
        if bool(self.provider) != bool(self.types):
            raise ValueError("an ARM ID has a provider exactly when it names a resource")
        if self.provider:
            _check_segment("provider", self.provider)
        for part in (*self.types, *self.names):
            _check_segment("resource type or name", part)

    @property
    def name(self) -> str:
        """The innermost resource's name (the resource group's for a group ID)."""
        return self.names[-1] if self.names else self.resource_group

    @property
    def resource_type(self) -> str:
        """E.g. `Microsoft.Network/loadBalancers/probes`; empty for a resource group."""
        return "/".join((self.provider, *self.types)) if self.provider else ""

    def __str__(self) -> str:
        text = f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
        if not self.provider:
            return text
        pairs = "".join(f"/{t}/{n}" for t, n in zip(self.types, self.names, strict=True))
        return f"{text}/providers/{self.provider}{pairs}"


def parse_arm_resource_id(resource_id: str) -> ArmResourceId:
    """Parse `/subscriptions/<s>/resourceGroups/<rg>[/providers/<ns>/<type>/<name>[/...]]`.

    Keywords match case-insensitively; names keep the spelling they were given.
    """
    segments = resource_id.split("/")
    malformed = ValueError(f"not an ARM resource ID below a resource group: {resource_id!r}")
    if (
        len(segments) < 5
        or segments[0] != ""
        or segments[1].lower() != "subscriptions"
        or segments[3].lower() != "resourcegroups"
        or not all(segments[1:])
    ):
        raise malformed
    subscription, resource_group = segments[2], segments[4]
    rest = segments[5:]
    if not rest:
        return ArmResourceId(subscription, resource_group)
    if rest[0].lower() != "providers" or len(rest) < 4 or len(rest) % 2 != 0:
        raise malformed
    provider, pairs = rest[1], rest[2:]
    return ArmResourceId(
        subscription, resource_group, provider, tuple(pairs[0::2]), tuple(pairs[1::2])
    )


_NETWORK: Final = "Microsoft.Network"
_COMPUTE: Final = "Microsoft.Compute"


def _network_id(subscription: str, resource_group: str, *pairs: str) -> str:
    return str(ArmResourceId(subscription, resource_group, _NETWORK, pairs[0::2], pairs[1::2]))


def _compute_id(subscription: str, resource_group: str, *pairs: str) -> str:
    return str(ArmResourceId(subscription, resource_group, _COMPUTE, pairs[0::2], pairs[1::2]))


def load_balancer_id(subscription: str, resource_group: str, lb_name: str) -> str:
    return _network_id(subscription, resource_group, "loadBalancers", lb_name)


def frontend_ip_configuration_id(
    subscription: str, resource_group: str, lb_name: str, name: str
) -> str:
    return _network_id(
        subscription, resource_group, "loadBalancers", lb_name, "frontendIPConfigurations", name
    )


def backend_address_pool_id(subscription: str, resource_group: str, lb_name: str, name: str) -> str:
    return _network_id(
        subscription, resource_group, "loadBalancers", lb_name, "backendAddressPools", name
    )


def probe_id(subscription: str, resource_group: str, lb_name: str, name: str) -> str:
    return _network_id(subscription, resource_group, "loadBalancers", lb_name, "probes", name)


def public_ip_prefix_id(subscription: str, resource_group: str, name: str) -> str:
    return _network_id(subscription, resource_group, "publicIPPrefixes", name)


def public_ip_address_id(subscription: str, resource_group: str, name: str) -> str:
    return _network_id(subscription, resource_group, "publicIPAddresses", name)


def network_interface_id(subscription: str, resource_group: str, name: str) -> str:
    return _network_id(subscription, resource_group, "networkInterfaces", name)


def subnet_id(subscription: str, resource_group: str, vnet_name: str, subnet_name: str) -> str:
    return _network_id(
        subscription, resource_group, "virtualNetworks", vnet_name, "subnets", subnet_name
    )


def vmss_id(subscription: str, resource_group: str, vmss_name: str) -> str:
    return _compute_id(subscription, resource_group, "virtualMachineScaleSets", vmss_name)


def vmss_vm_id(subscription: str, resource_group: str, vmss_name: str, instance_id: str) -> str:
    return _compute_id(
        subscription,
        resource_group,
        "virtualMachineScaleSets",
        vmss_name,
        "virtualMachines",
        instance_id,
    )


def vm_id(subscription: str, resource_group: str, vm_name: str) -> str:
    return _compute_id(subscription, resource_group, "virtualMachines", vm_name)
