"""The emulated apiserver's semantics, independent of HTTP.

Stored objects are never mutated in place: every write stores a new dict, so lists, pagination
snapshots and watch events can hand out references safely. Every method runs to completion
without awaiting, which makes each API call atomic with respect to the others.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
import uuid
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sim.kube import builtins, cel, crds, errors, objectmeta, patching, schema
from sim.kube.errors import ApiError, Cause, bad_request
from sim.kube.resources import Registry, ResourceType
from sim.kube.selectors import FieldSelector, LabelSelector
from sim.kube.storage import Storage, StoredKey

Obj = dict[str, Any]
ResKey = tuple[str, str]  # storage group, plural
ObjKey = tuple[str, str]  # namespace ("" when cluster-scoped), name

CRD_KEY: ResKey = ("apiextensions.k8s.io", "customresourcedefinitions")
NAMESPACE_KEY: ResKey = ("", "namespaces")
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
FIELD_VALIDATION = ("", "Ignore", "Warn", "Strict")
EXPIRED_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this response "
    "to retrieve the remainder of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted between the time the "
    "first chunk was returned and now may show up in the list."
)


@dataclass(frozen=True)
class Event:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    key: ResKey
    old: Obj | None
    new: Obj


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_validation: str = ""


@dataclass
class WriteResult:
    obj: Obj
    warnings: list[str] = field(default_factory=list)
    created: bool = False


@dataclass(eq=False)
class Watcher:
    key: ResKey
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)

    def _matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace", "") != self.namespace:
            return False
        return self.labels.matches(meta.get("labels")) and self.fields.matches(obj)

    def translate(self, event: Event) -> tuple[str, Obj] | None:
        """What this watcher sees of an event; selector transitions become ADDED/DELETED."""
        if event.type == "ADDED":
            return ("ADDED", event.new) if self._matches(event.new) else None
        if event.type == "DELETED":
            return ("DELETED", event.new) if self._matches(event.new) else None
        was, now = self._matches(event.old), self._matches(event.new)
        if was and now:
            return ("MODIFIED", event.new)
        if now:
            return ("ADDED", event.new)
        if was:
            return ("DELETED", event.new)
        return None


@dataclass
class ListResult:
    items: list[Obj]
    resource_version: int
    continue_token: str = ""
    remaining: int | None = None


def _meta(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _content(obj: Obj, rt: ResourceType) -> Obj:
    """The part of an object whose change bumps metadata.generation."""
    skip = {"metadata", "apiVersion", "kind"}
    if rt.status_subresource:
        skip.add("status")
    return {k: v for k, v in obj.items() if k not in skip}


class Cluster:
    def __init__(self, storage: Storage | None = None, *, history_size: int = 10_000) -> None:
        self.registry = Registry.with_builtins()
        self.storage = storage
        self.rv = 0
        self._objects: dict[ResKey, dict[ObjKey, Obj]] = {}
        self._uids: dict[str, tuple[ResKey, ObjKey]] = {}
        self._dependents: dict[str, set[tuple[ResKey, ObjKey]]] = {}
        self.history: deque[Event] = deque(maxlen=history_size)
        self.compacted_rv = 0
        self.watchers: set[Watcher] = set()
        self._snapshots: OrderedDict[str, tuple[int, list[Obj]]] = OrderedDict()
        self._storage_types: dict[ResKey, ResourceType] = {}

    # --- loading -------------------------------------------------------------------------------

    def load(self) -> None:
        if self.storage is None:
            return
        state = self.storage.load()
        self.rv = state.resource_version
        for (group, plural, namespace, name), obj in state.objects.items():
            self._index_put((group, plural), (namespace, name), obj)
        for obj in list(self._bucket(CRD_KEY).values()):
            self._install_crd(obj)
        self.compacted_rv = self.rv
        journal = self.storage.journal_path
        if journal.exists() and journal.stat().st_size > 0:
            # Fold what a crash left in the journal into a fresh snapshot before appending more.
            self.storage.snapshot(self.rv, self._all_stored())

    def seed_namespaces(self) -> None:
        rt = self._type("v1", "Namespace")
        for name in DEFAULT_NAMESPACES:
            if ("", name) not in self._bucket(NAMESPACE_KEY):
                self.create(
                    rt, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                )

    def flush(self) -> None:
        if self.storage is not None:
            self.storage.snapshot(self.rv, self._all_stored())

    def _all_stored(self) -> Iterator[tuple[StoredKey, Obj]]:
        for (group, plural), bucket in self._objects.items():
            for (namespace, name), obj in bucket.items():
                yield (group, plural, namespace, name), obj

    def _type(self, api_version: str, kind: str) -> ResourceType:
        rt = self.registry.by_kind(api_version, kind)
        if rt is None:
            raise bad_request(f'no matches for kind "{kind}" in version "{api_version}"')
        return rt

    def type_for(self, api_version: str, kind: str) -> ResourceType:
        return self._type(api_version, kind)

    # --- indexes -------------------------------------------------------------------------------

    def _bucket(self, key: ResKey) -> dict[ObjKey, Obj]:
        return self._objects.setdefault(key, {})

    def _index_put(self, key: ResKey, okey: ObjKey, obj: Obj) -> None:
        bucket = self._bucket(key)
        previous = bucket.get(okey)
        if previous is not None:
            self._unindex_owners(key, okey, previous)
        bucket[okey] = obj
        meta = _meta(obj)
        if meta.get("uid"):
            self._uids[meta["uid"]] = (key, okey)
        for ref in meta.get("ownerReferences") or []:
            if isinstance(ref, dict) and ref.get("uid"):
                self._dependents.setdefault(ref["uid"], set()).add((key, okey))

    def _index_remove(self, key: ResKey, okey: ObjKey) -> None:
        obj = self._bucket(key).pop(okey, None)
        if obj is None:
            return
        self._unindex_owners(key, okey, obj)
        self._uids.pop(_meta(obj).get("uid", ""), None)

    def _unindex_owners(self, key: ResKey, okey: ObjKey, obj: Obj) -> None:
        for ref in _meta(obj).get("ownerReferences") or []:
            if isinstance(ref, dict) and ref.get("uid") in self._dependents:
                self._dependents[ref["uid"]].discard((key, okey))

    # --- commit --------------------------------------------------------------------------------

    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def _store(self, key: ResKey, okey: ObjKey, new: Obj, old: Obj | None) -> Obj:
        rv = self._next_rv()
        new = {**new, "metadata": {**_meta(new), "resourceVersion": str(rv)}}
        self._index_put(key, okey, new)
        if self.storage is not None:
            self.storage.append(rv, (*key, *okey), new)
        self._emit(Event(rv, "ADDED" if old is None else "MODIFIED", key, old, new))
        if key == CRD_KEY:
            self._install_crd(new)
        return new

    def _erase(self, key: ResKey, okey: ObjKey, old: Obj) -> Obj:
        rv = self._next_rv()
        final = {**old, "metadata": {**_meta(old), "resourceVersion": str(rv)}}
        self._index_remove(key, okey)
        if self.storage is not None:
            self.storage.append(rv, (*key, *okey), None)
        self._emit(Event(rv, "DELETED", key, old, final))
        if key == CRD_KEY:
            self._uninstall_crd(old)
        return final

    def _emit(self, event: Event) -> None:
        if len(self.history) == self.history.maxlen:
            self.compacted_rv = self.history[0].rv
        self.history.append(event)
        for watcher in self.watchers:
            if watcher.key == event.key:
                watcher.queue.put_nowait(event)
        if self.storage is not None and self.storage.journal_lines > 20_000:
            self.flush()

    def compact(self) -> None:
        """Forget watch history and pagination snapshots, as etcd compaction does."""
        self.history.clear()
        self.compacted_rv = self.rv
        self._snapshots.clear()

    # --- CRDs ----------------------------------------------------------------------------------

    def _install_crd(self, crd: Obj) -> None:
        types = self.registry.set_crd(crd)
        storage = next((rt for rt in types if self._is_storage_version(crd, rt.version)), None)
        if storage is None:
            return
        self._storage_types[storage.storage_key] = storage
        # Defaults apply when objects are read from storage; re-defaulting in memory (without a
        # new resourceVersion) gives readers the same view.
        bucket = self._bucket(storage.storage_key)
        for okey, obj in list(bucket.items()):
            assert storage.schema is not None
            defaulted = schema.apply_defaults(storage.schema, obj)
            if defaulted != obj:
                bucket[okey] = defaulted

    @staticmethod
    def _is_storage_version(crd: Obj, version: str) -> bool:
        return any(
            v.get("name") == version and v.get("storage") for v in crd["spec"].get("versions") or []
        )

    def _uninstall_crd(self, crd: Obj) -> None:
        name = _meta(crd).get("name", "")
        types = self.registry.crd_types(name)
        self.registry.remove_crd(name)
        for rt in types[:1]:
            bucket = self._bucket(rt.storage_key)
            for okey, obj in list(bucket.items()):
                self._erase(rt.storage_key, okey, obj)

    def apply_crd_manifest(self, crd: Obj) -> None:
        """Create or update a CRD from a manifest file (used for --crd-dir)."""
        rt = self._type("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        name = _meta(crd).get("name", "")
        current = self._bucket(CRD_KEY).get(("", name))
        if current is None:
            self.create(rt, None, copy.deepcopy(crd))
            return
        body = copy.deepcopy(crd)
        body.setdefault("metadata", {})["resourceVersion"] = _meta(current)["resourceVersion"]
        body.pop("status", None)
        self.update(rt, None, name, body)

    # --- reads ---------------------------------------------------------------------------------

    def present(self, rt: ResourceType, obj: Obj) -> Obj:
        return builtins.from_storage(rt, obj)

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self._bucket(rt.storage_key).get((namespace or "", name))
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return self.present(rt, obj)

    def find(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        obj = self._bucket(rt.storage_key).get((namespace or "", name))
        return None if obj is None else self.present(rt, obj)

    def _matching(
        self, rt: ResourceType, namespace: str | None, labels: LabelSelector, fields: FieldSelector
    ) -> list[Obj]:
        bucket = self._bucket(rt.storage_key)
        keys = sorted(bucket)
        out = []
        for okey in keys:
            if namespace is not None and okey[0] != namespace:
                continue
            obj = bucket[okey]
            if labels.requirements and not labels.matches(_meta(obj).get("labels")):
                continue
            if fields.requirements and not fields.matches(obj):
                continue
            out.append(obj)
        return out

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        *,
        limit: int = 0,
        continue_token: str = "",
    ) -> ListResult:
        if continue_token:
            snapshot_id, offset = self._decode_continue(continue_token)
            snapshot = self._snapshots.get(snapshot_id)
            if snapshot is None:
                raise errors.expired(EXPIRED_CONTINUE)
            rv, items = snapshot
        else:
            offset, rv, items = 0, self.rv, self._matching(rt, namespace, labels, fields)
            snapshot_id = ""
        if limit <= 0 or offset + limit >= len(items):
            page = items[offset:]
            return ListResult([self.present(rt, o) for o in page], rv)
        if not snapshot_id:
            snapshot_id = uuid.uuid4().hex
            self._snapshots[snapshot_id] = (rv, items)
            while len(self._snapshots) > 256:
                self._snapshots.popitem(last=False)
        page = items[offset : offset + limit]
        token = base64.urlsafe_b64encode(
            json.dumps({"id": snapshot_id, "offset": offset + limit, "rv": rv}).encode()
        ).decode()
        remaining = len(items) - offset - limit
        return ListResult([self.present(rt, o) for o in page], rv, token, remaining)

    @staticmethod
    def _decode_continue(token: str) -> tuple[str, int]:
        try:
            raw = json.loads(base64.urlsafe_b64decode(token.encode()))
            return str(raw["id"]), int(raw["offset"])
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise bad_request(f"continue key is not valid: {exc}") from exc

    # --- writes --------------------------------------------------------------------------------

    def _decode(
        self, rt: ResourceType, namespace: str | None, body: Any, opts: WriteOptions
    ) -> tuple[Obj, list[str]]:
        """Type, apiVersion/kind and namespace checks, pruning and defaulting of a request body."""
        if not isinstance(body, dict):
            raise _cannot_handle(rt, "body must be a JSON object")
        if opts.field_validation not in FIELD_VALIDATION:
            raise bad_request(
                "fieldValidation must be one of Ignore, Warn or Strict, "
                f"not {opts.field_validation!r}"
            )
        obj = copy.deepcopy(body)
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if rt.custom and (not api_version or not kind):
            missing = "Kind" if not kind else "apiVersion"
            raise bad_request(f"Object '{missing}' is missing in '{json.dumps(body)[:200]}'")
        if api_version not in (None, "", rt.api_version):
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
            )
        if kind not in (None, "", rt.kind):
            raise bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj.get("metadata")
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise _cannot_handle(rt, "metadata must be an object")
        obj["metadata"] = meta
        if rt.namespaced:
            body_ns = meta.get("namespace") or ""
            if body_ns and namespace and body_ns != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = namespace or body_ns
        else:
            meta.pop("namespace", None)
        assert rt.schema is not None
        meta_causes = schema.validate(_META_TYPES, meta, "metadata")
        if meta_causes:
            raise self._decode_error(rt, meta_causes)
        obj, pruned = schema.prune(rt.schema, obj)
        warnings: list[str] = []
        if pruned and opts.field_validation == "Strict":
            unknown = ", ".join(f'unknown field "{p}"' for p in pruned)
            raise _cannot_handle(rt, f"strict decoding error: {unknown}")
        if pruned and opts.field_validation in ("", "Warn"):
            warnings = [f'unknown field "{p}"' for p in pruned]
        if not rt.custom:
            causes = schema.validate(rt.schema, obj)
            if causes:
                raise self._decode_error(rt, causes)
        obj = builtins.to_storage(rt, obj)
        obj = builtins.defaults(rt, obj)
        if rt.custom:
            obj = schema.apply_defaults(rt.schema, obj)
        return obj, warnings

    @staticmethod
    def _decode_error(rt: ResourceType, causes: list[Cause]) -> ApiError:
        detail = "; ".join(c.text() for c in causes)
        return bad_request(
            f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {detail}'
        )

    def _validate(self, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        meta = _meta(obj)
        name = meta.get("name", "")
        causes = objectmeta.validate_name(name, label=builtins.name_is_label(rt))
        causes += objectmeta.validate_metadata(meta)
        if rt.custom:
            assert rt.schema is not None
            body = {k: v for k, v in obj.items() if k != "metadata"}
            found = schema.validate(rt.schema, body)
            if schema.has_type_errors(found):
                found.append(
                    errors.invalid(
                        "<nil>",
                        "null",
                        "some validation rules were not checked because the object was invalid; "
                        "correct the existing errors to complete validation",
                    )
                )
            else:
                cel_self = {
                    **body,
                    "metadata": {k: meta[k] for k in ("name", "generateName") if k in meta},
                }
                old_self: Any = None
                if old is not None:
                    old_meta = _meta(old)
                    old_self = {
                        **{k: v for k, v in old.items() if k != "metadata"},
                        "metadata": {
                            k: old_meta[k] for k in ("name", "generateName") if k in old_meta
                        },
                    }
                    found += cel.check_rules(rt.schema, cel_self, old_self)
                else:
                    found += cel.check_rules(rt.schema, cel_self)
            causes += found
        else:
            causes += builtins.validate(rt, obj, old)
        if old is not None and _meta(old).get("deletionTimestamp"):
            before = set(_meta(old).get("finalizers") or [])
            added = [f for f in meta.get("finalizers") or [] if f not in before]
            if added:
                causes.append(
                    errors.forbidden(
                        "metadata.finalizers",
                        "no new finalizers can be added if the object is being deleted, "
                        f"found new finalizers {json.dumps(added)}",
                    )
                )
        if causes:
            raise errors.unprocessable(
                rt.kind, rt.group, name or meta.get("generateName", ""), causes
            )

    def _check_namespace(self, rt: ResourceType, namespace: str | None, name: str) -> None:
        if not rt.namespaced:
            return
        if not namespace:
            raise bad_request(
                "the server could not find the requested resource (namespace is required)"
            )
        ns = self._bucket(NAMESPACE_KEY).get(("", namespace))
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if _meta(ns).get("deletionTimestamp"):
            raise errors.forbidden_error(
                f'{errors.qualified(rt.plural, rt.group)} "{name}" is forbidden: '
                "unable to create new content in "
                f"namespace {namespace} because it is being terminated",
                name,
                rt.group,
                rt.plural,
            )

    def create(
        self, rt: ResourceType, namespace: str | None, body: Any, opts: WriteOptions | None = None
    ) -> WriteResult:
        opts = opts or WriteOptions()
        obj, warnings = self._decode(rt, namespace, body, opts)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = objectmeta.generate_name(str(meta["generateName"]))
        name = str(meta.get("name") or "")
        self._check_namespace(rt, meta.get("namespace") if rt.namespaced else None, name)
        for key in (
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ):
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = objectmeta.now()
        meta["generation"] = 1
        if rt.custom and rt.status_subresource:
            obj.pop("status", None)  # as the apiserver: create cannot set status
        if rt.kind == "CustomResourceDefinition" and not rt.custom:
            obj = crds.with_status(obj, meta["creationTimestamp"])
        self._validate(rt, obj, None)
        okey = (meta.get("namespace", "") if rt.namespaced else "", name)
        if okey in self._bucket(rt.storage_key):
            raise errors.already_exists(rt.plural, rt.group, name)
        if opts.dry_run:
            return WriteResult(self.present(rt, obj), warnings, True)
        stored = self._store(rt.storage_key, okey, obj, None)
        return WriteResult(self.present(rt, stored), warnings, True)

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        opts: WriteOptions | None = None,
        *,
        subresource: str = "",
        require_rv: bool = True,
    ) -> WriteResult:
        opts = opts or WriteOptions()
        if subresource and (subresource != "status" or not rt.status_subresource):
            raise errors.path_not_found()
        okey = (namespace or "" if rt.namespaced else "", name)
        old = self._bucket(rt.storage_key).get(okey)
        if old is None:
            raise errors.not_found(rt.plural, rt.group, name)
        if isinstance(body, dict) and isinstance(body.get("metadata"), dict):
            body_name = body["metadata"].get("name")
            if body_name and body_name != name:
                raise bad_request(
                    f"the name of the object ({body_name}) does not match the name on the URL "
                    f"({name})"
                )
        obj, warnings = self._decode(rt, namespace, body, opts)
        meta = obj["metadata"]
        meta["name"] = name
        old_meta = _meta(old)
        body_rv = meta.get("resourceVersion")
        if not body_rv:
            if require_rv and rt.custom:
                raise errors.unprocessable(
                    rt.kind,
                    rt.group,
                    name,
                    [
                        errors.invalid(
                            "metadata.resourceVersion", "0x0", "must be specified for an update"
                        )
                    ],
                )
        elif body_rv != old_meta.get("resourceVersion"):
            raise errors.conflict(rt.plural, rt.group, name)
        if subresource == "status":
            new = (
                {**old, "status": obj.get("status")}
                if "status" in obj
                else {k: v for k, v in old.items() if k != "status"}
            )
        else:
            new = obj
            if rt.status_subresource:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
            new["metadata"] = {
                **meta,
                **{
                    k: old_meta[k]
                    for k in ("uid", "creationTimestamp", "generation")
                    if k in old_meta
                },
            }
            for key in ("deletionTimestamp", "deletionGracePeriodSeconds"):
                if key in old_meta:
                    new["metadata"][key] = old_meta[key]
                else:
                    new["metadata"].pop(key, None)
            if not rt.custom and rt.kind == "Namespace":
                new = builtins.defaults(rt, new)
        new_meta = dict(_meta(new))
        new_meta["resourceVersion"] = old_meta.get("resourceVersion", "")
        if _content(new, rt) != _content(old, rt):
            new_meta["generation"] = int(old_meta.get("generation", 1)) + 1
        new["metadata"] = new_meta
        if rt.kind == "CustomResourceDefinition" and not rt.custom and subresource != "status":
            new = crds.with_status(new, objectmeta.now())
        self._validate(rt, new, old)
        if new == old:
            return WriteResult(self.present(rt, old), warnings)
        if opts.dry_run:
            return WriteResult(self.present(rt, new), warnings)
        if new_meta.get("deletionTimestamp") and not new_meta.get("finalizers"):
            final = self._store(rt.storage_key, okey, new, old)
            self._remove(rt.storage_key, okey, final)
            self._collect()
            return WriteResult(self.present(rt, final), warnings)
        stored = self._store(rt.storage_key, okey, new, old)
        self._collect()
        return WriteResult(self.present(rt, stored), warnings)

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        content_type: str,
        patch: Any,
        opts: WriteOptions | None = None,
        *,
        subresource: str = "",
    ) -> WriteResult:
        if subresource and (subresource != "status" or not rt.status_subresource):
            raise errors.path_not_found()
        current = self.get(rt, namespace, name)
        patched = patching.apply_patch(
            content_type, copy.deepcopy(current), patch, strategic=not rt.custom
        )
        meta = patched.get("metadata")
        if isinstance(meta, dict) and not meta.get("resourceVersion"):
            meta["resourceVersion"] = _meta(current).get("resourceVersion")
        if isinstance(meta, dict) and meta.get("name", name) != name:
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the "
                f"URL ({name})"
            )
        return self.update(rt, namespace, name, patched, opts, subresource=subresource)

    # --- deletion ------------------------------------------------------------------------------

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        propagation: str = "",
        dry_run: bool = False,
        preconditions: dict[str, Any] | None = None,
    ) -> tuple[Obj, bool]:
        """Delete; returns (object, removed_now)."""
        okey = (namespace or "" if rt.namespaced else "", name)
        old = self._bucket(rt.storage_key).get(okey)
        if old is None:
            raise errors.not_found(rt.plural, rt.group, name)
        meta = _meta(old)
        for key in ("uid", "resourceVersion"):
            wanted = (preconditions or {}).get(key)
            if wanted and wanted != meta.get(key):
                raise errors.conflict(rt.plural, rt.group, name)
        if propagation not in ("", "Background", "Foreground", "Orphan"):
            raise errors.unprocessable(
                "DeleteOptions",
                "",
                "",
                [
                    errors.not_supported(
                        "propagationPolicy", propagation, ["Foreground", "Background", "Orphan"]
                    )
                ],
            )
        if dry_run:
            return self.present(rt, old), not meta.get("finalizers")
        result, removed = self._delete(rt.storage_key, okey, propagation or "Background")
        self._collect()
        return self.present(rt, result), removed

    def _delete(self, key: ResKey, okey: ObjKey, propagation: str) -> tuple[Obj, bool]:
        old = self._bucket(key)[okey]
        meta = _meta(old)
        uid = meta.get("uid", "")
        if propagation == "Orphan":
            self._orphan(uid)
        finalizers = list(meta.get("finalizers") or [])
        if (
            propagation == "Foreground"
            and self._dependents.get(uid)
            and "foregroundDeletion" not in finalizers
        ):
            finalizers.append("foregroundDeletion")
        if key == NAMESPACE_KEY:
            return self._delete_namespace(okey, old), False
        if not finalizers:
            return self._remove(key, okey, old), True
        if meta.get("deletionTimestamp") and finalizers == list(meta.get("finalizers") or []):
            return old, False
        new_meta = {**meta, "finalizers": finalizers}
        if not meta.get("deletionTimestamp"):
            new_meta["deletionTimestamp"] = objectmeta.now()
            new_meta["deletionGracePeriodSeconds"] = 0
            new_meta["generation"] = int(meta.get("generation", 1)) + 1
        stored = self._store(key, okey, {**old, "metadata": new_meta}, old)
        if propagation == "Foreground":
            for dep_key, dep_okey in list(self._dependents.get(uid, ())):
                if dep_okey in self._bucket(dep_key):
                    self._delete(dep_key, dep_okey, "Foreground")
        return stored, False

    def _remove(self, key: ResKey, okey: ObjKey, old: Obj) -> Obj:
        final = self._erase(key, okey, old)
        uid = _meta(old).get("uid", "")
        # Background garbage collection: dependents whose owners are all gone are deleted.
        for dep_key, dep_okey in list(self._dependents.pop(uid, ())):
            dependent = self._bucket(dep_key).get(dep_okey)
            if dependent is None:
                continue
            owners = [
                r.get("uid")
                for r in _meta(dependent).get("ownerReferences") or []
                if isinstance(r, dict)
            ]
            if any(o in self._uids for o in owners):
                continue
            if not _meta(dependent).get("deletionTimestamp"):
                self._delete(dep_key, dep_okey, "Background")
        return final

    def _orphan(self, uid: str) -> None:
        for dep_key, dep_okey in list(self._dependents.get(uid, ())):
            dependent = self._bucket(dep_key).get(dep_okey)
            if dependent is None:
                continue
            refs = [r for r in _meta(dependent).get("ownerReferences") or [] if r.get("uid") != uid]
            new_meta = {**_meta(dependent), "ownerReferences": refs}
            if not refs:
                new_meta.pop("ownerReferences")
            self._store(dep_key, dep_okey, {**dependent, "metadata": new_meta}, dependent)
        self._dependents.pop(uid, None)

    def _delete_namespace(self, okey: ObjKey, old: Obj) -> Obj:
        meta = _meta(old)
        if meta.get("deletionTimestamp"):
            return old
        new = {
            **old,
            "metadata": {
                **meta,
                "deletionTimestamp": objectmeta.now(),
                "deletionGracePeriodSeconds": 0,
            },
            "status": {**(old.get("status") or {}), "phase": "Terminating"},
        }
        stored = self._store(NAMESPACE_KEY, okey, new, old)
        namespace = okey[1]
        for key, bucket in list(self._objects.items()):
            if key == NAMESPACE_KEY:
                continue
            for obj_key in [k for k in bucket if k[0] == namespace]:
                if obj_key in bucket and not _meta(bucket[obj_key]).get("deletionTimestamp"):
                    self._delete(key, obj_key, "Background")
        return stored

    def _collect(self) -> None:
        """Finish deletions that were waiting: foreground owners and terminating namespaces."""
        changed = True
        while changed:
            changed = False
            for key, bucket in list(self._objects.items()):
                for okey, obj in list(bucket.items()):
                    meta = _meta(obj)
                    if not meta.get("deletionTimestamp"):
                        continue
                    finalizers = list(meta.get("finalizers") or [])
                    if "foregroundDeletion" in finalizers:
                        alive = [
                            d
                            for d in self._dependents.get(meta.get("uid", ""), ())
                            if d[1] in self._bucket(d[0])
                        ]
                        if not alive:
                            finalizers.remove("foregroundDeletion")
                            new = {**obj, "metadata": {**meta, "finalizers": finalizers}}
                            stored = self._store(key, okey, new, obj)
                            if not finalizers:
                                self._remove(key, okey, stored)
                            changed = True
                    elif (
                        key == NAMESPACE_KEY
                        and not finalizers
                        and not self._namespace_has_content(okey[1])
                    ):
                        self._remove(key, okey, obj)
                        changed = True

    def _namespace_has_content(self, namespace: str) -> bool:
        return any(
            okey[0] == namespace
            for key, bucket in self._objects.items()
            if key != NAMESPACE_KEY
            for okey in bucket
        )

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        *,
        propagation: str = "",
        dry_run: bool = False,
    ) -> list[Obj]:
        items = self._matching(rt, namespace, labels, fields)
        out = []
        for obj in items:
            meta = _meta(obj)
            if (meta.get("namespace", ""), meta["name"]) not in self._bucket(rt.storage_key):
                continue
            result, _ = self.delete(
                rt, meta.get("namespace"), meta["name"], propagation=propagation, dry_run=dry_run
            )
            out.append(result)
        return out

    # --- watch ---------------------------------------------------------------------------------

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        resource_version: str,
        labels: LabelSelector,
        fields: FieldSelector,
    ) -> tuple[list[Event], Watcher]:
        """Register a watcher; return the events to send first (synthetic ADDED or replay)."""
        watcher = Watcher(rt.storage_key, namespace, labels, fields)
        if resource_version in ("", "0"):
            initial = [
                Event(self.rv, "ADDED", rt.storage_key, None, o)
                for o in self._matching(rt, namespace, labels, fields)
            ]
        else:
            try:
                start = int(resource_version)
            except ValueError as exc:
                raise bad_request(f'invalid resource version "{resource_version}"') from exc
            if start < self.compacted_rv:
                raise errors.expired(f"too old resource version: {start} ({self.compacted_rv})")
            initial = [e for e in self.history if e.rv > start and e.key == rt.storage_key]
        self.watchers.add(watcher)
        return initial, watcher

    def unwatch(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)

    def close_watchers(self) -> None:
        for watcher in list(self.watchers):
            watcher.queue.put_nowait(None)
        self.watchers.clear()


def _cannot_handle(rt: ResourceType, detail: str) -> ApiError:
    return bad_request(
        f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {detail}'
    )


_META_TYPES: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "uid": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
    },
}
