"""The whole desired internal load balancer for a set of rules: a pure function of the load
balancer as read and the rules wanted (docs/upstream-compatibility.md §2.3).

Per rule: a frontend with a dynamic IPv4 from the configured subnet and a backend pool, both named
by the rule's pool; an HTTP probe on 8082 at `/gw/<uid>` (every 5 s, threshold 1) and a UDP rule
with floating IP whose frontend and backend ports are equal, both named by the owner's UID. A rule
that still matches keeps its port; otherwise it gets the lowest port in 6000-6999 that no other
rule on the same backend pool uses. Rules and probes named by a UID that no longer is wanted are
dropped, then every frontend and backend pool of ours that no rule uses. Anything else on the
load balancer (other rules, NAT rules, ...) is left as it is.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from activities.azure.arm_json import (
    BackendAddressPoolJson,
    FrontendIpConfigurationJson,
    LoadBalancerJson,
    LoadBalancerPropertiesJson,
    LoadBalancingRuleJson,
    ProbeJson,
)
from contracts import resource_names
from contracts.activity_io import LoadBalancerRule, ResourceChange

PORT_RANGE: Final = range(6000, 7000)  # upstream's WireGuard port range [6000, 7000)
PROBE_PORT: Final = 8082
PROBE_INTERVAL_SECONDS: Final = 5
PROBE_THRESHOLD: Final = 1
SKU: Final = {"name": "Standard", "tier": "Regional"}
# What may sit on a load balancer besides our items; any of these keeps it from being deleted.
_OTHER_ITEMS: Final = ("inboundNatRules", "inboundNatPools", "outboundRules")


class PlanError(Exception):
    """The wanted state cannot be reached (e.g. no free port left): not worth retrying."""


class LoadBalancerAction(StrEnum):
    NONE = "none"
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True)
class LoadBalancerTarget:
    subscription_id: str
    resource_group: str
    name: str
    location: str
    subnet_id: str  # frontends take their private IPs from here


@dataclass(frozen=True)
class LoadBalancerPlan:
    action: LoadBalancerAction
    body: LoadBalancerJson | None  # what to PUT (None unless action is PUT)
    ports: Mapping[str, int]  # owner uid -> port, for every wanted rule
    changes: tuple[ResourceChange, ...]


def _key(value: str) -> str:
    return value.lower()


def _ref(item: object, field: str) -> str:
    """The lower-cased `id` of a sub-resource reference in a properties dict ("" if absent)."""
    if not isinstance(item, dict):
        return ""
    ref = item.get(field)
    if isinstance(ref, dict) and isinstance(ref.get("id"), str):
        return _key(ref["id"])
    return ""


def _owner(name: str) -> str:
    """The SGC UID of a rule or probe of ours (is_owned_name holds)."""
    return resource_names.parse_lb_rule_name(name)


def is_owned_name(name: str) -> bool:
    """Rules and probes we own are named by an SGC UID."""
    try:
        resource_names.parse_lb_rule_name(name)
    except ValueError:
        return False
    return True


class _Ids:
    def __init__(self, target: LoadBalancerTarget) -> None:
        self._t = target

    def frontend(self, name: str) -> str:
        t = self._t
        return resource_names.frontend_ip_configuration_id(
            t.subscription_id, t.resource_group, t.name, name
        )

    def pool(self, name: str) -> str:
        t = self._t
        return resource_names.backend_address_pool_id(
            t.subscription_id, t.resource_group, t.name, name
        )

    def probe(self, name: str) -> str:
        t = self._t
        return resource_names.probe_id(t.subscription_id, t.resource_group, t.name, name)


def expected_frontend(name: str, subnet_id: str) -> FrontendIpConfigurationJson:
    return {
        "name": name,
        "properties": {
            "privateIPAddressVersion": "IPv4",
            "privateIPAllocationMethod": "Dynamic",
            "subnet": {"id": subnet_id},
        },
    }


def expected_probe(rule: LoadBalancerRule) -> ProbeJson:
    return {
        "name": resource_names.lb_probe_name(rule.owner_uid),
        "properties": {
            "protocol": "Http",
            "port": PROBE_PORT,
            "requestPath": rule.probe_path,
            "intervalInSeconds": PROBE_INTERVAL_SECONDS,
            "probeThreshold": PROBE_THRESHOLD,
        },
    }


def _probe_matches(probe: ProbeJson, rule: LoadBalancerRule) -> bool:
    props = probe.get("properties") or {}
    return (
        str(props.get("protocol", "")).lower() == "http"
        and props.get("port") == PROBE_PORT
        and props.get("requestPath") == rule.probe_path
        and props.get("intervalInSeconds") == PROBE_INTERVAL_SECONDS
        and props.get("probeThreshold") == PROBE_THRESHOLD
    )


def _frontend_matches(frontend: FrontendIpConfigurationJson, subnet_id: str) -> bool:
    props = frontend.get("properties") or {}
    return (
        str(props.get("privateIPAddressVersion", "IPv4")).lower() == "ipv4"
        and "publicIPAddress" not in props
        and _ref(props, "subnet") == _key(subnet_id)
    )


def _rule_ports(rule: LoadBalancingRuleJson) -> set[int]:
    props = rule.get("properties") or {}
    return {p for p in (props.get("frontendPort"), props.get("backendPort")) if isinstance(p, int)}


def _rule_port_if_matching(
    rule: LoadBalancingRuleJson, frontend_id: str, pool_id: str, probe_id: str
) -> int | None:
    """The port of an existing rule that still says what we want, else None."""
    props = rule.get("properties") or {}
    port = props.get("frontendPort")
    if (
        str(props.get("protocol", "")).lower() != "udp"
        or props.get("enableFloatingIP") is not True
        or _ref(props, "frontendIPConfiguration") != _key(frontend_id)
        or _ref(props, "backendAddressPool") != _key(pool_id)
        or _ref(props, "probe") != _key(probe_id)
        or not isinstance(port, int)
        or port != props.get("backendPort")
        or port not in PORT_RANGE
    ):
        return None
    return port


def lowest_free_port(used: Iterable[int]) -> int:
    taken = set(used)
    for port in PORT_RANGE:
        if port not in taken:
            return port
    raise PlanError(
        f"no free port left in {PORT_RANGE.start}-{PORT_RANGE.stop - 1} on this backend pool"
    )


def _by_name(items: Sequence[Mapping[str, object]]) -> dict[str, int]:
    return {_key(str(item.get("name", ""))): i for i, item in enumerate(items)}


def plan_load_balancer(
    current: LoadBalancerJson | None,
    target: LoadBalancerTarget,
    rules: Sequence[LoadBalancerRule],
) -> LoadBalancerPlan:
    ids = _Ids(target)
    wanted = {_key(r.owner_uid): r for r in sorted(rules, key=lambda r: r.owner_uid)}
    if len(wanted) != len(rules):
        raise PlanError("two rules have the same owner UID")
    if current is None and not wanted:
        return LoadBalancerPlan(LoadBalancerAction.NONE, None, {}, ())
    changes: list[ResourceChange] = []
    body: LoadBalancerJson
    if current is None:
        body = {"location": target.location, "sku": dict(SKU), "properties": {}}
        changes.append(ResourceChange(f"created load balancer {target.name}"))
    else:
        body = copy.deepcopy(current)
    props: LoadBalancerPropertiesJson = body.setdefault("properties", {})
    fronts = list(props.get("frontendIPConfigurations") or [])
    pools = list(props.get("backendAddressPools") or [])
    probes = list(props.get("probes") or [])
    lb_rules = list(props.get("loadBalancingRules") or [])

    # Pools and frontends we may remove when unused: those our rules point at, and pairs that
    # share a name (how we name them), so a pair left behind out of band is cleaned up too.
    ours: set[str] = {_key(str(f.get("name", ""))) for f in fronts} & {
        _key(str(p.get("name", ""))) for p in pools
    }
    for lb_rule in lb_rules:
        if is_owned_name(str(lb_rule.get("name", ""))):
            for field in ("frontendIPConfiguration", "backendAddressPool"):
                ref = _ref(lb_rule.get("properties") or {}, field)
                if ref:
                    ours.add(ref.rsplit("/", 1)[-1])

    # 1. Frontends and backend pools for every wanted rule.
    for rule in wanted.values():
        name = rule.lb_pool_name
        at = _by_name(fronts).get(_key(name))
        if at is None:
            fronts.append(expected_frontend(name, target.subnet_id))
            changes.append(ResourceChange(f"added frontend {name}"))
        elif not _frontend_matches(fronts[at], target.subnet_id):
            fronts[at] = expected_frontend(name, target.subnet_id)
            changes.append(
                ResourceChange(
                    f"replaced frontend {name} (it was not a private IPv4 in the subnet)"
                )
            )
        if _key(name) not in _by_name(pools):
            pools.append({"name": name, "properties": {}})
            changes.append(ResourceChange(f"added backend pool {name}"))

    # 2. Probes: ours are exactly the wanted ones, as expected.
    kept_probes: list[ProbeJson] = []
    replaced_probes: set[str] = set()
    for probe in probes:
        pname = str(probe.get("name", ""))
        if not is_owned_name(pname):
            kept_probes.append(probe)
            continue
        want = wanted.get(_key(pname))
        if want is None:
            changes.append(ResourceChange(f"removed probe {pname}", _owner(pname)))
        elif _probe_matches(probe, want):
            kept_probes.append(probe)
        else:
            replaced_probes.add(_key(want.owner_uid))
            changes.append(ResourceChange(f"replaced probe {pname}", want.owner_uid))
    for rule in wanted.values():
        if _key(rule.owner_uid) not in _by_name(kept_probes):
            kept_probes.append(expected_probe(rule))
            if _key(rule.owner_uid) not in replaced_probes:
                changes.append(ResourceChange(f"added probe {rule.owner_uid}", rule.owner_uid))

    # 3. Rules: keep matching ones with their ports, drop the rest of ours.
    kept_rules: list[LoadBalancingRuleJson] = []
    ports: dict[str, int] = {}
    used: dict[str, set[int]] = {}  # backend pool id -> ports taken
    to_place: list[LoadBalancerRule] = []
    replaced_rules: set[str] = set()
    for existing in lb_rules:
        rname = str(existing.get("name", ""))
        if not is_owned_name(rname):
            kept_rules.append(existing)
            pool_ref = _ref(existing.get("properties") or {}, "backendAddressPool")
            used.setdefault(pool_ref, set()).update(_rule_ports(existing))
    for existing in lb_rules:
        rname = str(existing.get("name", ""))
        if not is_owned_name(rname):
            continue
        owner = wanted.get(_key(rname))
        if owner is None:
            port_text = (existing.get("properties") or {}).get("frontendPort")
            changes.append(
                ResourceChange(f"removed rule {rname} (port {port_text})", _owner(rname))
            )
            continue
        pool_id = _key(ids.pool(owner.lb_pool_name))
        port = _rule_port_if_matching(
            existing,
            ids.frontend(owner.lb_pool_name),
            ids.pool(owner.lb_pool_name),
            ids.probe(resource_names.lb_probe_name(owner.owner_uid)),
        )
        if port is None or port in used.get(pool_id, set()):
            to_place.append(owner)
            replaced_rules.add(_key(owner.owner_uid))
            changes.append(ResourceChange(f"replaced rule {rname}", owner.owner_uid))
            continue
        kept_rules.append(existing)
        used.setdefault(pool_id, set()).add(port)
        ports[_key(owner.owner_uid)] = port
    placed_names = {_key(str(r.get("name", ""))) for r in kept_rules}
    to_place += [
        r for r in wanted.values() if _key(r.owner_uid) not in placed_names and r not in to_place
    ]
    for placing in sorted(to_place, key=lambda r: r.owner_uid):
        pool_id = _key(ids.pool(placing.lb_pool_name))
        try:
            port = lowest_free_port(used.get(pool_id, set()))
        except PlanError as err:
            raise PlanError(f"cannot add rule {placing.owner_uid}: {err}") from None
        used.setdefault(pool_id, set()).add(port)
        ports[_key(placing.owner_uid)] = port
        kept_rules.append(
            {
                "name": resource_names.lb_rule_name(placing.owner_uid),
                "properties": {
                    "protocol": "Udp",
                    "frontendPort": port,
                    "backendPort": port,
                    "enableFloatingIP": True,
                    "frontendIPConfiguration": {"id": ids.frontend(placing.lb_pool_name)},
                    "backendAddressPool": {"id": ids.pool(placing.lb_pool_name)},
                    "probe": {"id": ids.probe(resource_names.lb_probe_name(placing.owner_uid))},
                },
            }
        )
        if _key(placing.owner_uid) not in replaced_rules:
            changes.append(
                ResourceChange(f"added rule {placing.owner_uid} on port {port}", placing.owner_uid)
            )

    # 4. Frontends and pools of ours that no rule uses any more.
    referenced: set[str] = set()
    for kept in kept_rules:
        rprops = kept.get("properties") or {}
        for field in ("frontendIPConfiguration", "backendAddressPool"):
            ref = _ref(rprops, field)
            if ref:
                referenced.add(ref.rsplit("/", 1)[-1])
        for listed in rprops.get("backendAddressPools") or []:
            referenced.add(_key(listed.get("id", "")).rsplit("/", 1)[-1])
    kept_fronts: list[FrontendIpConfigurationJson] = []
    for front in fronts:
        fname = str(front.get("name", ""))
        if _key(fname) in ours and _key(fname) not in referenced:
            changes.append(ResourceChange(f"removed frontend {fname}"))
        else:
            kept_fronts.append(front)
    kept_pools: list[BackendAddressPoolJson] = []
    for pool in pools:
        pname = str(pool.get("name", ""))
        if _key(pname) in ours and _key(pname) not in referenced:
            changes.append(ResourceChange(f"removed backend pool {pname}"))
        else:
            kept_pools.append(pool)

    props["frontendIPConfigurations"] = kept_fronts
    props["backendAddressPools"] = kept_pools
    props["probes"] = kept_probes
    props["loadBalancingRules"] = kept_rules
    ports_by_uid = {r.owner_uid: ports[_key(r.owner_uid)] for r in rules}

    empty = not (kept_fronts or kept_pools or kept_probes or kept_rules) and not any(
        props.get(k) for k in _OTHER_ITEMS
    )
    if empty:
        if current is None:
            return LoadBalancerPlan(LoadBalancerAction.NONE, None, {}, ())
        return LoadBalancerPlan(
            LoadBalancerAction.DELETE,
            None,
            {},
            (*changes, ResourceChange(f"deleted load balancer {target.name}")),
        )
    if not changes and props.get("provisioningState") == "Failed":
        # The last write failed half way: write the same document again to repair it.
        changes.append(ResourceChange(f"re-applied load balancer {target.name} (it was Failed)"))
    if not changes:
        return LoadBalancerPlan(LoadBalancerAction.NONE, None, ports_by_uid, ())
    return LoadBalancerPlan(LoadBalancerAction.PUT, body, ports_by_uid, tuple(changes))


def frontend_ips(lb: LoadBalancerJson, rules: Sequence[LoadBalancerRule]) -> dict[str, str]:
    """Owner uid -> private IP of its frontend, for the rules whose frontend has one."""
    by_name = {
        _key(str(f.get("name", ""))): f
        for f in (lb.get("properties") or {}).get("frontendIPConfigurations") or []
    }
    out: dict[str, str] = {}
    for rule in rules:
        front = by_name.get(_key(rule.lb_pool_name))
        address = ((front or {}).get("properties") or {}).get("privateIPAddress")
        if address:
            out[rule.owner_uid] = address
    return out
