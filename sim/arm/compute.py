"""Microsoft.Compute behaviour: scale sets (model vs instances, latestModelApplied), their
instances and instance NICs/public IPs, and standalone VMs.

Compute PUTs merge onto the stored resource (the compute RP keeps what a PUT leaves out), so a body
of only `{location, properties.virtualMachineProfile.networkProfile}` updates the NIC model alone.
"""

from __future__ import annotations

import copy
import datetime
import uuid

from sim.arm import body as b
from sim.arm import ids, network, usage
from sim.arm.body import JsonObject
from sim.arm.errors import ArmError, bad_request
from sim.arm.ids import ArmPath
from sim.arm.resource_body import SERVED_TYPES, WriteContext, envelope, new_record
from sim.arm.store import Resource, Transaction, clone
from sim.topology import vmss_computer_name

MAX_CAPACITY = 1000


def _merged(ctx: WriteContext) -> JsonObject:
    if ctx.existing is None:
        return ctx.body
    base = {k: v for k, v in ctx.existing.body.items() if k not in ("id", "name", "type", "etag")}
    return b.merge(base, ctx.body)


def _nic_configurations(props: JsonObject, where: str) -> list[JsonObject]:
    net = b.obj(props, "networkProfile", f"{where}.networkProfile")
    return b.objects(
        net,
        "networkInterfaceConfigurations",
        f"{where}.networkProfile.networkInterfaceConfigurations",
    )


def validate_nic_configurations(
    tx: Transaction, configs: list[JsonObject], where: str, by: str
) -> None:
    """Shape and references of VMSS (model or instance) NIC configurations."""
    for i, nic in enumerate(configs):
        at = f"{where}[{i}]"
        name = b.text(nic, "name", f"{at}.name")
        if not name:
            raise bad_request(f"Property '{at}.name' is required.")
        ids.check_name(name)
        props = b.obj(nic, "properties", f"{at}.properties")
        b.boolean(props, "primary", f"{at}.properties.primary")
        ipcs = b.objects(props, "ipConfigurations", f"{at}.properties.ipConfigurations")
        if not ipcs:
            raise bad_request(f"NIC configuration {name} needs at least one ipConfiguration.")
        for j, ipc in enumerate(ipcs):
            ip_at = f"{at}.properties.ipConfigurations[{j}]"
            ipc_name = b.text(ipc, "name", f"{ip_at}.name")
            if not ipc_name:
                raise bad_request(f"Property '{ip_at}.name' is required.")
            ids.check_name(ipc_name)
            ip_props = b.obj(ipc, "properties", f"{ip_at}.properties")
            b.boolean(ip_props, "primary", f"{ip_at}.properties.primary")
            subnet = b.ref_id(ip_props, "subnet", f"{ip_at}.properties.subnet")
            if subnet is not None:
                network.require(tx, subnet, ids.SUBNETS, by)
            network.check_pool_refs(
                tx, ip_props, f"{ip_at}.properties.loadBalancerBackendAddressPools", by
            )
            pip_config = b.obj(
                ip_props,
                "publicIPAddressConfiguration",
                f"{ip_at}.properties.publicIPAddressConfiguration",
            )
            if pip_config:
                pip_name = b.text(pip_config, "name", f"{ip_at}.publicIPAddressConfiguration.name")
                if not pip_name:
                    raise bad_request("publicIPAddressConfiguration.name is required.")
                ids.check_name(pip_name)
                pip_props = b.obj(
                    pip_config, "properties", f"{ip_at}.publicIPAddressConfiguration.properties"
                )
                prefix = b.ref_id(
                    pip_props,
                    "publicIPPrefix",
                    "publicIPAddressConfiguration.properties.publicIPPrefix",
                )
                if prefix is not None:
                    network.require(tx, prefix, ids.PUBLIC_IP_PREFIXES, by)


# Instance NICs -------------------------------------------------------------------------------


def rebuild_instance_nics(tx: Transaction, instance: Resource) -> None:
    """Make the instance's NIC records (and their public IPs) match its NIC configuration,
    keeping addresses of ipConfigurations that stay."""
    instance_path = ids.parse_path(instance.id)
    nic_configs = b.objects(
        b.obj(instance.properties, "networkProfileConfiguration", "networkProfileConfiguration"),
        "networkInterfaceConfigurations",
        "networkProfileConfiguration.networkInterfaceConfigurations",
    )
    wanted: set[str] = set()
    nic_refs: list[JsonObject] = []
    for nic_config in nic_configs:
        nic_name = str(nic_config["name"])
        nic_path = instance_path.child("networkInterfaces", nic_name)
        wanted.add(nic_path.key)
        existing = tx.get(nic_path.key)
        nic_props_in = nic_config.get("properties") or {}
        raw_ipcs = []
        pip_specs: dict[str, JsonObject] = {}
        for ipc in nic_props_in.get("ipConfigurations") or []:
            ip_props = copy.deepcopy(ipc.get("properties") or {})
            pip_config = ip_props.pop("publicIPAddressConfiguration", None)
            if pip_config:
                pip_specs[str(ipc["name"])] = pip_config
            for vmss_only in (
                "applicationGatewayBackendAddressPools",
                "loadBalancerInboundNatPools",
            ):
                ip_props.pop(vmss_only, None)
            raw_ipcs.append({"name": ipc["name"], "properties": ip_props})
        previous = existing.properties.get("ipConfigurations") or [] if existing else []
        configs = network.build_ip_configurations(
            tx,
            nic_path.id if existing is None else existing.id,
            raw_ipcs,
            previous,
            "networkProfileConfiguration.ipConfigurations",
        )
        wanted_pips: set[str] = set()
        for config in configs:
            spec = pip_specs.get(str(config["name"]))
            if spec is None:
                continue
            pip_path = nic_path.child("ipConfigurations", str(config["name"])).child(
                "publicIPAddresses", str(spec["name"])
            )
            wanted_pips.add(pip_path.key)
            old_pip = tx.get(pip_path.key)
            prefix_ref = b.ref_id(spec.get("properties") or {}, "publicIPPrefix", "publicIPPrefix")
            address, prefix_id = network.public_ip_address(
                tx, pip_path.key, prefix_ref, config["id"], old_pip.properties if old_pip else None
            )
            pip_props: JsonObject = {
                "provisioningState": "Succeeded",
                "ipAddress": address,
                "publicIPAddressVersion": "IPv4",
                "publicIPAllocationMethod": "Static",
                "idleTimeoutInMinutes": 4,
                "ipConfiguration": {"id": config["id"]},
            }
            if prefix_id is not None:
                pip_props["publicIPPrefix"] = {"id": prefix_id}
            pip_id = old_pip.id if old_pip else pip_path.id
            tx.put(
                Resource(
                    pip_id,
                    ids.VMSS_VM_PUBLIC_IPS,
                    {
                        "id": pip_id,
                        "name": spec["name"],
                        "type": SERVED_TYPES[ids.VMSS_VM_PUBLIC_IPS],
                        "location": instance.body.get("location"),
                        "sku": {"name": "Standard", "tier": "Regional"},
                        "properties": pip_props,
                    },
                )
            )
            config["properties"]["publicIPAddress"] = {"id": pip_id}
        nic_id = existing.id if existing else nic_path.id
        for old in tx.children(nic_id, ids.VMSS_VM_PUBLIC_IPS):
            if old.key not in wanted_pips:
                tx.delete(old.key)
        nic_body: JsonObject = {
            "id": nic_id,
            "name": nic_name,
            "type": SERVED_TYPES[ids.VMSS_VM_NICS],
            "location": instance.body.get("location"),
            "properties": {
                "provisioningState": "Succeeded",
                "primary": bool(nic_props_in.get("primary", len(nic_configs) == 1)),
                "enableIPForwarding": bool(nic_props_in.get("enableIPForwarding", False)),
                "ipConfigurations": configs,
                "virtualMachine": {"id": instance.id},
            },
        }
        unchanged = existing is not None and existing.properties == nic_body["properties"]
        if not unchanged:
            tx.put(Resource(nic_id, ids.VMSS_VM_NICS, nic_body))
        nic_refs.append(
            {"id": nic_id, "properties": {"primary": nic_body["properties"]["primary"]}}
        )
    for old in tx.children(instance.id, ids.VMSS_VM_NICS):
        if old.key not in wanted:
            tx.delete_tree(old.key)
    instance.properties["networkProfile"] = {"networkInterfaces": nic_refs}


# Scale sets ----------------------------------------------------------------------------------


def _upgrade_mode(vmss: Resource) -> str:
    policy = vmss.properties.get("upgradePolicy") or {}
    return str(policy.get("mode", "Manual"))


def _computer_name(vmss: Resource, instance_id: int) -> str:
    profile = vmss.properties.get("virtualMachineProfile") or {}
    prefix = (profile.get("osProfile") or {}).get("computerNamePrefix") or vmss.body["name"]
    return vmss_computer_name(str(prefix), instance_id)


def _model_nic_configurations(vmss: Resource) -> list[JsonObject]:
    profile = vmss.properties.get("virtualMachineProfile") or {}
    configs = (profile.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []
    return copy.deepcopy(configs)


def new_instance(tx: Transaction, vmss: Resource, instance_id: int) -> Resource:
    path = ids.parse_path(vmss.id).child("virtualMachines", str(instance_id))
    sku = vmss.body.get("sku") or {}
    body: JsonObject = {
        "id": path.id,
        "name": f"{vmss.body['name']}_{instance_id}",
        "type": ids.VMSS_VMS,
        "location": vmss.body.get("location"),
        "instanceId": str(instance_id),
        "sku": {"name": sku.get("name", "Standard_D2s_v3"), "tier": sku.get("tier", "Standard")},
        "properties": {
            "latestModelApplied": True,
            "vmId": str(uuid.uuid4()),
            "provisioningState": "Succeeded",
            "osProfile": {
                "computerName": _computer_name(vmss, instance_id),
                "adminUsername": "azureuser",
            },
            "networkProfileConfiguration": {
                "networkInterfaceConfigurations": _model_nic_configurations(vmss)
            },
        },
    }
    if "tags" in vmss.body:
        body["tags"] = dict(vmss.body["tags"])
    instance = Resource(path.id, ids.VMSS_VMS, body)
    rebuild_instance_nics(tx, instance)
    return tx.put(instance)


def apply_model(tx: Transaction, vmss: Resource, instance: Resource) -> Resource:
    """Bring one instance to the scale set's current model (update_instances / automatic)."""
    updated = clone(instance)
    updated.properties["networkProfileConfiguration"] = {
        "networkInterfaceConfigurations": _model_nic_configurations(vmss)
    }
    updated.properties["latestModelApplied"] = True
    rebuild_instance_nics(tx, updated)
    return tx.put(updated)


def instances(tx: Transaction, vmss_key: str) -> list[Resource]:
    prefix = vmss_key.lower() + "/virtualmachines/"
    found = [r for r in tx.of_type(ids.VMSS_VMS) if r.key.startswith(prefix)]
    return sorted(found, key=lambda r: int(str(r.body.get("instanceId", "0"))))


def prepare_vmss(ctx: WriteContext) -> Resource:
    merged = _merged(ctx)
    ctx = WriteContext(ctx.tx, ctx.path, merged, ctx.existing)
    served = envelope(ctx, ids.VMSS)
    props = dict(b.obj(merged, "properties", "properties"))
    for ro in ("provisioningState", "uniqueId", "timeCreated"):
        props.pop(ro, None)
    profile = b.obj(props, "virtualMachineProfile", "properties.virtualMachineProfile")
    configs = _nic_configurations(profile, "properties.virtualMachineProfile")
    validate_nic_configurations(
        ctx.tx,
        configs,
        "properties.virtualMachineProfile.networkProfile.networkInterfaceConfigurations",
        str(served["id"]),
    )
    policy = b.obj(props, "upgradePolicy", "properties.upgradePolicy")
    mode = b.text(policy, "mode", "properties.upgradePolicy.mode") or "Manual"
    if mode.lower() not in ("manual", "automatic", "rolling"):
        raise bad_request(f"Invalid upgradePolicy.mode '{mode[:20]}'.", "InvalidParameter")
    props["upgradePolicy"] = {**policy, "mode": mode}
    sku = dict(served.get("sku") or {"name": "Standard_D2s_v3", "tier": "Standard"})
    capacity = sku.get("capacity", 0)
    if not isinstance(capacity, int) or not 0 <= capacity <= MAX_CAPACITY:
        raise bad_request(
            f"sku.capacity must be an integer in 0-{MAX_CAPACITY}.", "InvalidParameter"
        )
    sku["capacity"] = capacity
    served["sku"] = sku
    if ctx.existing is not None:
        props["uniqueId"] = ctx.existing.properties.get("uniqueId")
        props["timeCreated"] = ctx.existing.properties.get("timeCreated")
    else:
        props["uniqueId"] = str(uuid.uuid4())
        props["timeCreated"] = _now_iso()
    props["provisioningState"] = "Succeeded"
    served["properties"] = props
    vmss = new_record(ctx, ids.VMSS, served)
    model_changed = ctx.existing is None or (
        ctx.existing.properties.get("virtualMachineProfile") != props.get("virtualMachineProfile")
    )
    current = instances(ctx.tx, vmss.key)
    for instance in current[capacity:]:
        ctx.tx.delete_tree(instance.key)
    kept = current[:capacity]
    if model_changed:
        for instance in kept:
            if _upgrade_mode(vmss).lower() == "manual":
                updated = clone(instance)
                updated.properties["latestModelApplied"] = False
                ctx.tx.put(updated)
            else:
                apply_model(ctx.tx, vmss, instance)
    next_id = int(vmss.internal.get("nextInstanceId", 0))
    for _ in range(capacity - len(kept)):
        new_instance(ctx.tx, vmss, next_id)
        next_id += 1
    vmss.internal["nextInstanceId"] = next_id
    return vmss


def manual_upgrade(tx: Transaction, vmss: Resource, body: JsonObject) -> None:
    wanted = b.strings(body, "instanceIds", "instanceIds")
    by_id = {str(i.body.get("instanceId")): i for i in instances(tx, vmss.key)}
    missing = [w for w in wanted if w not in by_id]
    if missing or not wanted:
        raise bad_request(
            f"The instance IDs {missing or wanted} are not valid for scale set {vmss.id}.",
            "InvalidParameter",
        )
    for instance_id in wanted:
        apply_model(tx, vmss, by_id[instance_id])


# Scale set instances -------------------------------------------------------------------------


def prepare_vmss_vm(ctx: WriteContext) -> Resource:
    if ctx.existing is None:
        raise ArmError(
            404,
            "NotFound",
            f"The entity was not found in this Azure location. Instance {ctx.path.id} does not "
            "exist; scale the scale set to add instances.",
        )
    merged = _merged(ctx)
    props = dict(b.obj(merged, "properties", "properties"))
    for ro in ("provisioningState", "latestModelApplied", "vmId", "networkProfile", "instanceView"):
        props.pop(ro, None)
    props["osProfile"] = ctx.existing.properties.get("osProfile")
    npc = b.obj(props, "networkProfileConfiguration", "properties.networkProfileConfiguration")
    configs = b.objects(
        npc,
        "networkInterfaceConfigurations",
        "properties.networkProfileConfiguration.networkInterfaceConfigurations",
    )
    validate_nic_configurations(
        ctx.tx,
        configs,
        "properties.networkProfileConfiguration.networkInterfaceConfigurations",
        ctx.existing.id,
    )
    instance = clone(ctx.existing)
    tags = b.tags(merged)
    if tags is not None:
        instance.body["tags"] = tags
    props["latestModelApplied"] = True
    props["vmId"] = ctx.existing.properties.get("vmId")
    props["provisioningState"] = "Succeeded"
    instance.body["properties"] = props
    rebuild_instance_nics(ctx.tx, instance)
    return instance


def after_instance_delete(tx: Transaction, instance_path: ArmPath) -> None:
    """Deleting an instance shrinks its scale set's capacity."""
    parent = instance_path.parent()
    if parent is None:
        return
    vmss = tx.get(parent.key)
    if vmss is None:
        return
    updated = clone(vmss)
    sku = updated.body.setdefault("sku", {})
    sku["capacity"] = max(0, int(sku.get("capacity", 1)) - 1)
    tx.put(updated)


# Standalone VMs ------------------------------------------------------------------------------


def prepare_vm(ctx: WriteContext) -> Resource:
    merged = _merged(ctx)
    ctx2 = WriteContext(ctx.tx, ctx.path, merged, ctx.existing)
    served = envelope(ctx2, ids.VIRTUAL_MACHINES)
    props = dict(b.obj(merged, "properties", "properties"))
    for ro in ("provisioningState", "vmId", "instanceView"):
        props.pop(ro, None)
    net = b.obj(props, "networkProfile", "properties.networkProfile")
    nics = b.objects(net, "networkInterfaces", "properties.networkProfile.networkInterfaces")
    vm_key = ctx.path.key
    refs = []
    for i, nic in enumerate(nics):
        ref = b.text(nic, "id", f"properties.networkProfile.networkInterfaces[{i}].id")
        if ref is None:
            raise bad_request(f"Property 'networkInterfaces[{i}].id' is required.")
        found = network.require(ctx.tx, ref, ids.NETWORK_INTERFACES, str(served["id"]))
        owner = usage.nic_owner_vm(ctx.tx, found.key)
        if owner is not None and owner.lower() != vm_key:
            raise bad_request(
                f"Network interface {found.id} is already attached to {owner}.", "NicInUse"
            )
        nic_props = b.obj(
            nic, "properties", f"properties.networkProfile.networkInterfaces[{i}].properties"
        )
        b.boolean(nic_props, "primary", "networkInterfaces.properties.primary")
        refs.append(
            {"id": found.id, "properties": {"primary": bool(nic_props.get("primary", i == 0))}}
        )
    props["networkProfile"] = {**net, "networkInterfaces": refs}
    os_profile = dict(b.obj(props, "osProfile", "properties.osProfile"))
    os_profile.setdefault("computerName", ctx.path.name)
    props["osProfile"] = os_profile
    props["vmId"] = ctx.existing.properties.get("vmId") if ctx.existing else str(uuid.uuid4())
    props["provisioningState"] = "Succeeded"
    served["properties"] = props
    return new_record(ctx, ids.VIRTUAL_MACHINES, served)


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()
