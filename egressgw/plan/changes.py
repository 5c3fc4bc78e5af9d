"""What applying a StaticGatewayConfiguration would change, as plain data, and the pure steps
that turn Azure as read into the inputs of the workflows' own planners: the other owners' rules
on the shared load balancer and ipConfigs on a pool, and the node gateways before and after.

The planners themselves are the ones the single writers run (activities/azure/
load_balancer_plan.py, ip_config_plan.py, vmss.py, vm_pool.py) and the decisions
GatewayConfigWorkflow takes (workflows/gateway_config_decisions.py, node_decisions.py);
egressgw/plan/azure_plan.py feeds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from activities.azure.arm_json import IpConfigurationJson, LoadBalancerJson
from contracts import resource_names
from contracts.activity_io import LoadBalancerRule, PoolIpConfig
from contracts.azure_state import GatewayPool
from contracts.node_io import NodeGateway
from contracts.spec_validation import FieldError

# A configuration not created yet has no uid; names derived from it use this one (a UUID, as the
# load balancer's rule names must be) and are shown as <uid>.
NEW_UID: Final = "00000000-0000-0000-0000-000000000000"
UID_PLACEHOLDER: Final = "<uid>"
ALLOCATED: Final = "(allocated by Azure)"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class Target(StrEnum):
    AZURE = "azure"
    NODE = "node"


@dataclass(frozen=True)
class PlannedChange:
    action: Action
    target: Target
    resource: str  # e.g. "load balancer kubeegressgateway-ilb", "node aks-gwpool-...000000"
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConfigurationPlan:
    source: str
    namespace: str
    name: str
    uid: str  # "" for a configuration that does not exist yet
    errors: tuple[FieldError, ...] = ()  # the spec is invalid: nothing is planned
    refusal: str = ""  # what the controller would refuse it with (Degraded), "" if none
    changes: tuple[PlannedChange, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def new(self) -> bool:
        return not self.uid

    def count(self, action: Action) -> int:
        return sum(1 for change in self.changes if change.action is action)


# --- The shared load balancer --------------------------------------------------------------------


def _ref_name(ref: object) -> str:
    if isinstance(ref, Mapping) and isinstance(ref.get("id"), str):
        return str(ref["id"]).rsplit("/", 1)[-1]
    return ""


def rules_on(lb: LoadBalancerJson | None) -> dict[str, LoadBalancerRule]:
    """Owner uid -> the rule the load balancer holds for it: every configuration's rule as the
    load balancer's workflow registered it (its backend pool names the gateway pool)."""
    rules: dict[str, LoadBalancerRule] = {}
    for rule in ((lb or {}).get("properties") or {}).get("loadBalancingRules") or []:
        try:
            uid = resource_names.parse_lb_rule_name(str(rule.get("name", "")))
        except ValueError:
            continue  # not ours
        pool = _ref_name((rule.get("properties") or {}).get("backendAddressPool"))
        if pool:
            rules[uid] = LoadBalancerRule(uid, pool, resource_names.probe_path(uid))
    return rules


def rule_port(lb: LoadBalancerJson | None, uid: str) -> int | None:
    for rule in ((lb or {}).get("properties") or {}).get("loadBalancingRules") or []:
        if str(rule.get("name", "")).lower() == uid.lower():
            port = (rule.get("properties") or {}).get("frontendPort")
            return port if isinstance(port, int) else None
    return None


def frontend_ip(lb: LoadBalancerJson | None, lb_pool_name: str) -> str:
    """The private IP of the frontend named `lb_pool_name` ("" when it has none yet)."""
    for front in ((lb or {}).get("properties") or {}).get("frontendIPConfigurations") or []:
        if str(front.get("name", "")).lower() == lb_pool_name.lower():
            return str((front.get("properties") or {}).get("privateIPAddress") or "")
    return ""


def with_rule(
    rules: Mapping[str, LoadBalancerRule], uid: str, wanted: LoadBalancerRule | None
) -> tuple[LoadBalancerRule, ...]:
    """Every owner's rule, with `uid`'s replaced by `wanted` (or dropped)."""
    kept = {owner: rule for owner, rule in rules.items() if owner.lower() != uid.lower()}
    if wanted is not None:
        kept[uid] = wanted
    return tuple(kept[owner] for owner in sorted(kept))


# --- A gateway pool's ipConfigs ------------------------------------------------------------------


def vmss_ip_configs(configs: Sequence[IpConfigurationJson]) -> dict[str, PoolIpConfig]:
    """Owner uid -> its ipConfig in a VMSS NIC profile (the prefix from its public IP config)."""
    found: dict[str, PoolIpConfig] = {}
    for config in configs:
        name = str(config.get("name", ""))
        if not resource_names.is_managed_resource_name(name):
            continue
        props = config.get("properties") or {}
        public = props.get("publicIPAddressConfiguration")
        prefix = ""
        if public is not None:
            ref = (public.get("properties") or {}).get("publicIPPrefix")
            prefix = ref["id"] if ref else ""
        uid = resource_names.parse_managed_resource_name(name)
        found[uid] = PoolIpConfig(uid, name, str(prefix))
    return found


def nic_ip_configs(
    configs: Sequence[IpConfigurationJson], pool: GatewayPool
) -> dict[str, PoolIpConfig]:
    """Owner uid -> its ipConfig on a VM pool's gateway NIC. The NIC names a public IP
    `<prefix>-<hash>` carved from the prefix; vm_pool.wanted_on_nic derives the same public IP
    from a prefix of that name, so that is the prefix given here."""
    found: dict[str, PoolIpConfig] = {}
    for config in configs:
        name = str(config.get("name", ""))
        if not resource_names.is_managed_resource_name(name):
            continue
        ref = (config.get("properties") or {}).get("publicIPAddress")
        ip_id = ref["id"] if ref else ""
        prefix_id = ""
        if ip_id:
            try:
                ip_name = resource_names.parse_arm_resource_id(str(ip_id)).name
                prefix_name = resource_names.parse_vm_pool_public_ip_name(ip_name).prefix_name
                prefix_id = resource_names.public_ip_prefix_id(
                    pool.subscription_id, pool.resource_group, prefix_name
                )
            except ValueError:
                prefix_id = ""
        uid = resource_names.parse_managed_resource_name(name)
        found[uid] = PoolIpConfig(uid, name, prefix_id)
    return found


def with_ip_config(
    configs: Mapping[str, PoolIpConfig], uid: str, wanted: PoolIpConfig | None
) -> tuple[PoolIpConfig, ...]:
    kept = {owner: c for owner, c in configs.items() if owner.lower() != uid.lower()}
    if wanted is not None:
        kept[uid] = wanted
    return tuple(kept[owner] for owner in sorted(kept))


def provisioning_failed(resource: Mapping[str, Any]) -> bool:
    return (resource.get("properties") or {}).get("provisioningState") == "Failed"


# --- Gateway nodes -------------------------------------------------------------------------------


def describe_gateway(gateway: NodeGateway) -> str:
    frontend = gateway.frontend_ip or ALLOCATED
    secondary = gateway.secondary_ip or ALLOCATED
    port = gateway.listen_port
    return f"gateway wg-{port}: frontend {frontend}:{port}, SNAT to secondary IP {secondary}"


def node_changes(
    before: Iterable[NodeGateway], after: Iterable[NodeGateway]
) -> list[PlannedChange]:
    """Per node: a gateway added where there was none, changed (another port, frontend or
    secondary IP: the agent replaces the interface), or removed."""
    old = {g.node_name: g for g in before}
    new = {g.node_name: g for g in after}
    changes: list[PlannedChange] = []
    for node in sorted(old.keys() | new.keys()):
        was, will = old.get(node), new.get(node)
        resource = f"node {node}"
        if was is None and will is not None:
            changes.append(
                PlannedChange(Action.CREATE, Target.NODE, resource, (describe_gateway(will),))
            )
        elif will is None and was is not None:
            removal = (f"remove gateway wg-{was.listen_port}",)
            changes.append(PlannedChange(Action.DELETE, Target.NODE, resource, removal))
        elif was is not None and will is not None and _differs(was, will):
            update = (f"was {describe_gateway(was)}", f"now {describe_gateway(will)}")
            changes.append(PlannedChange(Action.UPDATE, Target.NODE, resource, update))
    return changes


def _differs(was: NodeGateway, will: NodeGateway) -> bool:
    return (was.listen_port, was.frontend_ip, was.secondary_ip, was.primary_ip) != (
        will.listen_port,
        will.frontend_ip,
        will.secondary_ip,
        will.primary_ip,
    )
