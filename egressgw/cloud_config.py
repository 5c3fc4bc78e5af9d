"""The Azure cloud config file (azure.json), loaded the way the Go implementation loads it.

Keys and defaults follow kube-egress-gateway's `pkg/config` and cloud-provider-azure's azclient
(ARMClientConfig, AzureAuthConfig, ratelimit.Config); docs/upstream-compatibility.md lists every
key and what egressgw does with it. The file is JSON or YAML (decided by its content); keys match
case-insensitively, as Go's encoding/json does, so both `subscriptionId` and `subscriptionID`
work. Unknown keys are ignored, as in Go, but reported as warnings.

No key is silently ignored: a key egressgw parses but does not act on (the SDK retry and backoff
settings, a network tenant, secret-based loading, ...) is accepted and named in a warning that
says why, which the controller logs once at start-up.

Validation is DefaultAndValidate's plus checks a user wants before anything talks to Azure:
types, cloud names, GUIDs, Azure names, files that must exist, and a usable credential.
Secrets are held in `Secret`, whose repr never shows the value, and no error message quotes a
secret or a line of the file.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from contracts import resource_names
from egressgw.azure_cloud import (
    ENVIRONMENT_FILE_VARIABLE,
    KNOWN_CLOUD_NAMES,
    is_azure_stack,
    is_known_cloud_name,
)

_log = logging.getLogger(__name__)

DEFAULT_CLOUD_CONFIG_PATH = "/etc/kubernetes/kube-egress-gateway/azure.json"
DEFAULT_USER_AGENT = "kube-egress-gateway-controller"
DEFAULT_LOAD_BALANCER_NAME = resource_names.DEFAULT_LOAD_BALANCER_NAME

# Variables the AKS workload identity webhook injects; azclient lets them override the file.
ENV_TENANT_ID = "AZURE_TENANT_ID"
ENV_CLIENT_ID = "AZURE_CLIENT_ID"
ENV_CLIENT_SECRET = "AZURE_CLIENT_SECRET"
ENV_FEDERATED_TOKEN_FILE = "AZURE_FEDERATED_TOKEN_FILE"

_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_TENANT = re.compile(r"^[0-9A-Za-z.-]+$")  # azure-identity's own rule for tenant IDs
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{1,90}$")
_RESOURCE_NAME = re.compile(r"^[0-9A-Za-z][\w.-]{0,79}$")
_IDENTITY_RESOURCE_ID = re.compile(
    r"^/subscriptions/[0-9a-f-]{36}/resourcegroups/[^/]+/providers/"
    r"microsoft\.managedidentity/userassignedidentities/[^/]+$",
    re.IGNORECASE,
)


class CloudConfigError(Exception):
    """The cloud config file is unusable. The message names the file and the key."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        super().__init__(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")


class Secret:
    """A secret string: usable through `reveal()`, never shown by repr, str or format.

    Deliberately not a dataclass, so that `dataclasses.asdict` keeps it wrapped.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclass(frozen=True)
class RateLimitConfig:
    """cloud-provider-azure's client-side ARM rate limit (token buckets for reads and writes)."""

    enabled: bool = False
    qps: float = 0.0
    bucket: int = 0
    qps_write: float = 0.0
    bucket_write: int = 0


@dataclass(frozen=True)
class AuxiliaryTokenProvider:
    """azclient's Key Vault secret with a network-tenant token (managed identity, multi-tenant)."""

    subscription_id: str
    resource_group: str
    vault_name: str
    secret_name: str


@dataclass(frozen=True)
class CloudConfig:
    source: str  # the file it came from, for messages
    cloud: str
    location: str
    subscription_id: str
    resource_group: str
    vnet_name: str
    subnet_name: str
    user_agent: str = DEFAULT_USER_AGENT
    resource_manager_endpoint: str = ""
    tenant_id: str = ""
    network_resource_tenant_id: str = ""
    disable_azure_stack_cloud: bool = False
    aad_client_id: str = ""
    aad_client_secret: Secret = field(default=Secret(""))
    aad_client_cert_path: str = ""
    aad_client_cert_password: Secret = field(default=Secret(""))
    use_managed_identity_extension: bool = False
    user_assigned_identity_id: str = ""
    aad_federated_token_file: str = ""
    use_federated_workload_identity_extension: bool = False
    auxiliary_token_provider: AuxiliaryTokenProvider | None = None
    aad_msi_data_plane_identity_path: str = ""
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)
    load_balancer_name: str = DEFAULT_LOAD_BALANCER_NAME
    load_balancer_resource_group: str = ""
    vnet_resource_group: str = ""

    @property
    def is_multi_tenant(self) -> bool:
        return bool(self.network_resource_tenant_id) and (
            self.network_resource_tenant_id.lower() != self.tenant_id.lower()
        )


@dataclass(frozen=True)
class LoadedCloudConfig:
    config: CloudConfig
    # Keys egressgw does not act on: unknown ones (which Go ignores silently) and the ones
    # _config_warnings names.
    warnings: tuple[str, ...]


class AuthMethod(enum.Enum):
    WORKLOAD_IDENTITY = "workload identity"
    MANAGED_IDENTITY = "managed identity"
    CLIENT_SECRET = "service principal secret"
    CLIENT_CERTIFICATE = "service principal certificate"


class ManagedIdentityKind(enum.Enum):
    SYSTEM_ASSIGNED = "system-assigned"
    CLIENT_ID = "client ID"
    RESOURCE_ID = "resource ID"


@dataclass(frozen=True)
class ResolvedAuth:
    """Which credential to build and with what, after environment overrides (no I/O done)."""

    method: AuthMethod
    tenant_id: str = ""
    client_id: str = ""
    client_secret: Secret = field(default=Secret(""))
    certificate_path: str = ""
    certificate_password: Secret = field(default=Secret(""))
    token_file: str = ""
    managed_identity_kind: ManagedIdentityKind = ManagedIdentityKind.SYSTEM_ASSIGNED
    managed_identity_id: str = ""
    additionally_allowed_tenants: tuple[str, ...] = ()

    def describe(self) -> str:
        """A log-safe one-liner."""
        if self.method is AuthMethod.MANAGED_IDENTITY:
            detail = self.managed_identity_kind.value
            if self.managed_identity_id:
                detail += f" {self.managed_identity_id}"
            return f"{self.method.value} ({detail})"
        return f"{self.method.value} (tenant {self.tenant_id}, client {self.client_id})"


# --- the keys -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    name: str  # canonical spelling
    kind: type
    secret: bool = False


_KEYS: tuple[_Key, ...] = (
    # azclient ARMClientConfig
    _Key("cloud", str),
    _Key("userAgent", str),
    _Key("resourceManagerEndpoint", str),
    _Key("tenantId", str),
    _Key("networkResourceTenantID", str),
    _Key("disableAzureStackCloud", bool),
    _Key("cloudProviderBackoff", bool),
    _Key("cloudProviderBackoffRetries", int),
    _Key("cloudProviderBackoffDuration", int),
    _Key("enableMinimumRetryAfter", bool),
    # cloud-provider-azure's older backoff keys, still in many AKS-style files
    _Key("cloudProviderBackoffExponent", float),
    _Key("cloudProviderBackoffJitter", float),
    _Key("cloudProviderBackoffMode", str),
    # azclient AzureAuthConfig
    _Key("aadClientId", str),
    _Key("aadClientSecret", str, secret=True),
    _Key("aadClientCertPath", str),
    _Key("aadClientCertPassword", str, secret=True),
    _Key("useManagedIdentityExtension", bool),
    _Key("userAssignedIdentityID", str),
    _Key("aadFederatedTokenFile", str),
    _Key("useFederatedWorkloadIdentityExtension", bool),
    _Key("auxiliaryTokenProvider", dict),
    _Key("aadMSIDataPlaneIdentityPath", str),
    # ratelimit.Config
    _Key("cloudProviderRateLimit", bool),
    _Key("cloudProviderRateLimitQPS", float),
    _Key("cloudProviderRateLimitBucket", int),
    _Key("cloudProviderRateLimitQPSWrite", float),
    _Key("cloudProviderRateLimitBucketWrite", int),
    # kube-egress-gateway's own
    _Key("location", str),
    _Key("subscriptionID", str),
    _Key("resourceGroup", str),
    _Key("gatewayLoadBalancerName", str),
    _Key("loadBalancerResourceGroup", str),
    _Key("vnetName", str),
    _Key("vnetResourceGroup", str),
    _Key("subnetName", str),
    # consumed by azclient's config loader itself
    _Key("cloudConfigType", str),
)
_KEYS_BY_LOWER: Mapping[str, _Key] = {k.name.lower(): k for k in _KEYS}
_AUX_KEYS = ("subscriptionID", "resourceGroup", "vaultName", "secretName")

_HINTS: Mapping[str, str] = {
    "auxiliarytokensecreturi": (
        "cloud-provider-azure has no such key; the auxiliary token is configured with "
        "auxiliaryTokenProvider {subscriptionID, resourceGroup, vaultName, secretName}"
    ),
    "loadbalancername": "the gateway load balancer key is gatewayLoadBalancerName",
}


class _Pairs(list[tuple[Any, Any]]):
    """A mapping as the parser saw it: key order and duplicates kept."""


def _yaml_pairs(loader: yaml.SafeLoader, node: yaml.MappingNode) -> _Pairs:
    loader.flatten_mapping(node)
    return _Pairs(
        (loader.construct_object(k, deep=True), loader.construct_object(v, deep=True))
        for k, v in node.value
    )


class _PairsLoader(yaml.SafeLoader):
    pass


_PairsLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _yaml_pairs)


def _parse_document(text: str, source: str) -> object:
    stripped = text.strip()
    json_error: json.JSONDecodeError | None = None
    if stripped.startswith(("{", "[")):
        try:
            return json.loads(stripped, object_pairs_hook=_Pairs)
        except json.JSONDecodeError as err:
            json_error = err  # maybe a YAML flow mapping; try YAML before reporting
    try:
        return yaml.load(stripped, Loader=_PairsLoader)
    except yaml.YAMLError as err:
        if json_error is not None:
            raise CloudConfigError(
                source,
                "",
                f"invalid JSON at line {json_error.lineno}, column {json_error.colno}: "
                f"{json_error.msg}",
            ) from None
        # Only the position and the problem: the parser's snippet could show a secret.
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or "malformed document"
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise CloudConfigError(source, "", f"invalid YAML{where}: {problem}") from None


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, _Pairs):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _typed(key: _Key, value: object, source: str) -> object:
    want = {str: "a string", bool: "a boolean (true/false)", int: "an integer", float: "a number"}
    if key.kind is dict:
        if not isinstance(value, _Pairs):
            raise CloudConfigError(source, key.name, f"must be an object, got {_type_name(value)}")
        return value
    ok = (
        (key.kind is str and isinstance(value, str))
        or (key.kind is bool and isinstance(value, bool))
        or (key.kind is int and isinstance(value, int) and not isinstance(value, bool))
        or (key.kind is float and isinstance(value, int | float) and not isinstance(value, bool))
    )
    if not ok:
        # Never echo the value: for a secret key it is the secret.
        raise CloudConfigError(
            source, key.name, f"must be {want[key.kind]}, got {_type_name(value)}"
        )
    return value


def _collect(pairs: _Pairs, source: str) -> tuple[dict[str, object], list[str]]:
    """Map file keys to canonical keys; report unknown ones; reject conflicting duplicates."""
    values: dict[str, object] = {}
    spelled: dict[str, str] = {}
    unknown: list[str] = []
    for raw_key, value in pairs:
        if not isinstance(raw_key, str):
            raise CloudConfigError(source, str(raw_key), "keys must be strings")
        key = _KEYS_BY_LOWER.get(raw_key.lower())
        if key is None:
            unknown.append(raw_key)
            continue
        if value is None:  # Go's json leaves the field alone on null
            continue
        typed = _typed(key, value, source)
        if key.name in values and values[key.name] != typed:
            first = spelled[key.name]
            if first == raw_key:
                problem = "appears twice with different values"
            else:
                problem = f"{first} and {raw_key} are both set and differ"
            raise CloudConfigError(source, key.name, problem)
        values[key.name] = typed
        spelled[key.name] = raw_key
    warnings: list[str] = []
    hinted = [k for k in unknown if k.lower() in _HINTS]
    plain = [k for k in unknown if k.lower() not in _HINTS]
    warnings.extend(f"{source}: {k}: ignored: {_HINTS[k.lower()]}" for k in hinted)
    if plain:
        warnings.append(f"{source}: unknown keys ignored: {', '.join(sorted(plain))}")
    return values, warnings


def _str(values: Mapping[str, object], key: str) -> str:
    value = values.get(key)
    return value.strip() if isinstance(value, str) else ""


def _raw_str(values: Mapping[str, object], key: str) -> str:
    value = values.get(key)
    return value if isinstance(value, str) else ""


def _bool(values: Mapping[str, object], key: str) -> bool:
    return values.get(key) is True


def _int(values: Mapping[str, object], key: str) -> int:
    value = values.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _float(values: Mapping[str, object], key: str) -> float:
    value = values.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _aux_provider(pairs: _Pairs, source: str) -> AuxiliaryTokenProvider:
    fields: dict[str, str] = {}
    for raw_key, value in pairs:
        name = next((k for k in _AUX_KEYS if str(raw_key).lower() == k.lower()), None)
        if name is None:
            continue
        if not isinstance(value, str):
            raise CloudConfigError(
                source,
                f"auxiliaryTokenProvider.{name}",
                f"must be a string, got {_type_name(value)}",
            )
        fields[name] = value.strip()
    for name in _AUX_KEYS:
        if not fields.get(name):
            raise CloudConfigError(source, f"auxiliaryTokenProvider.{name}", "is empty")
    return AuxiliaryTokenProvider(
        subscription_id=fields["subscriptionID"],
        resource_group=fields["resourceGroup"],
        vault_name=fields["vaultName"],
        secret_name=fields["secretName"],
    )


def _non_negative(source: str, key: str, value: float) -> None:
    if value < 0:
        raise CloudConfigError(source, key, f"must not be negative, got {value}")


def _rate_limit(values: Mapping[str, object], source: str) -> RateLimitConfig:
    enabled = _bool(values, "cloudProviderRateLimit")
    qps = _float(values, "cloudProviderRateLimitQPS")
    bucket = _int(values, "cloudProviderRateLimitBucket")
    qps_write = _float(values, "cloudProviderRateLimitQPSWrite")
    bucket_write = _int(values, "cloudProviderRateLimitBucketWrite")
    for key, number in (
        ("cloudProviderRateLimitQPS", qps),
        ("cloudProviderRateLimitBucket", bucket),
        ("cloudProviderRateLimitQPSWrite", qps_write),
        ("cloudProviderRateLimitBucketWrite", bucket_write),
    ):
        _non_negative(source, key, number)
    if not enabled:
        return RateLimitConfig()
    # cloud-provider-azure: unset write limits take the read limits.
    qps_write = qps_write or qps
    bucket_write = bucket_write or bucket
    if qps <= 0:
        raise CloudConfigError(
            source, "cloudProviderRateLimitQPS", "must be > 0 when cloudProviderRateLimit is true"
        )
    if bucket <= 0:
        raise CloudConfigError(
            source,
            "cloudProviderRateLimitBucket",
            "must be > 0 when cloudProviderRateLimit is true",
        )
    return RateLimitConfig(True, qps, bucket, qps_write, bucket_write)


def _require(source: str, key: str, value: str, what: str) -> None:
    if not value:
        raise CloudConfigError(source, key, f"is empty ({what})")


def _check_name(
    source: str, key: str, value: str, pattern: re.Pattern[str], rule: str, bad_ends: str
) -> None:
    if value and (not pattern.match(value) or value.endswith(tuple(bad_ends))):
        raise CloudConfigError(source, key, f"{value!r} is not a valid Azure name ({rule})")


def _check_endpoint(source: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
        raise CloudConfigError(
            source,
            "resourceManagerEndpoint",
            f"{value!r} must be an https URL such as https://management.azure.com "
            "(Azure SDKs refuse bearer tokens over plain http)",
        )


def _validate(config: CloudConfig, source: str, env: Mapping[str, str]) -> None:
    if not config.cloud:
        raise CloudConfigError(source, "cloud", "is empty (e.g. AzurePublicCloud)")
    if not is_known_cloud_name(config.cloud):
        raise CloudConfigError(
            source,
            "cloud",
            f"{config.cloud!r} is not a known cloud; use one of {', '.join(KNOWN_CLOUD_NAMES)}",
        )
    if (
        is_azure_stack(config.cloud)
        and not config.resource_manager_endpoint
        and not env.get(ENVIRONMENT_FILE_VARIABLE, "").strip()
    ):
        raise CloudConfigError(
            source,
            "resourceManagerEndpoint",
            f"is empty but cloud is {config.cloud} (set it, or {ENVIRONMENT_FILE_VARIABLE})",
        )
    if config.resource_manager_endpoint:
        _check_endpoint(source, config.resource_manager_endpoint)
    _require(source, "location", config.location, "the Azure region, e.g. westeurope")
    _require(source, "subscriptionID", config.subscription_id, "subscriptionId / subscriptionID")
    if not _GUID.match(config.subscription_id):
        raise CloudConfigError(
            source, "subscriptionID", f"{config.subscription_id!r} is not a subscription GUID"
        )
    _require(source, "resourceGroup", config.resource_group, "resource group of the gateway nodes")
    _require(source, "vnetName", config.vnet_name, "virtual network of the gateway ILB")
    _require(source, "subnetName", config.subnet_name, "subnet of the gateway ILB frontend")
    rg_rule = "up to 90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'"
    name_rule = (
        "up to 80 letters, digits, '_', '-' or '.', starting with a letter or digit and "
        "ending with a letter, digit or '_'"
    )
    for key, value in (
        ("resourceGroup", config.resource_group),
        ("loadBalancerResourceGroup", config.load_balancer_resource_group),
        ("vnetResourceGroup", config.vnet_resource_group),
    ):
        _check_name(source, key, value, _RESOURCE_GROUP, rg_rule, bad_ends=".")
    for key, value in (
        ("vnetName", config.vnet_name),
        ("subnetName", config.subnet_name),
        ("gatewayLoadBalancerName", config.load_balancer_name),
    ):
        _check_name(source, key, value, _RESOURCE_NAME, name_rule, bad_ends=".-")
    for key, tenant in (
        ("tenantId", config.tenant_id),
        ("networkResourceTenantID", config.network_resource_tenant_id),
    ):
        if tenant and not _TENANT.match(tenant):
            raise CloudConfigError(
                source, key, f"{tenant!r} is not a tenant ID (a GUID or a domain name)"
            )
    if not config.use_managed_identity_extension and config.user_assigned_identity_id:
        raise CloudConfigError(
            source,
            "userAssignedIdentityID",
            "is set but useManagedIdentityExtension is not true",
        )
    if config.aad_client_cert_password and not config.aad_client_cert_path:
        raise CloudConfigError(
            source, "aadClientCertPassword", "is set but aadClientCertPath is empty"
        )
    if config.aad_client_cert_path and not Path(config.aad_client_cert_path).is_file():
        raise CloudConfigError(
            source,
            "aadClientCertPath",
            f"{config.aad_client_cert_path} does not exist or is not a file",
        )


# SDK retry settings egressgw does not act on (see _config_warnings), in the order they are named.
_RETRY_KEYS: tuple[str, ...] = (
    "cloudProviderBackoff",
    "cloudProviderBackoffRetries",
    "cloudProviderBackoffDuration",
    "cloudProviderBackoffExponent",
    "cloudProviderBackoffJitter",
    "cloudProviderBackoffMode",
    "enableMinimumRetryAfter",
)


def _retry_keys_set(values: Mapping[str, object], source: str) -> list[str]:
    """The retry and backoff keys given a value that asks for something (true, a number other
    than 0, a mode)."""
    for key in ("cloudProviderBackoffRetries", "cloudProviderBackoffDuration"):
        _non_negative(source, key, _int(values, key))
    return [key for key in _RETRY_KEYS if values.get(key) not in (None, False, 0, 0.0, "")]


def _config_warnings(config: CloudConfig, source: str, values: Mapping[str, object]) -> list[str]:
    warnings: list[str] = []
    if is_azure_stack(config.cloud) and not config.disable_azure_stack_cloud:
        warnings.append(
            f"{source}: disableAzureStackCloud: egressgw uses the public-cloud ARM API versions; "
            "set disableAzureStackCloud: true unless this is an Azure Stack Hub that supports them"
        )
    config_type = _str(values, "cloudConfigType")
    if config_type and config_type.lower() != "file":
        warnings.append(
            f"{source}: cloudConfigType: {config_type} is not supported: egressgw, like the Go "
            "implementation, reads only this file, not a Kubernetes secret"
        )
    retry_keys = _retry_keys_set(values, source)
    if retry_keys:
        warnings.append(
            f"{source}: {', '.join(retry_keys)}: not supported, ignored: egressgw's Azure "
            "clients make no retries of their own; every Azure call is a Temporal activity "
            "that the workflows' retry policies retry (throttling and server errors after the "
            "delay Azure's Retry-After asks for)"
        )
    if config.is_multi_tenant:
        warnings.append(
            f"{source}: networkResourceTenantID: not supported: egressgw sends every ARM call "
            f"with a token of tenantId only (no auxiliary token for tenant "
            f"{config.network_resource_tenant_id}), so network resources in that tenant "
            "cannot be used"
        )
    if config.aad_msi_data_plane_identity_path:
        warnings.append(
            f"{source}: aadMSIDataPlaneIdentityPath: not supported by egressgw; ignored"
        )
    if config.auxiliary_token_provider is not None:
        warnings.append(
            f"{source}: auxiliaryTokenProvider: accepted for compatibility; egressgw, like the Go "
            "implementation, uses the managed identity's own token for every ARM call"
        )
    return warnings


def parse_cloud_config(
    text: str, source: str, environ: Mapping[str, str] | None = None
) -> LoadedCloudConfig:
    """Parse, default and validate a cloud config document. `source` names it in messages.

    `environ` (default: the process environment) supplies the workload identity webhook's
    variables, which count when checking that some credential is usable.
    """
    document = _parse_document(text, source)
    if document is None:
        raise CloudConfigError(source, "", "the file is empty")
    if not isinstance(document, _Pairs):
        raise CloudConfigError(
            source, "", f"must hold an object of keys, got {_type_name(document)}"
        )
    values, warnings = _collect(document, source)

    resource_group = _str(values, "resourceGroup")
    aux = values.get("auxiliaryTokenProvider")
    config = CloudConfig(
        source=source,
        cloud=_str(values, "cloud"),
        location=_str(values, "location"),
        subscription_id=_str(values, "subscriptionID"),
        resource_group=resource_group,
        vnet_name=_str(values, "vnetName"),
        subnet_name=_str(values, "subnetName"),
        user_agent=_str(values, "userAgent") or DEFAULT_USER_AGENT,
        resource_manager_endpoint=_str(values, "resourceManagerEndpoint"),
        tenant_id=_str(values, "tenantId"),
        network_resource_tenant_id=_str(values, "networkResourceTenantID"),
        disable_azure_stack_cloud=_bool(values, "disableAzureStackCloud"),
        aad_client_id=_str(values, "aadClientId"),
        aad_client_secret=Secret(_str(values, "aadClientSecret")),
        aad_client_cert_path=_str(values, "aadClientCertPath"),
        # Not trimmed (as in Go): spaces may be part of a password.
        aad_client_cert_password=Secret(_raw_str(values, "aadClientCertPassword")),
        use_managed_identity_extension=_bool(values, "useManagedIdentityExtension"),
        user_assigned_identity_id=_str(values, "userAssignedIdentityID"),
        aad_federated_token_file=_str(values, "aadFederatedTokenFile"),
        use_federated_workload_identity_extension=_bool(
            values, "useFederatedWorkloadIdentityExtension"
        ),
        auxiliary_token_provider=(_aux_provider(aux, source) if isinstance(aux, _Pairs) else None),
        aad_msi_data_plane_identity_path=_str(values, "aadMSIDataPlaneIdentityPath"),
        rate_limit=_rate_limit(values, source),
        load_balancer_name=_str(values, "gatewayLoadBalancerName") or DEFAULT_LOAD_BALANCER_NAME,
        load_balancer_resource_group=_str(values, "loadBalancerResourceGroup") or resource_group,
        vnet_resource_group=_str(values, "vnetResourceGroup") or resource_group,
    )
    _validate(config, source, os.environ if environ is None else environ)
    resolve_auth(config, environ)  # fail now, not at the first ARM call
    warnings.extend(_config_warnings(config, source, values))
    return LoadedCloudConfig(config=config, warnings=tuple(warnings))


def load_cloud_config(
    path: str | os.PathLike[str] = DEFAULT_CLOUD_CONFIG_PATH,
    environ: Mapping[str, str] | None = None,
) -> LoadedCloudConfig:
    """Read and validate the cloud config file; log its warnings and a secret-free summary."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise CloudConfigError(source, "", f"cannot read the file: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CloudConfigError(source, "", "is not UTF-8 text") from None
    loaded = parse_cloud_config(text, source, environ)
    for warning in loaded.warnings:
        _log.warning("%s", warning)
    auth = resolve_auth(loaded.config, environ)
    _log.info(
        "loaded cloud config %s: cloud %s, subscription %s, resource group %s, auth %s",
        source,
        loaded.config.cloud,
        loaded.config.subscription_id,
        loaded.config.resource_group,
        auth.describe(),
    )
    return loaded


# --- credential choice ----------------------------------------------------------------------


def _client_id(config: CloudConfig, env: Mapping[str, str], method: str) -> str:
    client_id = env.get(ENV_CLIENT_ID, "").strip() or config.aad_client_id
    key = "aadClientId"
    if not client_id:
        raise CloudConfigError(config.source, key, f"is empty (required for {method})")
    # Entra ID application IDs are GUIDs; Azure Stack (AD FS) and stand-ins may name clients
    # freely, so only Microsoft's own clouds get the check.
    if not _GUID.match(client_id) and not is_azure_stack(config.cloud):
        origin = ENV_CLIENT_ID if env.get(ENV_CLIENT_ID, "").strip() else key
        raise CloudConfigError(
            config.source, key, f"{client_id!r} (from {origin}) is not an application GUID"
        )
    return client_id


def _tenant_id(config: CloudConfig, env: Mapping[str, str], method: str) -> str:
    tenant = env.get(ENV_TENANT_ID, "").strip() or config.tenant_id
    if not tenant:
        raise CloudConfigError(config.source, "tenantId", f"is empty (required for {method})")
    if not _TENANT.match(tenant):
        raise CloudConfigError(
            config.source, "tenantId", f"{tenant!r} (from {ENV_TENANT_ID}) is not a tenant ID"
        )
    return tenant


def _allowed_tenants(config: CloudConfig) -> tuple[str, ...]:
    return (config.network_resource_tenant_id,) if config.is_multi_tenant else ()


def _managed_identity(config: CloudConfig) -> ResolvedAuth:
    if config.is_multi_tenant and config.auxiliary_token_provider is None:
        raise CloudConfigError(
            config.source,
            "auxiliaryTokenProvider",
            "is required with managed identity when networkResourceTenantID differs from tenantId",
        )
    identity = config.user_assigned_identity_id
    if not identity:
        return ResolvedAuth(AuthMethod.MANAGED_IDENTITY)
    # azclient's rule: an ID containing /subscriptions/ is a resource ID, anything else a client ID.
    if "/SUBSCRIPTIONS/" in identity.upper():
        if not _IDENTITY_RESOURCE_ID.match(identity):
            raise CloudConfigError(
                config.source,
                "userAssignedIdentityID",
                f"{identity!r} is not a user-assigned identity resource ID "
                "(/subscriptions/<guid>/resourceGroups/<rg>/providers/"
                "Microsoft.ManagedIdentity/userAssignedIdentities/<name>)",
            )
        kind = ManagedIdentityKind.RESOURCE_ID
    elif _GUID.match(identity):
        kind = ManagedIdentityKind.CLIENT_ID
    else:
        raise CloudConfigError(
            config.source,
            "userAssignedIdentityID",
            f"{identity!r} is neither a client ID (GUID) nor an identity resource ID",
        )
    return ResolvedAuth(
        AuthMethod.MANAGED_IDENTITY, managed_identity_kind=kind, managed_identity_id=identity
    )


def resolve_auth(config: CloudConfig, environ: Mapping[str, str] | None = None) -> ResolvedAuth:
    """Pick the credential with azclient's precedence and check it has what it needs.

    Workload identity (enabled by the flag or by AZURE_FEDERATED_TOKEN_FILE, which the webhook
    injects), then managed identity, then a client secret, then a client certificate.
    AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET override the file, as in azclient.
    """
    env = os.environ if environ is None else environ
    source = config.source
    env_token_file = env.get(ENV_FEDERATED_TOKEN_FILE, "").strip()
    if env_token_file or config.use_federated_workload_identity_extension:
        method = AuthMethod.WORKLOAD_IDENTITY.value
        token_file = env_token_file or config.aad_federated_token_file
        origin = ENV_FEDERATED_TOKEN_FILE if env_token_file else "aadFederatedTokenFile"
        if not token_file:
            raise CloudConfigError(
                source,
                "aadFederatedTokenFile",
                "is empty and AZURE_FEDERATED_TOKEN_FILE is unset, but "
                "useFederatedWorkloadIdentityExtension is true",
            )
        if not Path(token_file).is_file():
            raise CloudConfigError(
                source, "aadFederatedTokenFile", f"{token_file} (from {origin}) does not exist"
            )
        return ResolvedAuth(
            AuthMethod.WORKLOAD_IDENTITY,
            tenant_id=_tenant_id(config, env, method),
            client_id=_client_id(config, env, method),
            token_file=token_file,
        )
    if config.use_managed_identity_extension:
        return _managed_identity(config)
    secret = env.get(ENV_CLIENT_SECRET, "").strip() or config.aad_client_secret.reveal()
    if secret:
        method = AuthMethod.CLIENT_SECRET.value
        return ResolvedAuth(
            AuthMethod.CLIENT_SECRET,
            tenant_id=_tenant_id(config, env, method),
            client_id=_client_id(config, env, method),
            client_secret=Secret(secret),
            additionally_allowed_tenants=_allowed_tenants(config),
        )
    if config.aad_client_cert_path:
        method = AuthMethod.CLIENT_CERTIFICATE.value
        return ResolvedAuth(
            AuthMethod.CLIENT_CERTIFICATE,
            tenant_id=_tenant_id(config, env, method),
            client_id=_client_id(config, env, method),
            certificate_path=config.aad_client_cert_path,
            certificate_password=config.aad_client_cert_password,
            additionally_allowed_tenants=_allowed_tenants(config),
        )
    raise CloudConfigError(
        source,
        "aadClientSecret",
        "no usable credential: set useManagedIdentityExtension: true, or aadClientId with "
        "aadClientSecret or aadClientCertPath, or useFederatedWorkloadIdentityExtension: true "
        "with aadFederatedTokenFile",
    )
