"""Address allocation, as Azure does it: private IPs from a subnet (first four and the last address
reserved), public IP prefixes from a fake public pool, public IPs from a prefix or the pool."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable

from sim.arm.errors import ArmError, bad_request

# Fake public address space: prefixes from the first half, standalone addresses from the second.
PUBLIC_PREFIX_POOL = ipaddress.IPv4Network("20.240.0.0/17")
PUBLIC_ADDRESS_POOL = ipaddress.IPv4Network("20.240.128.0/17")
MIN_PREFIX_LENGTH = 28
MAX_PREFIX_LENGTH = 31


def parse_cidr(value: str, where: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise bad_request(
            f"Address prefix '{value[:60]}' at '{where}' is not a valid IPv4 CIDR.",
            "InvalidAddressPrefixFormat",
        ) from exc


def usable_hosts(subnet: ipaddress.IPv4Network) -> range:
    """Integer addresses Azure hands out in a subnet: network+4 .. broadcast-1."""
    first = int(subnet.network_address) + 4
    last = int(subnet.broadcast_address) - 1
    return range(first, last + 1)


def allocate_private_ip(
    subnet_id: str,
    subnet: ipaddress.IPv4Network,
    used: Collection[str],
    requested: str | None,
) -> str:
    """Return `requested` (Static) when free and usable, else the lowest free address."""
    if requested is not None:
        try:
            address = ipaddress.IPv4Address(requested)
        except ValueError as exc:
            raise bad_request(
                f"Private IP address '{requested[:60]}' is not a valid IPv4 address.",
                "InvalidPrivateIPAddressFormat",
            ) from exc
        if address not in subnet:
            raise bad_request(
                f"Private static IP address {address} does not belong to the range of subnet "
                f"prefix {subnet} of subnet {subnet_id}.",
                "PrivateIPAddressNotInSubnet",
            )
        if int(address) not in usable_hosts(subnet):
            raise bad_request(
                f"Private static IP address {address} falls within reserved IP range of subnet "
                f"prefix {subnet}.",
                "PrivateIPAddressInReservedRange",
            )
        if str(address) in used:
            raise bad_request(
                f"IP configuration is using the private IP address {address} which is already "
                "allocated to another resource.",
                "PrivateIPAddressInUse",
            )
        return str(address)
    taken = {int(ipaddress.IPv4Address(a)) for a in used}
    for candidate in usable_hosts(subnet):
        if candidate not in taken:
            return str(ipaddress.IPv4Address(candidate))
    raise ArmError(
        400,
        "SubnetIsFull",
        f"Subnet {subnet_id} with address prefix {subnet} does not have enough capacity for 1 "
        "IP addresses.",
    )


def allocate_prefix(length: int, taken: Iterable[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """The first aligned /length range of the public pool that overlaps nothing taken."""
    if not MIN_PREFIX_LENGTH <= length <= MAX_PREFIX_LENGTH:
        raise bad_request(
            f"Prefix length {length} is invalid for IPv4; allowed values are "
            f"{MIN_PREFIX_LENGTH} to {MAX_PREFIX_LENGTH}.",
            "InvalidPublicIpPrefixLength",
        )
    busy = list(taken)
    for candidate in PUBLIC_PREFIX_POOL.subnets(new_prefix=length):
        if not any(candidate.overlaps(t) for t in busy):
            return candidate
    raise ArmError(400, "PublicIpPrefixCapacityExceeded", "The public address pool is exhausted.")


def allocate_in_prefix(prefix_id: str, prefix: ipaddress.IPv4Network, used: Collection[str]) -> str:
    for address in prefix:
        if str(address) not in used:
            return str(address)
    raise ArmError(
        400,
        "PublicIpPrefixOutOfIpAddresses",
        f"Public IP prefix {prefix_id} ({prefix}) has no free IP addresses left.",
    )


def allocate_public_ip(used: Collection[str]) -> str:
    for address in PUBLIC_ADDRESS_POOL.hosts():
        if str(address) not in used:
            return str(address)
    raise ArmError(400, "PublicIPCountLimitReached", "The public address pool is exhausted.")
