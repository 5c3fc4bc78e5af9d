"""The envelope every stored resource shares (id, name, type, location, tags, sku, etag)."""

from __future__ import annotations

from dataclasses import dataclass

from sim.arm import body as b
from sim.arm.body import JsonObject
from sim.arm.errors import ArmError
from sim.arm.ids import ArmPath
from sim.arm.store import Resource, Transaction

# What clients see in `type` when it differs from where the record lives.
SERVED_TYPES = {
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces": (
        "Microsoft.Network/networkInterfaces"
    ),
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces/"
    "ipConfigurations/publicIPAddresses": "Microsoft.Network/publicIPAddresses",
}

READ_ONLY = ("provisioningState", "resourceGuid")


@dataclass
class WriteContext:
    """One PUT/PATCH being applied: the staged world, the target, its new and old body."""

    tx: Transaction
    path: ArmPath
    body: JsonObject
    existing: Resource | None


def envelope(ctx: WriteContext, type_: str, *, location: bool = True) -> JsonObject:
    """id/name/type plus location, tags, sku and zones taken from the request."""
    out: JsonObject = {
        "id": ctx.path.id if ctx.existing is None else ctx.existing.id,
        "name": ctx.path.name if ctx.existing is None else ctx.existing.body.get("name"),
        "type": SERVED_TYPES.get(type_, type_),
    }
    if location:
        loc = b.text(ctx.body, "location", "location")
        if loc is None and ctx.existing is not None:
            loc = ctx.existing.body.get("location")
        if loc is None:
            rg = ctx.tx.get(ctx.path.resource_group_id or "")
            if rg is None or ctx.path.resource_group is None:
                raise ArmError(400, "LocationRequired", "The location property is required.")
            loc = rg.body.get("location")
        out["location"] = str(loc).replace(" ", "").lower()
    tag_values = b.tags(ctx.body)
    if tag_values is not None:
        out["tags"] = tag_values
    sku = b.obj(ctx.body, "sku", "sku")
    if sku:
        b.text(sku, "name", "sku.name")
        b.text(sku, "tier", "sku.tier")
        b.integer(sku, "capacity", "sku.capacity")
        out["sku"] = sku
    zones = b.strings(ctx.body, "zones", "zones")
    if zones:
        out["zones"] = zones
    return out


def properties(ctx: WriteContext) -> JsonObject:
    props = dict(b.obj(ctx.body, "properties", "properties"))
    for key in READ_ONLY:
        props.pop(key, None)
    return props


def new_record(ctx: WriteContext, type_: str, served: JsonObject) -> Resource:
    internal = dict(ctx.existing.internal) if ctx.existing is not None else {}
    return Resource(str(served["id"]), type_, served, internal)
