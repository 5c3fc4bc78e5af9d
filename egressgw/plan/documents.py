"""The StaticGatewayConfigurations of a manifest, checked as the API server checks them against
this project's CRD (deploy/crds/), with its messages: first unknown fields (refused, as kubectl's
default strict field validation has the API server do), then the schema (types, lengths, item
counts, the enum, the bounds of publicIpPrefixSize), then, unless the types, lengths, counts or
enum failed, the CEL rules (contracts/spec_validation.py holds their messages verbatim) with the
prefix the API server gives each rule's reason. Errors name the field as the API server does:
`spec.gatewayVmssProfile.vmssName: Required value: ...`.

Pure: `parse_manifest` takes the text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import yaml

from contracts import kube_names
from contracts import spec_validation as sv
from contracts.gateway_config import DefaultRoute, StaticGatewayConfigurationSpec
from contracts.spec_validation import FieldError

# The spec's schema in the CRD: each field's JSON type; an object's fields are listed under it.
_SPEC_FIELDS: Final[Mapping[str, str]] = {
    "gatewayNodepoolName": "string",
    "gatewayVmssProfile": "object",
    "defaultRoute": "string",
    "provisionPublicIps": "boolean",
    "publicIpPrefixId": "string",
    "excludeCidrs": "array",
}
_PROFILE_FIELDS: Final[Mapping[str, str]] = {
    "vmssResourceGroup": "string",
    "vmssName": "string",
    "publicIpPrefixSize": "integer",
}
_MAX_LENGTHS: Final[Mapping[str, int]] = {
    "spec.gatewayNodepoolName": sv.MAX_NODEPOOL_NAME_LENGTH,
    "spec.gatewayVmssProfile.vmssResourceGroup": sv.MAX_RESOURCE_GROUP_LENGTH,
    "spec.gatewayVmssProfile.vmssName": sv.MAX_VMSS_NAME_LENGTH,
    "spec.publicIpPrefixId": sv.MAX_PUBLIC_IP_PREFIX_ID_LENGTH,
}
# How the API server words a failed CEL rule: by the rule's `reason` (FieldValueRequired,
# FieldValueForbidden) or, without one, "Invalid value" and the JSON type of the value checked.
_RULE_PREFIXES: Final[Mapping[str, str]] = {
    sv.MSG_EXACTLY_ONE_POOL: 'Invalid value: "object": ',
    sv.MSG_VMSS_RESOURCE_GROUP_REQUIRED: "Required value: ",
    sv.MSG_VMSS_NAME_REQUIRED: "Required value: ",
    sv.MSG_PREFIX_ID_NEEDS_PUBLIC_IPS: "Forbidden: ",
    sv.MSG_PREFIX_ID_SHAPE: 'Invalid value: "string": ',
    sv.MSG_EXCLUDE_CIDR: 'Invalid value: "string": ',
}
MSG_NAME_REQUIRED: Final = "Required value: name or generateName is required"
_TOP_FIELDS: Final = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})


@dataclass(frozen=True)
class SgcDocument:
    """One StaticGatewayConfiguration of the manifest."""

    source: str  # "<file> document <n>" for messages
    namespace: str  # "" when the document names none
    name: str
    spec: StaticGatewayConfigurationSpec | None  # None when invalid
    errors: tuple[FieldError, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class SkippedDocument:
    source: str
    reason: str


class ManifestError(ValueError):
    """The file is not YAML, or holds something other than objects."""


def json_type(value: object) -> str:
    """The JSON type name the API server uses in its messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, Mapping) else type(value).__name__


def _type_error(path: str, value: object, wanted: str) -> FieldError:
    got = json_type(value)
    message = f'Invalid value: "{got}": {path} in body must be of type {wanted}: "{got}"'
    return FieldError(path, message)


def _has_type(value: object, wanted: str) -> bool:
    # A float with no fraction is an integer to the API server (JSON has one number type).
    if wanted == "integer" and isinstance(value, float):
        return value.is_integer()
    return json_type(value) == wanted


def _unknown_fields(raw: Mapping[str, Any]) -> list[FieldError]:
    """What strict field validation refuses before anything else is checked."""
    unknown = [f"{key}" for key in raw if key not in _TOP_FIELDS]
    spec = raw.get("spec")
    if isinstance(spec, Mapping):
        unknown += [f"spec.{key}" for key in spec if key not in _SPEC_FIELDS]
        profile = spec.get("gatewayVmssProfile")
        if isinstance(profile, Mapping):
            unknown += [
                f"spec.gatewayVmssProfile.{key}" for key in profile if key not in _PROFILE_FIELDS
            ]
    return [FieldError(field, f'unknown field "{field}"') for field in unknown]


def _typed(raw: Mapping[str, Any], path: str, schema: Mapping[str, str]) -> list[FieldError]:
    # null is pruned by the API server (no field is nullable): as if absent.
    return [
        _type_error(f"{path}.{key}", value, wanted)
        for key, wanted in schema.items()
        if (value := raw.get(key)) is not None and not _has_type(value, wanted)
    ]


def _too_long(path: str, value: object, limit: int) -> list[FieldError]:
    if isinstance(value, str) and len(value.encode()) > limit:
        return [FieldError(path, f"Too long: may not be more than {limit} bytes")]
    return []


def _blocking_errors(spec: Mapping[str, Any]) -> list[FieldError]:
    """Types, lengths, item counts and the enum: with any of these wrong the API server does not
    run the CEL rules."""
    errors = _typed(spec, "spec", _SPEC_FIELDS)
    profile = spec.get("gatewayVmssProfile")
    if isinstance(profile, Mapping):
        errors += _typed(profile, "spec.gatewayVmssProfile", _PROFILE_FIELDS)
    cidrs = spec.get("excludeCidrs")
    if isinstance(cidrs, list):
        for index, item in enumerate(cidrs):
            if item is not None and not isinstance(item, str):
                errors.append(_type_error(f"spec.excludeCidrs[{index}]", item, "string"))
    if errors:
        return errors
    for path, limit in _MAX_LENGTHS.items():
        parent, _, key = path.rpartition(".")
        holder = spec if parent == "spec" else (spec.get("gatewayVmssProfile") or {})
        errors += _too_long(path, holder.get(key), limit)
    route = spec.get("defaultRoute")
    supported = [str(r) for r in DefaultRoute]
    if route is not None and route not in supported:
        listed = ", ".join(f'"{value}"' for value in supported)
        errors.append(
            FieldError(
                "spec.defaultRoute", f'Unsupported value: "{route}": supported values: {listed}'
            )
        )
    if isinstance(cidrs, list):
        if len(cidrs) > sv.MAX_EXCLUDE_CIDRS:
            errors.append(
                FieldError(
                    "spec.excludeCidrs",
                    f"Too many: {len(cidrs)}: must have at most {sv.MAX_EXCLUDE_CIDRS} items",
                )
            )
        for index, item in enumerate(cidrs):
            errors += _too_long(f"spec.excludeCidrs[{index}]", item, sv.MAX_CIDR_LENGTH)
    return errors


def _bound_errors(spec: Mapping[str, Any]) -> list[FieldError]:
    """publicIpPrefixSize's minimum and maximum (these do not keep the CEL rules from running)."""
    size = (spec.get("gatewayVmssProfile") or {}).get("publicIpPrefixSize")
    path = "spec.gatewayVmssProfile.publicIpPrefixSize"
    if not isinstance(size, int | float) or isinstance(size, bool):
        return []
    shown = int(size)
    if size < sv.MIN_PUBLIC_IP_PREFIX_SIZE:
        bound = f"greater than or equal to {sv.MIN_PUBLIC_IP_PREFIX_SIZE}"
    elif size > sv.MAX_PUBLIC_IP_PREFIX_SIZE:
        bound = f"less than or equal to {sv.MAX_PUBLIC_IP_PREFIX_SIZE}"
    else:
        return []
    return [FieldError(path, f"Invalid value: {shown}: {path} in body should be {bound}")]


def _rule_errors(spec: StaticGatewayConfigurationSpec) -> list[FieldError]:
    return [
        FieldError(error.field, _RULE_PREFIXES.get(error.message, "") + error.message)
        for error in sv.rule_errors(spec)
    ]


def spec_errors(spec: object) -> tuple[list[FieldError], StaticGatewayConfigurationSpec | None]:
    """The API server's errors for a spec, and the spec when there are none."""
    if spec is None:
        return [FieldError("spec", "Required value")], None
    if not isinstance(spec, Mapping):
        return [_type_error("spec", spec, "object")], None
    blocking = _blocking_errors(spec)
    if blocking:
        return blocking, None
    parsed = StaticGatewayConfigurationSpec.from_object(_normalized(spec))
    errors = _bound_errors(spec) + _rule_errors(parsed)
    return errors, None if errors else parsed


def _normalized(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Nulls dropped and whole floats made integers, as the API server stores them."""
    out = {k: v for k, v in spec.items() if v is not None}
    profile = out.get("gatewayVmssProfile")
    if isinstance(profile, Mapping):
        out["gatewayVmssProfile"] = {
            k: int(v) if isinstance(v, float) else v for k, v in profile.items() if v is not None
        }
    return out


def check_object(raw: Mapping[str, Any], source: str) -> SgcDocument:
    metadata = raw.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    name = metadata.get("name")
    namespace = metadata.get("namespace")
    errors = _unknown_fields(raw)
    spec: StaticGatewayConfigurationSpec | None = None
    if not errors:
        if not isinstance(name, str) or not name:
            errors.append(FieldError("metadata.name", MSG_NAME_REQUIRED))
        spec_problems, spec = spec_errors(raw.get("spec"))
        errors += spec_problems
    return SgcDocument(
        source=source,
        namespace=namespace if isinstance(namespace, str) else "",
        name=name if isinstance(name, str) else "",
        spec=None if errors else spec,
        errors=tuple(errors),
    )


def _objects(text: str, source: str) -> Iterator[tuple[str, Any]]:
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as err:
        raise ManifestError(f"{source}: not YAML: {err}") from None
    for number, document in enumerate(documents, start=1):
        where = f"{source} document {number}"
        if document is None:
            continue
        if isinstance(document, Mapping) and str(document.get("kind", "")).endswith("List"):
            for index, item in enumerate(document.get("items") or []):
                yield f"{where} item {index}", item
        else:
            yield where, document


def parse_manifest(text: str, source: str) -> tuple[list[SgcDocument], list[SkippedDocument]]:
    """The configurations of a manifest, checked; other objects are skipped (and said so)."""
    found: list[SgcDocument] = []
    skipped: list[SkippedDocument] = []
    for where, obj in _objects(text, source):
        if not isinstance(obj, Mapping):
            raise ManifestError(f"{where}: expected an object, got {json_type(obj)}")
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind != kube_names.SGC_KIND or api_version != kube_names.GROUP_VERSION:
            skipped.append(SkippedDocument(where, f"{kind} {api_version} is not planned"))
            continue
        found.append(check_object(obj, where))
    return found, skipped
