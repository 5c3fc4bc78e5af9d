"""ARM resource IDs and request paths: parsing, canonical type names, case-insensitive keys."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sim.arm.errors import ArmError, bad_request

RESOURCE_GROUPS = "Microsoft.Resources/resourceGroups"
VIRTUAL_NETWORKS = "Microsoft.Network/virtualNetworks"
SUBNETS = "Microsoft.Network/virtualNetworks/subnets"
LOAD_BALANCERS = "Microsoft.Network/loadBalancers"
PUBLIC_IP_PREFIXES = "Microsoft.Network/publicIPPrefixes"
PUBLIC_IP_ADDRESSES = "Microsoft.Network/publicIPAddresses"
NETWORK_INTERFACES = "Microsoft.Network/networkInterfaces"
VMSS = "Microsoft.Compute/virtualMachineScaleSets"
VMSS_VMS = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
VMSS_VM_NICS = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces"
VMSS_VM_PUBLIC_IPS = (
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces/"
    "ipConfigurations/publicIPAddresses"
)
VIRTUAL_MACHINES = "Microsoft.Compute/virtualMachines"

# Every type the emulator stores as its own record, by lower-cased name.
STORED_TYPES: dict[str, str] = {
    t.lower(): t
    for t in (
        RESOURCE_GROUPS,
        VIRTUAL_NETWORKS,
        SUBNETS,
        LOAD_BALANCERS,
        PUBLIC_IP_PREFIXES,
        PUBLIC_IP_ADDRESSES,
        NETWORK_INTERFACES,
        VMSS,
        VMSS_VMS,
        VMSS_VM_NICS,
        VMSS_VM_PUBLIC_IPS,
        VIRTUAL_MACHINES,
    )
}

# Children kept inside their parent's body (GET-able by ID, written through the parent).
EMBEDDED_CHILDREN: dict[str, dict[str, str]] = {
    LOAD_BALANCERS: {
        "frontendipconfigurations": "frontendIPConfigurations",
        "backendaddresspools": "backendAddressPools",
        "probes": "probes",
        "loadbalancingrules": "loadBalancingRules",
    },
    NETWORK_INTERFACES: {"ipconfigurations": "ipConfigurations"},
    VMSS_VM_NICS: {"ipconfigurations": "ipConfigurations"},
}

_BAD_NAME = re.compile(r"[<>%&:\\?/*#|\x00-\x1f\x7f\"]")
_MAX_NAME = 260


@dataclass(frozen=True)
class ArmPath:
    """A request path or resource ID split into its parts (casing kept as the caller sent it)."""

    subscription: str
    resource_group: str | None
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def is_collection(self) -> bool:
        return len(self.names) < len(self.types)

    @property
    def resource_type(self) -> str:
        return "/".join((self.namespace, *self.types))

    @property
    def canonical_type(self) -> str | None:
        return STORED_TYPES.get(self.resource_type.lower())

    @property
    def name(self) -> str:
        return self.names[-1]

    @property
    def id(self) -> str:
        """The resource ID (for a collection: the collection's path)."""
        if self.namespace == "Microsoft.Resources" and self.types == ("resourceGroups",):
            base = f"/subscriptions/{self.subscription}/resourceGroups"
            return base if self.is_collection else f"{base}/{self.names[0]}"
        base = f"/subscriptions/{self.subscription}"
        if self.resource_group is not None:
            base += f"/resourceGroups/{self.resource_group}"
        base += f"/providers/{self.namespace}"
        for i, type_ in enumerate(self.types):
            base += f"/{type_}"
            if i < len(self.names):
                base += f"/{self.names[i]}"
        return base

    @property
    def key(self) -> str:
        return self.id.lower()

    def parent(self) -> ArmPath | None:
        """The enclosing resource of a child resource or of a collection of children."""
        depth = len(self.names) - 1 if not self.is_collection else len(self.names)
        if depth < 1 or (not self.is_collection and len(self.types) == 1):
            return None
        return ArmPath(
            self.subscription,
            self.resource_group,
            self.namespace,
            self.types[:depth],
            self.names[:depth],
        )

    def child(self, type_: str, name: str) -> ArmPath:
        return ArmPath(
            self.subscription,
            self.resource_group,
            self.namespace,
            (*self.types, type_),
            (*self.names, name),
        )

    @property
    def resource_group_id(self) -> str | None:
        if self.resource_group is None:
            return None
        return f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"


def check_name(name: str) -> None:
    if not name or len(name) > _MAX_NAME or _BAD_NAME.search(name) or name.strip() != name:
        raise ArmError(400, "InvalidResourceName", f"Resource name {name[:80]!r} is invalid.")


def parse_path(path: str) -> ArmPath:
    """Parse a request path under /subscriptions; raises 404/400 ArmErrors for bad shapes."""
    segments = [s for s in path.split("/") if s]
    if len(segments) < 3 or segments[0].lower() != "subscriptions":
        raise ArmError(404, "InvalidRequestUri", f"The request URI '{path[:200]}' is invalid.")
    subscription = segments[1]
    rest = segments[2:]
    resource_group: str | None = None
    if rest[0].lower() == "resourcegroups":
        if len(rest) == 1:
            return ArmPath(subscription, None, "Microsoft.Resources", ("resourceGroups",), ())
        resource_group = rest[1]
        check_name(resource_group)
        if len(rest) == 2:
            return ArmPath(
                subscription, None, "Microsoft.Resources", ("resourceGroups",), (resource_group,)
            )
        rest = rest[2:]
    if len(rest) < 3 or rest[0].lower() != "providers":
        raise ArmError(404, "InvalidRequestUri", f"The request URI '{path[:200]}' is invalid.")
    namespace = rest[1]
    pairs = rest[2:]
    types = tuple(pairs[0::2])
    names = tuple(pairs[1::2])
    for name in names:
        check_name(name)
    return ArmPath(subscription, resource_group, namespace, types, names)


def parse_reference(value: object, where: str) -> ArmPath:
    """Parse an ID found in a request body (a `{"id": ...}` reference)."""
    if not isinstance(value, str):
        raise bad_request(f"Property id at path '{where}' must be a string.")
    try:
        ref = parse_path(value)
    except ArmError as exc:
        raise ArmError(
            400,
            "LinkedInvalidPropertyId",
            f"Property id '{value[:200]}' at path '{where}' is invalid. Expect fully qualified "
            "resource Id that start with '/subscriptions/{subscriptionId}'.",
        ) from exc
    if ref.is_collection:
        raise ArmError(
            400,
            "LinkedInvalidPropertyId",
            f"Property id '{value[:200]}' at path '{where}' is invalid.",
        )
    return ref


def short_type(resource_type: str) -> str:
    """`Microsoft.Network/loadBalancers` -> `loadBalancers` (the latency/fault key form)."""
    return resource_type.split("/", 1)[1] if "/" in resource_type else resource_type
