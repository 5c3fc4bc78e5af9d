"""The StaticGatewayConfigurations of a manifest, checked as the API server checks them against
this project's CRD (deploy/crds/): the schema's types and the fields it declares (unknown fields
refused, as kubectl's default strict field validation does), then every CEL and schema rule
through contracts/spec_validation.py, which holds the CRD's messages verbatim. Errors name the
field as the API server does, `spec.gatewayVmssProfile.vmssName: <message>`.

Pure: `parse_manifest` takes the text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import yaml

from contracts import kube_names
from contracts.gateway_config import StaticGatewayConfigurationSpec
from contracts.spec_validation import FieldError, validate_spec

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
    return FieldError(
        path, f'Invalid value: "{got}": {path} in body must be of type {wanted}: "{got}"'
    )


def _has_type(value: object, wanted: str) -> bool:
    # A float with no fraction is an integer to the API server (JSON has one number type).
    if wanted == "integer" and isinstance(value, float):
        return value.is_integer()
    return json_type(value) == wanted


def _fields(raw: Mapping[str, Any], path: str, schema: Mapping[str, str]) -> list[FieldError]:
    errors: list[FieldError] = []
    for key, value in raw.items():
        field = f"{path}.{key}"
        wanted = schema.get(key)
        if wanted is None:
            errors.append(FieldError(field, f'unknown field "{field}"'))
        elif value is not None and not _has_type(value, wanted):
            # null is pruned by the API server (no field is nullable): as if absent.
            errors.append(_type_error(field, value, wanted))
    return errors


def schema_errors(spec: object) -> list[FieldError]:
    """Type and unknown-field errors of a spec, before any rule can be checked."""
    if spec is None:
        return [FieldError("spec", "Required value")]
    if not isinstance(spec, Mapping):
        return [_type_error("spec", spec, "object")]
    errors = _fields(spec, "spec", _SPEC_FIELDS)
    profile = spec.get("gatewayVmssProfile")
    if isinstance(profile, Mapping):
        errors += _fields(profile, "spec.gatewayVmssProfile", _PROFILE_FIELDS)
    cidrs = spec.get("excludeCidrs")
    if isinstance(cidrs, list):
        for index, item in enumerate(cidrs):
            if not isinstance(item, str):
                errors.append(_type_error(f"spec.excludeCidrs[{index}]", item, "string"))
    return errors


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
    errors: list[FieldError] = []
    if not isinstance(name, str) or not name:
        errors.append(
            FieldError("metadata.name", "Required value: name or generateName is required")
        )
    for key in raw:
        if key not in _TOP_FIELDS:
            errors.append(FieldError(str(key), f'unknown field "{key}"'))
    errors += schema_errors(raw.get("spec"))
    spec: StaticGatewayConfigurationSpec | None = None
    if not errors:
        spec = StaticGatewayConfigurationSpec.from_object(_normalized(raw["spec"]))
        errors += validate_spec(spec)
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
