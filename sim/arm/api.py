"""ARM request semantics, free of HTTP plumbing: routing by path and method, reads and paging,
PUT/PATCH/DELETE with preconditions, conflicts and long-running operations, and actions."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.arm import compute, ids, lro, network
from sim.arm.body import JsonObject, merge
from sim.arm.errors import ArmError, another_operation_in_progress, bad_request, not_found
from sim.arm.ids import ArmPath
from sim.arm.resource_body import WriteContext
from sim.arm.store import Operation, Resource, Store, Transaction

Prepare = Callable[[WriteContext], Resource]
PREPARE: dict[str, Prepare] = {
    ids.RESOURCE_GROUPS: network.prepare_resource_group,
    ids.VIRTUAL_NETWORKS: network.prepare_vnet,
    ids.SUBNETS: network.prepare_subnet,
    ids.LOAD_BALANCERS: network.prepare_load_balancer,
    ids.PUBLIC_IP_PREFIXES: network.prepare_public_ip_prefix,
    ids.PUBLIC_IP_ADDRESSES: network.prepare_public_ip,
    ids.NETWORK_INTERFACES: network.prepare_nic,
    ids.VMSS: compute.prepare_vmss,
    ids.VMSS_VMS: compute.prepare_vmss_vm,
    ids.VIRTUAL_MACHINES: compute.prepare_vm,
}
# Read-only through ARM: created as a side effect of scale set instances.
READ_ONLY_TYPES = frozenset({ids.VMSS_VM_NICS, ids.VMSS_VM_PUBLIC_IPS})
# Collections that gather records from below a scale set (the network API's VMSS views).
AGGREGATES = {
    "microsoft.compute/virtualmachinescalesets/networkinterfaces": ids.VMSS_VM_NICS,
    "microsoft.compute/virtualmachinescalesets/publicipaddresses": ids.VMSS_VM_PUBLIC_IPS,
}
ACTIONS = {(ids.VMSS, "manualupgrade")}
KEPT_OPERATIONS = 1000  # finished operations kept so that resumed pollers still find them


@dataclass(frozen=True)
class ArmRequest:
    method: str
    path: ArmPath
    query: Mapping[str, str]
    headers: Mapping[str, str]  # case-insensitive in practice (aiohttp's CIMultiDict)
    body: bytes = b""

    @property
    def api_version(self) -> str:
        return self.query.get("api-version", "")


@dataclass
class ArmResponse:
    status: int
    body: Any = None  # a JSON value, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)


class ArmApi:
    """The resource manager itself, over a Store; `changed` is called after every change."""

    def __init__(
        self,
        store: Store,
        base_url: Callable[[], str],
        changed: Callable[[], None],
        page_size: int,
    ) -> None:
        self.store = store
        self.base_url = base_url
        self.changed = changed
        self.page_size = page_size

    def handle(self, req: ArmRequest, fail: JsonObject | None) -> ArmResponse:
        """Answer one authenticated ARM request; `fail` makes its operation fail."""
        return self.route(req, req.path, req.method, req.body, fail)

    def location_of(self, path: ArmPath) -> str:
        """The region a request is about (for ARM's messages): the resource's, else the nearest
        stored ancestor's or the resource group's; "" when nothing is known."""
        if path.types and path.types[0].lower() == "locations" and path.names:
            return path.names[0]
        candidates = [path.key] if not path.is_collection else []
        parent = path.parent()
        while parent is not None:
            candidates.append(parent.key)
            parent = parent.parent()
        if path.resource_group_id is not None:
            candidates.append(path.resource_group_id.lower())
        for key in candidates:
            found = self.store.get(key)
            if found is not None and found.body.get("location"):
                return str(found.body["location"])
        return ""

    def render(self, resource: Resource) -> JsonObject:
        """The resource as GET returns it: stored body plus computed, read-only fields."""
        body = copy.deepcopy(resource.body)
        body.setdefault("properties", {})
        kind = resource.type
        if kind == ids.VIRTUAL_NETWORKS:
            network.render_vnet(self.store, body, self.render)
        elif kind == ids.SUBNETS:
            network.render_subnet(self.store, body)
        elif kind == ids.LOAD_BALANCERS:
            network.render_load_balancer(self.store, body)
        elif kind == ids.PUBLIC_IP_PREFIXES:
            network.render_public_ip_prefix(self.store, body)
        elif kind in (ids.PUBLIC_IP_ADDRESSES, ids.VMSS_VM_PUBLIC_IPS):
            network.render_public_ip(self.store, body)
        elif kind in (ids.NETWORK_INTERFACES, ids.VMSS_VM_NICS):
            network.render_nic(self.store, body)
        return body

    def route(
        self,
        req: ArmRequest,
        path: ArmPath,
        method: str,
        raw: bytes,
        fail: JsonObject | None,
    ) -> ArmResponse:
        types_lower = tuple(t.lower() for t in path.types)
        if len(types_lower) == 2 and types_lower[0] == "locations" and path.resource_group is None:
            if method != "GET" or path.is_collection:
                raise ArmError(405, "MethodNotAllowed", "Operation status is read-only.")
            return self._operation(path)
        if method == "HEAD":
            # Existence check: 204 when present, the usual 404 otherwise.
            self._get(path)
            return ArmResponse(204)
        if method == "GET":
            return self._collection(req, path) if path.is_collection else self._get(path)
        if method == "POST" and path.is_collection:
            return self._action(req, path, raw, fail)
        if path.is_collection:
            raise ArmError(
                405, "MethodNotAllowed", f"The method {method} is not allowed on a collection."
            )
        if method in ("PUT", "PATCH"):
            return self._put(req, path, method, raw, fail)
        if method == "DELETE":
            return self._delete(req, path, fail)
        raise ArmError(405, "MethodNotAllowed", f"The method {method[:10]} is not supported.")

    # Reads -----------------------------------------------------------------------------------

    def _missing(self, path: ArmPath) -> ArmError:
        rg_id = path.resource_group_id
        if rg_id is not None and self.store.get(rg_id) is None:
            return ArmError(
                404,
                "ResourceGroupNotFound",
                f"Resource group '{path.resource_group}' could not be found.",
            )
        parent = path.parent()
        if parent is not None and self.store.get(parent.key) is None:
            return ArmError(
                404,
                "ParentResourceNotFound",
                f"Failed to perform the requested operation on nested resource type "
                f"'{path.types[-1]}'. Parent resource '{parent.id}' was not found.",
            )
        return not_found(path.id)

    def _known_type(self, path: ArmPath) -> str:
        canonical = path.canonical_type
        if canonical is None:
            raise _unknown_type(path)
        return canonical

    def _get(self, path: ArmPath) -> ArmResponse:
        if path.canonical_type is None:
            return self._get_embedded(path)
        found = self.store.get(path.key)
        if found is None:
            raise self._missing(path)
        body = self.render(found)
        return ArmResponse(200, body, {"ETag": str(body.get("etag", ""))})

    def _embedded_items(self, path: ArmPath) -> list[JsonObject]:
        """The children (e.g. a load balancer's probes) that `path` names inside their parent."""
        parent = path.parent()
        if parent is not None:
            key = ids.EMBEDDED_CHILDREN.get(parent.canonical_type or "", {}).get(
                path.types[-1].lower()
            )
            if key is not None:
                owner = self.store.get(parent.key)
                if owner is None:
                    raise self._missing(path)
                items: list[JsonObject] = self.render(owner)["properties"].get(key, [])
                return items
        raise _unknown_type(path)

    def _get_embedded(self, path: ArmPath) -> ArmResponse:
        for item in self._embedded_items(path):
            if str(item.get("name", "")).lower() == path.name.lower():
                return ArmResponse(200, item)
        raise not_found(path.id)

    def _collection(self, req: ArmRequest, path: ArmPath) -> ArmResponse:
        items = [self.render(r) for r in self._list(path)]
        token = req.query.get("$skiptoken", "0")
        if not token.isdigit() or int(token) > len(items):
            raise bad_request("The $skiptoken is invalid.", "InvalidSkipToken")
        start = int(token)
        page = items[start : start + self.page_size]
        out: JsonObject = {"value": page}
        if start + self.page_size < len(items):
            query = f"api-version={req.api_version}&$skiptoken={start + self.page_size}"
            out["nextLink"] = f"{self.base_url()}{path.id}?{query}"
        return ArmResponse(200, out)

    def _list(self, path: ArmPath) -> list[Resource]:
        type_ = AGGREGATES.get(path.resource_type.lower()) or path.canonical_type
        if type_ is None:
            return [Resource(str(i["id"]), "", i) for i in self._embedded_items(path)]
        parent = path.parent()
        if parent is not None:
            if self.store.get(parent.key) is None:
                raise self._missing(path)
            prefix = parent.key + "/"
        elif path.resource_group_id is not None:
            if self.store.get(path.resource_group_id) is None:
                raise self._missing(path)
            prefix = path.resource_group_id.lower() + "/"
        else:
            prefix = f"/subscriptions/{path.subscription}/".lower()
        found = [r for r in self.store.of_type(type_) if r.key.startswith(prefix)]
        if type_ == ids.VMSS_VMS:
            return sorted(found, key=lambda r: int(str(r.body.get("instanceId", "0"))))
        return sorted(found, key=lambda r: r.key)

    def _operation(self, path: ArmPath) -> ArmResponse:
        op = self.store.operations.get(path.name)
        if op is None:
            raise not_found(path.id)
        now = time.time()
        if path.types[1].lower() == "operationresults":
            if not op.done:
                location = f"{self.base_url()}{op.result_path}?api-version={op.api_version}"
                return ArmResponse(
                    202, headers={"Location": location, "Retry-After": lro.poll_hint(op, now)}
                )
            if op.error is not None:
                raise ArmError(400, str(op.error.get("code")), str(op.error.get("message")))
            if op.method == "DELETE":
                return ArmResponse(204)
            if op.method == "POST":
                return ArmResponse(200, {})
            return self._get(ids.parse_path(op.resource_id))
        headers = {} if op.done else {"Retry-After": lro.poll_hint(op, now)}
        return ArmResponse(200, lro.status_body(op, now), headers)

    # Writes ----------------------------------------------------------------------------------

    def _latency(self, method: str, resource_type: str, action: str | None = None) -> float:
        short = ids.short_type(resource_type)
        table = {k.lower(): v for k, v in self.store.latency.items()}
        candidates = []
        if action:
            candidates += [f"{method} {short}/{action}", f"{method} {resource_type}/{action}"]
        candidates += [f"{method} {short}", f"{method} {resource_type}"]
        for key in candidates:
            if key.lower() in table:
                return max(0.0, table[key.lower()])
        return 0.0

    def _check_conflicts(self, key: str) -> None:
        for op in self.store.pending_operations():
            other = op.resource_id.lower()
            if other == key or key.startswith(other + "/") or other.startswith(key + "/"):
                raise another_operation_in_progress(op.resource_id)

    def _check_preconditions(self, req: ArmRequest, existing: Resource | None) -> None:
        if_match = req.headers.get("If-Match")
        if if_match is not None:
            if existing is None:
                raise ArmError(
                    412, "PreconditionFailed", "If-Match was given but the resource does not exist."
                )
            current = str(existing.body.get("etag", ""))
            if if_match.strip() != "*" and if_match.strip() != current:
                raise ArmError(
                    412,
                    "PreconditionFailed",
                    f"The If-Match value {if_match[:80]} does not match the current ETag "
                    f"{current} of {existing.id}.",
                )
        if_none = req.headers.get("If-None-Match")
        if if_none is not None and if_none.strip() == "*" and existing is not None:
            raise ArmError(412, "PreconditionFailed", f"The resource {existing.id} already exists.")

    def _start_operation(
        self,
        method: str,
        resource: Resource,
        path: ArmPath,
        fail: JsonObject | None,
        action: str | None = None,
        api_version: str = "",
    ) -> Operation:
        location = str(resource.body.get("location") or "global")
        op = Operation(
            id=str(uuid.uuid4()),
            method=method,
            resource_id=resource.id,
            resource_type=resource.type,
            subscription=path.subscription,
            namespace=path.namespace,
            location=location,
            started=time.time(),
            duration=self._latency(method, resource.type, action),
            error=fail,
            action=action,
            api_version=api_version,
        )
        self.store.operations[op.id] = op
        self._forget_old_operations()
        return op

    def _finish_if_instant(self, op: Operation) -> None:
        """Finish an operation with no latency, after its first answer was made: ARM accepts an
        asynchronous write first (Creating/Updating/Deleting) even when the work takes no time,
        and the first poll then finds it done."""
        if op.duration <= 0 and not op.done:
            lro.finish(self.store, op)

    def _forget_old_operations(self) -> None:
        finished = [o for o in self.store.operations.values() if o.done]
        for op in finished[: max(0, len(finished) - KEPT_OPERATIONS)]:
            del self.store.operations[op.id]

    def _lro_headers(self, op: Operation, *, location: bool) -> dict[str, str]:
        query = f"?api-version={op.api_version}"
        headers = {"Azure-AsyncOperation": self.base_url() + op.status_path + query}
        if location:
            headers["Location"] = self.base_url() + op.result_path + query
            headers["Retry-After"] = lro.poll_hint(op, time.time())
        return headers

    @staticmethod
    def parse_body(raw: bytes) -> JsonObject:
        try:
            data = json.loads(raw.decode("utf-8")) if raw.strip() else None
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise bad_request(
                f"The request content was invalid and could not be deserialized: {exc}."
            ) from exc
        if not isinstance(data, dict):
            raise bad_request("The request content must be a JSON object.", "InvalidRequestContent")
        return data

    def _put(
        self, req: ArmRequest, path: ArmPath, method: str, raw: bytes, fail: JsonObject | None
    ) -> ArmResponse:
        canonical = self._known_type(path)
        if canonical in READ_ONLY_TYPES:
            raise ArmError(
                405, "MethodNotAllowed", f"{canonical} is read-only; change its scale set instead."
            )
        if canonical != ids.RESOURCE_GROUPS:
            if path.resource_group is None:
                raise bad_request("Resources must be created inside a resource group.")
            if self.store.get(path.resource_group_id or "") is None:
                raise self._missing(path)
            parent = path.parent()
            if parent is not None and self.store.get(parent.key) is None:
                raise self._missing(path)
        existing = self.store.get(path.key)
        self._check_preconditions(req, existing)
        body = self.parse_body(raw)
        if method == "PATCH":
            if existing is None:
                raise self._missing(path)
            body = merge(self.render(existing), body)
        if canonical != ids.RESOURCE_GROUPS:
            self._check_conflicts(path.key)
        tx = Transaction(self.store)
        prepared = PREPARE[canonical](WriteContext(tx, path, body, existing))
        if canonical == ids.RESOURCE_GROUPS:
            tx.put(prepared)
            tx.commit()
            self.changed()
            rendered = self.render(prepared)
            return ArmResponse(200 if existing else 201, rendered)
        # The network RP reports Updating while it works, the compute RP Creating for new ones.
        creating = existing is None and canonical.startswith("Microsoft.Compute/")
        prepared.properties["provisioningState"] = "Creating" if creating else "Updating"
        tx.put(prepared)
        tx.commit()
        op = self._start_operation(method, prepared, path, fail, api_version=req.api_version)
        stored = self.store.get(path.key)
        assert stored is not None
        rendered = self.render(stored)
        status = 200 if existing is not None or method == "PATCH" else 201
        headers = {"ETag": str(rendered.get("etag", "")), **self._lro_headers(op, location=False)}
        self._finish_if_instant(op)
        self.changed()
        return ArmResponse(status, rendered, headers)

    def _delete(self, req: ArmRequest, path: ArmPath, fail: JsonObject | None) -> ArmResponse:
        canonical = self._known_type(path)
        if canonical in READ_ONLY_TYPES:
            raise ArmError(405, "MethodNotAllowed", f"{canonical} cannot be deleted directly.")
        if (
            canonical != ids.RESOURCE_GROUPS
            and self.store.get(path.resource_group_id or "") is None
        ):
            raise self._missing(path)
        existing = self.store.get(path.key)
        self._check_preconditions(req, existing)
        if existing is None:
            return ArmResponse(204)
        self._check_conflicts(existing.key)
        if canonical != ids.RESOURCE_GROUPS:
            network.check_delete(self.store, existing)
        existing.properties["provisioningState"] = "Deleting"
        op = self._start_operation("DELETE", existing, path, fail, api_version=req.api_version)
        answer = ArmResponse(202, headers=self._lro_headers(op, location=True))
        self._finish_if_instant(op)
        self.changed()
        return answer

    def _action(
        self, req: ArmRequest, path: ArmPath, raw: bytes, fail: JsonObject | None
    ) -> ArmResponse:
        target = path.parent()
        action = path.types[-1].lower()
        if target is None or (target.canonical_type, action) not in ACTIONS:
            raise ArmError(
                400,
                "InvalidResourceType",
                f"The action '{path.types[-1][:40]}' is not supported on "
                f"'{path.resource_type[:80]}'.",
            )
        resource = self.store.get(target.key)
        if resource is None:
            raise self._missing(target)
        self._check_conflicts(resource.key)
        body = self.parse_body(raw) if raw.strip() else {}
        tx = Transaction(self.store)
        compute.manual_upgrade(tx, resource, body)
        tx.commit()
        op = self._start_operation("POST", resource, target, fail, action, req.api_version)
        answer = ArmResponse(202, headers=self._lro_headers(op, location=True))
        self._finish_if_instant(op)
        self.changed()
        return answer


def _unknown_type(path: ArmPath) -> ArmError:
    return ArmError(
        400,
        "InvalidResourceType",
        f"The resource type '{'/'.join(path.types)[:80]}' could not be found in the "
        f"namespace '{path.namespace[:60]}'.",
    )
