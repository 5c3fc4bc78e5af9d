"""Which api-versions ARM serves for each resource type the emulator knows, and the error ARM
gives for any other: 400 `InvalidApiVersionParameter` for ARM's own types (resource groups) and
for values that are not api-versions at all, 400 `NoRegisteredProviderFound` for a resource
provider's type, each listing the supported versions as ARM does.

The lists are the versions the providers publish for these types (Microsoft.Network's and
Microsoft.Compute's REST API references and the version lists in ARM's own
NoRegisteredProviderFound answers), plus the ones current SDKs know: azure-mgmt-network 33.1
(sends 2026-03-01; its `api_versions_list` names 2025-05-01 to 2026-03-01), azure-mgmt-compute
39 (sends 2026-04-01; lists 2024-11-01 to 2026-04-01), Go armnetwork v7/v8/v9 (2025-01-01,
2025-03-01, 2025-05-01), Go armcompute v6/v7/v8 (2024-11-01, 2025-04-01, 2026-03-01,
2026-04-01). Versions a provider may serve but that no source here confirms are left out: the
emulator then refuses them, which is the safe side of a fake. Adding one is one line below.

Scale set instance NICs and their public IPs live under Microsoft.Compute but are served by the
network provider with the compute provider's version list; that is why network SDKs pin
2018-10-01 for them, and why a network version (e.g. 2025-05-01) is refused there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from sim.arm.errors import ArmError

API_VERSION_SHAPE: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}(-(preview|beta|privatepreview|alpha))?$", re.IGNORECASE
)

NETWORK: Final = (
    "2014-12-01-preview",
    "2015-05-01-preview",
    "2015-06-15",
    "2016-03-30",
    "2016-06-01",
    "2016-07-01",
    "2016-08-01",
    "2016-09-01",
    "2016-10-01",
    "2016-11-01",
    "2016-12-01",
    "2017-03-01",
    "2017-04-01",
    "2017-06-01",
    "2017-08-01",
    "2017-09-01",
    "2017-10-01",
    "2017-11-01",
    "2018-01-01",
    "2018-02-01",
    "2018-03-01",
    "2018-04-01",
    "2018-05-01",
    "2018-06-01",
    "2018-07-01",
    "2018-08-01",
    "2018-10-01",
    "2018-11-01",
    "2018-12-01",
    "2019-02-01",
    "2019-04-01",
    "2019-06-01",
    "2019-07-01",
    "2019-08-01",
    "2019-09-01",
    "2019-11-01",
    "2019-12-01",
    "2020-01-01",
    "2020-03-01",
    "2020-04-01",
    "2020-05-01",
    "2020-06-01",
    "2020-07-01",
    "2020-08-01",
    "2020-11-01",
    "2021-01-01",
    "2021-02-01",
    "2021-03-01",
    "2021-04-01",
    "2021-05-01",
    "2021-06-01",
    "2021-08-01",
    "2021-12-01",
    "2022-01-01",
    "2022-05-01",
    "2022-07-01",
    "2022-09-01",
    "2022-11-01",
    "2023-02-01",
    "2023-04-01",
    "2023-05-01",
    "2023-06-01",
    "2023-09-01",
    "2023-11-01",
    "2024-01-01",
    "2024-03-01",
    "2024-05-01",
    "2024-07-01",
    "2024-10-01",
    "2025-01-01",
    "2025-03-01",
    "2025-05-01",
    "2025-07-01",
    "2025-09-01",
    "2026-01-01",
    "2026-03-01",
)

# Public IP prefixes first appeared in the network provider's 2018-07-01 version.
PUBLIC_IP_PREFIXES: Final = tuple(v for v in NETWORK if v >= "2018-07-01")

COMPUTE: Final = (
    "2015-05-01-preview",
    "2015-06-15",
    "2016-03-30",
    "2016-04-30-preview",
    "2017-03-30",
    "2017-12-01",
    "2018-04-01",
    "2018-06-01",
    "2018-10-01",
    "2019-03-01",
    "2019-07-01",
    "2019-12-01",
    "2020-06-01",
    "2020-12-01",
    "2021-03-01",
    "2021-04-01",
    "2021-07-01",
    "2021-11-01",
    "2022-03-01",
    "2022-08-01",
    "2022-11-01",
    "2023-03-01",
    "2023-07-01",
    "2023-09-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
    "2025-04-01",
    "2025-11-01",
    "2026-03-01",
    "2026-04-01",
)

# What the network provider registered for scale set NICs: the compute list, as ARM's own
# answers show (up to 2023-07-01 there; the later compute versions are assumed alike).
SCALE_SET_NETWORK: Final = COMPUTE

# ARM's own api-versions (Microsoft.Resources: resource groups).
RESOURCES: Final = (
    "2014-02-26",
    "2013-03-01",
    "2014-01-01",
    "2014-04-01",
    "2014-04-01-preview",
    "2015-01-01",
    "2015-11-01",
    "2016-02-01",
    "2016-06-01",
    "2016-07-01",
    "2016-09-01",
    "2017-03-01",
    "2017-05-01",
    "2017-05-10",
    "2017-06-01",
    "2017-08-01",
    "2017-12-01",
    "2018-01-01",
    "2018-02-01",
    "2018-05-01",
    "2018-06-01",
    "2018-07-01",
    "2018-08-01",
    "2018-09-01",
    "2018-11-01",
    "2019-03-01",
    "2019-05-01",
    "2019-05-10",
    "2019-06-01",
    "2019-07-01",
    "2019-08-01",
    "2019-09-01",
    "2019-10-01",
    "2019-11-01",
    "2020-01-01",
    "2020-05-01",
    "2020-06-01",
    "2020-07-01",
    "2020-08-01",
    "2020-09-01",
    "2020-10-01",
    "2021-01-01",
    "2021-04-01",
    "2022-01-01",
    "2022-03-01-preview",
    "2022-05-01",
    "2022-06-01",
    "2022-09-01",
    "2022-11-01-preview",
    "2022-12-01",
    "2023-03-01-preview",
    "2023-07-01",
    "2023-07-01-preview",
    "2024-03-01",
    "2024-06-01-preview",
    "2024-08-01",
    "2024-11-01",
    "2025-04-01",
)

# Registered types (namespace/type as ARM spells them) and their versions. A nested type not
# listed (a load balancer's probes, a NIC's ipConfigurations) answers with its parent's list.
REGISTERED: Final[dict[str, Sequence[str]]] = {
    "Microsoft.Resources/resourceGroups": RESOURCES,
    "Microsoft.Network/virtualNetworks": NETWORK,
    "Microsoft.Network/loadBalancers": NETWORK,
    "Microsoft.Network/publicIPPrefixes": PUBLIC_IP_PREFIXES,
    "Microsoft.Network/publicIPAddresses": NETWORK,
    "Microsoft.Network/networkInterfaces": NETWORK,
    "Microsoft.Network/locations": NETWORK,
    "Microsoft.Compute/virtualMachineScaleSets": COMPUTE,
    "Microsoft.Compute/virtualMachines": COMPUTE,
    "Microsoft.Compute/locations": COMPUTE,
    "Microsoft.Compute/virtualMachineScaleSets/networkInterfaces": SCALE_SET_NETWORK,
    "Microsoft.Compute/virtualMachineScaleSets/publicIPAddresses": SCALE_SET_NETWORK,
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces": (
        SCALE_SET_NETWORK
    ),
}
_BY_LOWER: Final = {k.lower(): k for k in REGISTERED}

# Shown in NoRegisteredProviderFound messages; the resource's own location is added to them.
SUPPORTED_LOCATIONS: Final = (
    "eastus",
    "eastus2",
    "westus",
    "westus2",
    "westus3",
    "centralus",
    "northcentralus",
    "southcentralus",
    "northeurope",
    "westeurope",
    "uksouth",
    "southeastasia",
    "japaneast",
    "australiaeast",
)


def registered_type(resource_type: str) -> str | None:
    """The registered type that answers for `resource_type` (itself or its nearest listed
    ancestor, e.g. loadBalancers for loadBalancers/probes); None when the emulator has none."""
    parts = resource_type.split("/")
    for end in range(len(parts), 1, -1):
        found = _BY_LOWER.get("/".join(parts[:end]).lower())
        if found is not None:
            return found
    return None


def supported(resource_type: str) -> Sequence[str] | None:
    found = registered_type(resource_type)
    return None if found is None else REGISTERED[found]


def invalid_api_version(api_version: str, versions: Sequence[str] = RESOURCES) -> ArmError:
    """ARM's answer to a malformed version, or one that its own types do not serve."""
    listed = ",".join(sorted(versions, reverse=True))
    return ArmError(
        400,
        "InvalidApiVersionParameter",
        f"The api-version '{api_version[:40]}' is invalid. The supported versions are '{listed}'.",
    )


def no_registered_provider(
    api_version: str, registered: str, versions: Sequence[str], location: str
) -> ArmError:
    short = registered.split("/", 1)[1]
    locations = list(SUPPORTED_LOCATIONS)
    if location and location.lower() not in locations:
        locations.append(location.lower())
    return ArmError(
        400,
        "NoRegisteredProviderFound",
        f"No registered resource provider found for location '{location or locations[0]}' and "
        f"API version '{api_version[:40]}' for type '{short}'. The supported api-versions are "
        f"'{', '.join(versions)}'. The supported locations are '{', '.join(locations)}'.",
    )


def check(resource_type: str, api_version: str, location: str) -> None:
    """Raise ARM's error unless `api_version` is served for `resource_type`. Types the emulator
    does not register pass: routing then answers them with InvalidResourceType."""
    if not API_VERSION_SHAPE.match(api_version):
        raise invalid_api_version(api_version)
    registered = registered_type(resource_type)
    if registered is None:
        return
    versions = REGISTERED[registered]
    if api_version.lower() in (v.lower() for v in versions):
        return
    if registered.startswith("Microsoft.Resources/"):
        raise invalid_api_version(api_version, versions)
    raise no_registered_provider(api_version, registered, versions, location)
