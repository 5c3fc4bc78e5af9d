"""Microsoft.Network behaviour: virtual networks and subnets, load balancers, public IP prefixes
and addresses, network interfaces. Each `prepare_*` validates a PUT body against the staged world
and returns the record to store; `render_*` adds the computed, read-only fields."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from sim.arm import body as b
from sim.arm import ids, ipam, usage
from sim.arm.body import JsonObject
from sim.arm.errors import ArmError, bad_request, invalid_reference
from sim.arm.ids import ArmPath, parse_reference
from sim.arm.resource_body import WriteContext, envelope, new_record, properties
from sim.arm.store import Resource, ResourceView, Transaction, new_etag

LB_CHILD_READ_ONLY = (
    "provisioningState",
    "backendIPConfigurations",
    "loadBalancingRules",
    "inboundNatRules",
    "inboundNatPools",
    "outboundRules",
    "outboundRule",
)


# References ---------------------------------------------------------------------------------


def require(tx: ResourceView, ref: str, type_: str, referenced_by: str) -> Resource:
    path = parse_reference(ref, referenced_by)
    found = tx.get(path.key)
    if found is None or found.type != type_ or found.provisioning_state == "Deleting":
        raise invalid_reference(ref, referenced_by)
    return found


def subnet_network(subnet: Resource) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(str(subnet.properties["addressPrefix"]))


def require_pool(tx: ResourceView, ref: str, referenced_by: str) -> None:
    path = parse_reference(ref, referenced_by)
    parent = path.parent()
    if (
        parent is None
        or path.types[-1].lower() != "backendaddresspools"
        or parent.canonical_type != ids.LOAD_BALANCERS
    ):
        raise invalid_reference(ref, referenced_by)
    lb = tx.get(parent.key)
    pools = [] if lb is None else lb.properties.get("backendAddressPools", [])
    if not any(str(p.get("name", "")).lower() == path.name.lower() for p in pools):
        raise invalid_reference(ref, referenced_by)


def check_pool_refs(tx: ResourceView, props: JsonObject, where: str, by: str) -> None:
    for i, pool in enumerate(b.objects(props, "loadBalancerBackendAddressPools", where)):
        ref = b.text(pool, "id", f"{where}[{i}].id")
        if ref is None:
            raise bad_request(f"Property '{where}[{i}].id' is required.")
        require_pool(tx, ref, by)


# Private addresses ---------------------------------------------------------------------------


def assign_private_ip(
    tx: Transaction,
    owner_key: str,
    config_id: str,
    props: JsonObject,
    previous: JsonObject | None,
    taken_here: dict[str, set[str]],
    where: str,
) -> None:
    """Fill `privateIPAddress` of one ipConfiguration (or LB frontend) from its subnet."""
    subnet_ref = b.ref_id(props, "subnet", f"{where}.subnet")
    if subnet_ref is None:
        return
    subnet = require(tx, subnet_ref, ids.SUBNETS, config_id)
    props["subnet"] = {"id": subnet.id}
    network = subnet_network(subnet)
    requested = b.text(props, "privateIPAddress", f"{where}.privateIPAddress")
    method = b.text(props, "privateIPAllocationMethod", f"{where}.privateIPAllocationMethod")
    if method is None:
        method = "Static" if requested else "Dynamic"
    if method.lower() not in ("static", "dynamic"):
        raise bad_request(f"Invalid privateIPAllocationMethod '{method[:40]}'.")
    static = method.lower() == "static"
    used = set(usage.private_ip_owners(tx, subnet.key, owner_key))
    used |= taken_here.setdefault(subnet.key, set())
    if static:
        if requested is None:
            raise bad_request(
                f"Static allocation requires privateIPAddress at '{where}'.",
                "PrivateIPAddressIsRequired",
            )
        address = ipam.allocate_private_ip(subnet.id, network, used, requested)
    else:
        kept = None
        if previous is not None:
            prev_subnet = (previous.get("subnet") or {}).get("id", "")
            prev_address = previous.get("privateIPAddress")
            if str(prev_subnet).lower() == subnet.key and isinstance(prev_address, str):
                kept = prev_address if prev_address not in used else None
        address = kept or ipam.allocate_private_ip(subnet.id, network, used, None)
    taken_here[subnet.key].add(address)
    props["privateIPAddress"] = address
    props["privateIPAllocationMethod"] = "Static" if static else "Dynamic"
    props.setdefault("privateIPAddressVersion", "IPv4")


# Resource groups -----------------------------------------------------------------------------


def prepare_resource_group(ctx: WriteContext) -> Resource:
    if b.text(ctx.body, "location", "location") is None and ctx.existing is None:
        raise ArmError(400, "LocationRequired", "The location property is required.")
    served = envelope(ctx, ids.RESOURCE_GROUPS)
    served["properties"] = {"provisioningState": "Succeeded"}
    return new_record(ctx, ids.RESOURCE_GROUPS, served)


# Virtual networks and subnets ----------------------------------------------------------------


def _address_space(props: JsonObject) -> list[ipaddress.IPv4Network]:
    space = b.obj(props, "addressSpace", "properties.addressSpace")
    prefixes = b.strings(space, "addressPrefixes", "properties.addressSpace.addressPrefixes")
    return [ipam.parse_cidr(p, "addressSpace.addressPrefixes") for p in prefixes]


def build_subnet(
    tx: Transaction,
    vnet: Resource,
    subnet_path: ArmPath,
    raw_props: JsonObject,
    siblings: list[tuple[str, ipaddress.IPv4Network]],
) -> Resource:
    props = {
        k: v for k, v in raw_props.items() if k not in ("provisioningState", "ipConfigurations")
    }
    prefix = b.text(props, "addressPrefix", "properties.addressPrefix")
    if prefix is None:
        listed = b.strings(props, "addressPrefixes", "properties.addressPrefixes")
        prefix = listed[0] if listed else None
    if prefix is None:
        raise bad_request("Subnet address prefix is required.", "NoAddressPrefixOrPoolProvided")
    network = ipam.parse_cidr(prefix, "properties.addressPrefix")
    space = _address_space(vnet.properties)
    if not any(network.subnet_of(s) for s in space):
        raise bad_request(
            f"Subnet '{subnet_path.name}' is not valid because its IP address range is outside "
            "the IP address range of virtual network.",
            "NetcfgSubnetRangeOutsideVnet",
        )
    for name, other in siblings:
        if name.lower() != subnet_path.name.lower() and network.overlaps(other):
            raise bad_request(
                f"Subnet '{subnet_path.name}' is not valid because its IP address range overlaps "
                f"with that of an existing subnet '{name}' in virtual network.",
                "NetcfgSubnetRangesOverlap",
            )
    existing = tx.get(subnet_path.key)
    changed = existing is not None and str(existing.properties.get("addressPrefix")) != str(network)
    if existing is not None and changed and usage.subnet_users(tx, existing.key):
        raise bad_request(
            f"Subnet {existing.id} is in use and its address prefix cannot be changed.",
            "InUseSubnetCannotBeUpdated",
        )
    props["addressPrefix"] = str(network)
    props["provisioningState"] = "Succeeded"
    subnet_id = existing.id if existing is not None else subnet_path.id
    served = {
        "id": subnet_id,
        "name": subnet_path.name if existing is None else existing.body["name"],
        "type": ids.SUBNETS,
        "properties": props,
    }
    return Resource(subnet_id, ids.SUBNETS, served)


def _siblings(tx: Transaction, vnet_key: str) -> list[tuple[str, ipaddress.IPv4Network]]:
    return [(str(s.body["name"]), subnet_network(s)) for s in tx.children(vnet_key, ids.SUBNETS)]


def check_subnet_free(tx: ResourceView, subnet: Resource) -> None:
    users = usage.subnet_users(tx, subnet.key)
    if users:
        raise ArmError(
            409,
            "InUseSubnetCannotBeDeleted",
            f"Subnet {subnet.body.get('name')} is in use by {users[0]} and cannot be deleted. "
            "In order to delete the subnet, delete all the resources within the subnet.",
        )


def prepare_vnet(ctx: WriteContext) -> Resource:
    served = envelope(ctx, ids.VIRTUAL_NETWORKS)
    props = properties(ctx)
    if not _address_space(props):
        raise bad_request(
            "Virtual network must have at least one address prefix.",
            "InvalidAddressSpace",
        )
    subnets = b.objects(props, "subnets", "properties.subnets")
    props.pop("subnets", None)
    props["provisioningState"] = "Succeeded"
    props.setdefault("resourceGuid", str(uuid.uuid4()))
    if ctx.existing is not None:
        props["resourceGuid"] = ctx.existing.properties.get("resourceGuid", props["resourceGuid"])
    served["properties"] = props
    vnet = new_record(ctx, ids.VIRTUAL_NETWORKS, served)
    ctx.tx.put(vnet)
    # Subnets listed in the body replace the vnet's subnets, as a real vnet PUT does.
    path = ArmPath(
        ctx.path.subscription,
        ctx.path.resource_group,
        "Microsoft.Network",
        ("virtualNetworks",),
        (ctx.path.name,),
    )
    wanted: dict[str, Resource] = {}
    staged: list[tuple[str, ipaddress.IPv4Network]] = []
    for i, raw in enumerate(subnets):
        name = b.text(raw, "name", f"properties.subnets[{i}].name")
        if not name:
            raise bad_request(f"Property 'properties.subnets[{i}].name' is required.")
        ids.check_name(name)
        sub_props = b.obj(raw, "properties", f"properties.subnets[{i}].properties")
        subnet = build_subnet(ctx.tx, vnet, path.child("subnets", name), sub_props, staged)
        staged.append((name, subnet_network(subnet)))
        wanted[subnet.key] = subnet
    if "subnets" in b.obj(ctx.body, "properties", "properties") or ctx.existing is None:
        for old in ctx.tx.children(vnet.key, ids.SUBNETS):
            if old.key not in wanted:
                check_subnet_free(ctx.tx, old)
                ctx.tx.delete(old.key)
    for subnet in wanted.values():
        ctx.tx.put(subnet)
    return vnet


def prepare_subnet(ctx: WriteContext) -> Resource:
    parent = ctx.path.parent()
    assert parent is not None
    vnet = ctx.tx.get(parent.key)
    assert vnet is not None
    props = b.obj(ctx.body, "properties", "properties")
    return build_subnet(ctx.tx, vnet, ctx.path, props, _siblings(ctx.tx, vnet.key))


# Load balancers ------------------------------------------------------------------------------


def _lb_items(
    props: JsonObject, key: str, lb_id: str, previous: dict[str, JsonObject]
) -> list[JsonObject]:
    out: list[JsonObject] = []
    seen: set[str] = set()
    for i, raw in enumerate(b.objects(props, key, f"properties.{key}")):
        name = b.text(raw, "name", f"properties.{key}[{i}].name")
        if not name:
            raise bad_request(f"Property 'properties.{key}[{i}].name' is required.")
        ids.check_name(name)
        if name.lower() in seen:
            raise bad_request(
                f"Load balancer {lb_id} has two child resources named {name} in {key}.",
                "DuplicateResourceName",
            )
        seen.add(name.lower())
        item_props = dict(b.obj(raw, "properties", f"properties.{key}[{i}].properties"))
        for ro in LB_CHILD_READ_ONLY:
            item_props.pop(ro, None)
        item_props["provisioningState"] = "Succeeded"
        old = previous.get(f"{key}/{name}".lower())
        out.append(
            {
                "name": name,
                "id": f"{lb_id}/{key}/{name}",
                "etag": old.get("etag", new_etag()) if old else new_etag(),
                "type": f"{ids.LOAD_BALANCERS}/{key}",
                "properties": item_props,
            }
        )
    return out


def _item_ref(props: JsonObject, key: str, where: str, names: set[str], by: str) -> str | None:
    ref = b.ref_id(props, key, where)
    if ref is None:
        return None
    if ref.lower() not in names:
        raise invalid_reference(ref, by)
    return ref


def prepare_load_balancer(ctx: WriteContext) -> Resource:
    served = envelope(ctx, ids.LOAD_BALANCERS)
    props = properties(ctx)
    lb_id = str(served["id"])
    previous: dict[str, JsonObject] = {}
    if ctx.existing is not None:
        for key in (
            "frontendIPConfigurations",
            "backendAddressPools",
            "probes",
            "loadBalancingRules",
        ):
            for item in ctx.existing.properties.get(key, []):
                previous[f"{key}/{item.get('name')}".lower()] = item
    fronts = _lb_items(props, "frontendIPConfigurations", lb_id, previous)
    pools = _lb_items(props, "backendAddressPools", lb_id, previous)
    probes = _lb_items(props, "probes", lb_id, previous)
    rules = _lb_items(props, "loadBalancingRules", lb_id, previous)
    taken_here: dict[str, set[str]] = {}
    for i, front in enumerate(fronts):
        where = f"properties.frontendIPConfigurations[{i}].properties"
        fprops = front["properties"]
        pip = b.ref_id(fprops, "publicIPAddress", f"{where}.publicIPAddress")
        if pip is not None:
            require(ctx.tx, pip, ids.PUBLIC_IP_ADDRESSES, front["id"])
        old = previous.get(f"frontendIPConfigurations/{front['name']}".lower())
        assign_private_ip(
            ctx.tx,
            lb_id.lower(),
            front["id"],
            fprops,
            old.get("properties") if old else None,
            taken_here,
            where,
        )
    for i, probe in enumerate(probes):
        where = f"properties.probes[{i}].properties"
        pprops = probe["properties"]
        protocol = b.text(pprops, "protocol", f"{where}.protocol")
        port = b.integer(pprops, "port", f"{where}.port")
        if protocol is None or port is None or not 1 <= port <= 65535:
            raise bad_request(f"Probe {probe['id']} needs a protocol and a port in 1-65535.")
        b.text(pprops, "requestPath", f"{where}.requestPath")
        b.integer(pprops, "intervalInSeconds", f"{where}.intervalInSeconds")
        b.integer(pprops, "numberOfProbes", f"{where}.numberOfProbes")
        b.integer(pprops, "probeThreshold", f"{where}.probeThreshold")
    front_ids = {f["id"].lower() for f in fronts}
    pool_ids = {p["id"].lower() for p in pools}
    probe_ids = {p["id"].lower() for p in probes}
    seen_ports: dict[tuple[str, str, int], str] = {}
    seen_backends: dict[tuple[str, str, int], str] = {}
    for i, rule in enumerate(rules):
        where = f"properties.loadBalancingRules[{i}].properties"
        rprops = rule["properties"]
        front_ref = _item_ref(rprops, "frontendIPConfiguration", where, front_ids, rule["id"])
        pool_ref_id = _item_ref(rprops, "backendAddressPool", where, pool_ids, rule["id"])
        for j, pool_ref in enumerate(b.objects(rprops, "backendAddressPools", where)):
            pool_id = b.text(pool_ref, "id", f"{where}.backendAddressPools[{j}].id")
            if pool_id is None or pool_id.lower() not in pool_ids:
                raise invalid_reference(str(pool_id), rule["id"])
        _item_ref(rprops, "probe", where, probe_ids, rule["id"])
        protocol = b.text(rprops, "protocol", f"{where}.protocol")
        port = b.integer(rprops, "frontendPort", f"{where}.frontendPort")
        backend_port = b.integer(rprops, "backendPort", f"{where}.backendPort")
        b.boolean(rprops, "enableFloatingIP", f"{where}.enableFloatingIP")
        if front_ref is None or protocol is None or port is None:
            raise bad_request(
                f"Load balancing rule {rule['id']} needs frontendIPConfiguration, protocol and "
                "frontendPort."
            )
        if protocol.lower() not in ("tcp", "udp", "all"):
            raise bad_request(f"Invalid protocol '{protocol[:20]}' in {rule['id']}.")
        for value in (port, backend_port):
            if value is not None and not 0 <= value <= 65535:
                raise bad_request(f"Port {value} in {rule['id']} is out of range 0-65535.")
        port_key = (front_ref.lower(), protocol.lower(), port)
        if port_key in seen_ports:
            raise bad_request(
                f"Load balancing rules {seen_ports[port_key]} and {rule['id']} use the same "
                f"frontend IP configuration, protocol {protocol} and frontend port {port}.",
                "LoadBalancingRulesWithSameFrontendIpConfigProtocolAndPort",
            )
        seen_ports[port_key] = rule["id"]
        floating = bool(rprops.get("enableFloatingIP"))
        if pool_ref_id is not None and not floating:
            backend_key = (pool_ref_id.lower(), protocol.lower(), backend_port or port)
            if backend_key in seen_backends:
                raise bad_request(
                    f"Load balancing rules {seen_backends[backend_key]} and {rule['id']} with "
                    f"floating IP disabled use the same protocol {protocol} and backend port "
                    f"{backend_port or port}, and must not be used with the same backend "
                    f"address pool {pool_ref_id}.",
                    "RulesUseSameBackendPortProtocolAndPool",
                )
            seen_backends[backend_key] = rule["id"]
    props["frontendIPConfigurations"] = fronts
    props["backendAddressPools"] = pools
    props["probes"] = probes
    props["loadBalancingRules"] = rules
    props.setdefault("inboundNatRules", [])
    props.setdefault("outboundRules", [])
    props["resourceGuid"] = (
        ctx.existing.properties.get("resourceGuid") if ctx.existing else str(uuid.uuid4())
    )
    served.setdefault("sku", {"name": "Basic", "tier": "Regional"})
    served["properties"] = props
    return new_record(ctx, ids.LOAD_BALANCERS, served)


def render_load_balancer(view: ResourceView, body: JsonObject) -> None:
    props = body.get("properties", {})
    rules = props.get("loadBalancingRules", [])
    users: dict[str, list[dict[str, str]]] = {}
    for rule in rules:
        rprops = rule.get("properties", {})
        refs = [
            rprops.get("frontendIPConfiguration"),
            rprops.get("backendAddressPool"),
            rprops.get("probe"),
        ]
        refs += rprops.get("backendAddressPools", [])
        for ref in refs:
            if isinstance(ref, dict) and "id" in ref:
                users.setdefault(str(ref["id"]).lower(), []).append({"id": rule["id"]})
    for key in ("frontendIPConfigurations", "backendAddressPools", "probes"):
        for item in props.get(key, []):
            found = users.get(str(item.get("id", "")).lower())
            if found:
                item["properties"]["loadBalancingRules"] = found
    for pool in props.get("backendAddressPools", []):
        members = usage.pool_members(view, str(pool["id"]))
        if members:
            pool["properties"]["backendIPConfigurations"] = [{"id": m} for m in members]


# Public IP prefixes and addresses ------------------------------------------------------------


def prepare_public_ip_prefix(ctx: WriteContext) -> Resource:
    served = envelope(ctx, ids.PUBLIC_IP_PREFIXES)
    props = properties(ctx)
    props.pop("publicIPAddresses", None)
    props.pop("ipPrefix", None)
    version = b.text(props, "publicIPAddressVersion", "properties.publicIPAddressVersion")
    if version is not None and version.lower() != "ipv4":
        raise bad_request("Only IPv4 public IP prefixes are supported here.", "InvalidParameter")
    length = b.integer(props, "prefixLength", "properties.prefixLength")
    if length is None:
        raise bad_request("Property 'properties.prefixLength' is required.", "InvalidParameter")
    if ctx.existing is not None:
        old_length = ctx.existing.properties.get("prefixLength")
        if old_length != length:
            raise bad_request(
                f"Prefix length of {ctx.existing.id} cannot change from {old_length} to {length}.",
                "PublicIpPrefixLengthCannotBeChanged",
            )
        props["ipPrefix"] = ctx.existing.properties["ipPrefix"]
    else:
        props["ipPrefix"] = str(
            ipam.allocate_prefix(length, usage.taken_prefixes(ctx.tx, ctx.path.key))
        )
    props["prefixLength"] = length
    props["publicIPAddressVersion"] = "IPv4"
    served.setdefault("sku", {"name": "Standard", "tier": "Regional"})
    served["properties"] = props
    return new_record(ctx, ids.PUBLIC_IP_PREFIXES, served)


def render_public_ip_prefix(view: ResourceView, body: JsonObject) -> None:
    users = usage.prefix_users(view, str(body["id"]).lower())
    body["properties"]["publicIPAddresses"] = [{"id": r.id} for r in users]


def public_ip_address(
    tx: Transaction, key: str, prefix_ref: str | None, by: str, previous: JsonObject | None
) -> tuple[str, str | None]:
    """(address, prefix ID): the previous address when still valid, else the next free one."""
    prefix_id = None
    if prefix_ref is not None:
        prefix = require(tx, prefix_ref, ids.PUBLIC_IP_PREFIXES, by)
        prefix_id = prefix.id
        network = ipaddress.IPv4Network(str(prefix.properties["ipPrefix"]))
        used = {
            str(r.properties.get("ipAddress"))
            for r in usage.prefix_users(tx, prefix.key)
            if r.key != key
        }
        old = (previous or {}).get("ipAddress")
        if isinstance(old, str) and ipaddress.IPv4Address(old) in network and old not in used:
            return old, prefix_id
        return ipam.allocate_in_prefix(prefix.id, network, used), prefix_id
    used = usage.public_ips_in_use(tx, key)
    old = (previous or {}).get("ipAddress")
    if isinstance(old, str) and old not in used and (previous or {}).get("publicIPPrefix") is None:
        return old, None
    return ipam.allocate_public_ip(used), None


def prepare_public_ip(ctx: WriteContext) -> Resource:
    served = envelope(ctx, ids.PUBLIC_IP_ADDRESSES)
    props = properties(ctx)
    for ro in ("ipAddress", "ipConfiguration"):
        props.pop(ro, None)
    method = b.text(props, "publicIPAllocationMethod", "properties.publicIPAllocationMethod")
    if method is not None and method.lower() not in ("static", "dynamic"):
        raise bad_request(f"Invalid publicIPAllocationMethod '{method[:40]}'.")
    prefix_ref = b.ref_id(props, "publicIPPrefix", "properties.publicIPPrefix")
    address, prefix_id = public_ip_address(
        ctx.tx,
        ctx.path.key,
        prefix_ref,
        ctx.path.id,
        ctx.existing.properties if ctx.existing else None,
    )
    props["ipAddress"] = address
    if prefix_id is not None:
        props["publicIPPrefix"] = {"id": prefix_id}
    props["publicIPAllocationMethod"] = "Static"
    props.setdefault("publicIPAddressVersion", "IPv4")
    props.setdefault("idleTimeoutInMinutes", 4)
    served.setdefault("sku", {"name": "Standard", "tier": "Regional"})
    served["properties"] = props
    return new_record(ctx, ids.PUBLIC_IP_ADDRESSES, served)


def render_public_ip(view: ResourceView, body: JsonObject) -> None:
    if body["properties"].get("ipConfiguration") is None:
        attached = usage.public_ip_attachment(view, str(body["id"]).lower())
        if attached:
            body["properties"]["ipConfiguration"] = {"id": attached}


# Network interfaces --------------------------------------------------------------------------


def build_ip_configurations(
    tx: Transaction,
    nic_id: str,
    raw_configs: list[JsonObject],
    previous: list[Any],
    where: str,
) -> list[JsonObject]:
    """Validate and address a NIC's ipConfigurations (exactly one primary)."""
    if not raw_configs:
        raise bad_request(
            f"Network interface {nic_id} must have at least one IP configuration.",
            "NetworkInterfaceMustHaveAtLeastOneIpConfiguration",
        )
    old_by_name = {
        str(c.get("name", "")).lower(): c.get("properties") or {}
        for c in previous
        if isinstance(c, dict)
    }
    taken_here: dict[str, set[str]] = {}
    out: list[JsonObject] = []
    names: set[str] = set()
    for i, raw in enumerate(raw_configs):
        at = f"{where}[{i}]"
        name = b.text(raw, "name", f"{at}.name")
        if not name:
            raise bad_request(f"Property '{at}.name' is required.")
        ids.check_name(name)
        if name.lower() in names:
            raise bad_request(f"Duplicate ipConfiguration name {name}.", "DuplicateResourceName")
        names.add(name.lower())
        config_id = f"{nic_id}/ipConfigurations/{name}"
        props = {
            k: v
            for k, v in b.obj(raw, "properties", f"{at}.properties").items()
            if k != "provisioningState"
        }
        b.boolean(props, "primary", f"{at}.properties.primary")
        if b.ref_id(props, "subnet", f"{at}.properties.subnet") is None:
            raise bad_request(
                f"IP configuration {config_id} must reference a subnet.",
                "IpConfigurationSubnetIsRequired",
            )
        pip = b.ref_id(props, "publicIPAddress", f"{at}.properties.publicIPAddress")
        if pip is not None:
            pip_res = require(tx, pip, ids.PUBLIC_IP_ADDRESSES, config_id)
            attached = usage.public_ip_attachment(tx, pip_res.key)
            if attached and not attached.lower().startswith(nic_id.lower() + "/"):
                raise bad_request(
                    f"Public IP address {pip} is already used by {attached}.",
                    "PublicIPAddressInUse",
                )
            props["publicIPAddress"] = {"id": pip_res.id}
        check_pool_refs(tx, props, f"{at}.properties.loadBalancerBackendAddressPools", config_id)
        assign_private_ip(
            tx,
            nic_id.lower(),
            config_id,
            props,
            old_by_name.get(name.lower()),
            taken_here,
            f"{at}.properties",
        )
        props["provisioningState"] = "Succeeded"
        out.append(
            {
                "name": name,
                "id": config_id,
                "etag": new_etag(),
                "type": f"{ids.NETWORK_INTERFACES}/ipConfigurations",
                "properties": props,
            }
        )
    primaries = [c for c in out if c["properties"].get("primary")]
    if len(primaries) > 1:
        raise bad_request(
            f"Network interface {nic_id} has more than one primary IP configuration.",
            "OnlyOnePrimaryIpConfigurationAllowed",
        )
    if not primaries:
        if len(out) > 1:
            raise bad_request(
                f"Network interface {nic_id} must have exactly one primary IP configuration.",
                "NetworkInterfaceMustHavePrimaryIpConfiguration",
            )
        out[0]["properties"]["primary"] = True
    for config in out:
        config["properties"].setdefault("primary", False)
    return out


def prepare_nic(ctx: WriteContext) -> Resource:
    served = envelope(ctx, ids.NETWORK_INTERFACES)
    props = properties(ctx)
    for ro in ("virtualMachine", "macAddress", "hostedWorkloads"):
        props.pop(ro, None)
    raw = b.objects(props, "ipConfigurations", "properties.ipConfigurations")
    previous = ctx.existing.properties.get("ipConfigurations", []) if ctx.existing else []
    props["ipConfigurations"] = build_ip_configurations(
        ctx.tx, str(served["id"]), raw, previous, "properties.ipConfigurations"
    )
    b.boolean(props, "enableIPForwarding", "properties.enableIPForwarding")
    props.setdefault("enableIPForwarding", False)
    props["resourceGuid"] = (
        ctx.existing.properties.get("resourceGuid") if ctx.existing else str(uuid.uuid4())
    )
    served["properties"] = props
    return new_record(ctx, ids.NETWORK_INTERFACES, served)


def render_nic(view: ResourceView, body: JsonObject) -> None:
    props = body["properties"]
    if "virtualMachine" not in props:
        owner = usage.nic_owner_vm(view, str(body["id"]).lower())
        if owner:
            props["virtualMachine"] = {"id": owner}
    configs = props.get("ipConfigurations", [])
    if configs:
        primary = next((c for c in configs if c["properties"].get("primary")), configs[0])
        props.setdefault("primary", True)
        props.setdefault("primaryIPConfiguration", {"id": primary["id"]})


# Deletion checks -----------------------------------------------------------------------------


def check_delete(view: ResourceView, resource: Resource) -> None:
    """Refuse deleting something still in use, as ARM does."""
    if resource.type == ids.SUBNETS:
        check_subnet_free(view, resource)
    elif resource.type == ids.VIRTUAL_NETWORKS:
        prefix = resource.key + "/"
        for subnet in view.of_type(ids.SUBNETS):
            if subnet.key.startswith(prefix):
                check_subnet_free(view, subnet)
    elif resource.type == ids.PUBLIC_IP_PREFIXES:
        users = [r.id for r in usage.prefix_users(view, resource.key)]
        users += usage.vmss_using_prefix(view, resource.key)
        if users:
            raise ArmError(
                400,
                "InUsePublicIpPrefixCannotBeDeleted",
                f"Public IP prefix {resource.id} cannot be deleted since it is in use by "
                f"{', '.join(users[:5])}.",
            )
    elif resource.type == ids.PUBLIC_IP_ADDRESSES:
        attached = usage.public_ip_attachment(view, resource.key)
        if attached:
            raise ArmError(
                400,
                "PublicIPAddressCannotBeDeleted",
                f"Public IP address {resource.id} can not be deleted since it is still allocated "
                f"to resource {attached}.",
            )
    elif resource.type == ids.NETWORK_INTERFACES:
        owner = usage.nic_owner_vm(view, resource.key)
        if owner:
            raise ArmError(
                400,
                "NicInUse",
                f"Network Interface {resource.id} is used by existing resource {owner}. In order "
                "to delete the network interface, it must be dissociated from the resource.",
            )


def render_subnet(view: ResourceView, body: JsonObject) -> None:
    users = usage.subnet_users(view, str(body["id"]).lower())
    if users:
        body["properties"]["ipConfigurations"] = [{"id": u} for u in users]


def render_vnet(view: ResourceView, body: JsonObject, render_child: Any) -> None:
    key = str(body["id"]).lower() + "/"
    subnets = sorted(
        (s for s in view.of_type(ids.SUBNETS) if s.key.startswith(key)),
        key=lambda s: s.key,
    )
    body["properties"]["subnets"] = [render_child(s) for s in subnets]
