"""Azure cloud environments: where ARM lives, where to log in, and which token audience ARM wants.

The names and the `resourceManagerEndpoint` override follow cloud-provider-azure's azclient, which
the Go implementation uses: cloud names are matched case-insensitively, and when an endpoint is
given the environment is learned from `<endpoint>/metadata/endpoints` (api-version 2019-05-01,
which answers with a list of clouds; a single cloud object, the shape of older api-versions and
of some Azure Stack endpoints, is accepted as well).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

METADATA_API_VERSION = "2019-05-01"
# azclient lets Azure Stack users describe their endpoints in a JSON file named by this variable.
ENVIRONMENT_FILE_VARIABLE = "AZURE_ENVIRONMENT_FILEPATH"
AZURE_STACK_CLOUD = "AzureStackCloud"
_METADATA_TIMEOUT_SECONDS = 30.0


class CloudEnvironmentError(Exception):
    """The cloud environment could not be determined (unknown name, bad metadata document)."""


@dataclass(frozen=True)
class CloudEnvironment:
    name: str
    resource_manager_url: str  # ARM base URL, no trailing slash
    authority_host: str  # Entra ID (AAD) login endpoint, https URL
    audience: str  # ARM token audience
    # Microsoft's own authorities pass MSAL instance discovery; anything else (Azure Stack, a
    # local emulator) must skip it or MSAL asks login.microsoftonline.com about it.
    well_known_authority: bool = True

    @property
    def credential_scopes(self) -> tuple[str, ...]:
        # Same rule as azclient's DefaultTokenScopeFor: audience without trailing slash.
        return (self.audience.rstrip("/") + "/.default",)


AZURE_PUBLIC_CLOUD = CloudEnvironment(
    name="AzurePublicCloud",
    resource_manager_url="https://management.azure.com",
    authority_host="https://login.microsoftonline.com",
    audience="https://management.core.windows.net/",
)
AZURE_CHINA_CLOUD = CloudEnvironment(
    name="AzureChinaCloud",
    resource_manager_url="https://management.chinacloudapi.cn",
    authority_host="https://login.chinacloudapi.cn",
    audience="https://management.core.chinacloudapi.cn/",
)
AZURE_US_GOVERNMENT_CLOUD = CloudEnvironment(
    name="AzureUSGovernmentCloud",
    resource_manager_url="https://management.usgovcloudapi.net",
    authority_host="https://login.microsoftonline.us",
    audience="https://management.core.usgovcloudapi.net/",
)

# Upper-cased names as azclient's EnvironmentMapping spells them.
_NAMED_CLOUDS: Mapping[str, CloudEnvironment] = {
    "AZURECLOUD": AZURE_PUBLIC_CLOUD,
    "AZUREPUBLICCLOUD": AZURE_PUBLIC_CLOUD,
    "AZURECHINACLOUD": AZURE_CHINA_CLOUD,
    "AZUREUSGOVERNMENT": AZURE_US_GOVERNMENT_CLOUD,
    "AZUREUSGOVERNMENTCLOUD": AZURE_US_GOVERNMENT_CLOUD,
}

# Names a cloud config may carry: the named clouds plus Azure Stack, which needs an endpoint.
KNOWN_CLOUD_NAMES: tuple[str, ...] = (
    "AzurePublicCloud",
    "AzureCloud",
    "AzureChinaCloud",
    "AzureUSGovernmentCloud",
    "AzureUSGovernment",
    AZURE_STACK_CLOUD,
)


def is_known_cloud_name(name: str) -> bool:
    return name.strip().upper() in {n.upper() for n in KNOWN_CLOUD_NAMES}


def is_azure_stack(name: str) -> bool:
    return name.strip().upper() == AZURE_STACK_CLOUD.upper()


def named_cloud(name: str) -> CloudEnvironment | None:
    """The built-in environment for `name` (case-insensitive), or None (Azure Stack, unknown)."""
    return _NAMED_CLOUDS.get(name.strip().upper())


def metadata_url(resource_manager_endpoint: str) -> str:
    base = resource_manager_endpoint.strip().rstrip("/")
    return f"{base}/metadata/endpoints?api-version={METADATA_API_VERSION}"


def _same_cloud_name(left: str, right: str) -> bool:
    a, b = left.strip().upper(), right.strip().upper()
    if a == b:
        return True
    # Metadata calls the public cloud "AzureCloud"; configs often say "AzurePublicCloud".
    named_a, named_b = _NAMED_CLOUDS.get(a), _NAMED_CLOUDS.get(b)
    return named_a is not None and named_a is named_b


def _normalize_url(url: str) -> str:
    return url.strip().rstrip("/")


def _select_entry(
    entries: Sequence[Mapping[str, Any]], cloud_name: str, endpoint: str
) -> Mapping[str, Any]:
    by_name = [e for e in entries if _same_cloud_name(str(e.get("name", "")), cloud_name)]
    if by_name:
        return by_name[0]
    by_endpoint = [
        e
        for e in entries
        if _normalize_url(str(e.get("resourceManager") or "")) == _normalize_url(endpoint)
    ]
    if by_endpoint:
        return by_endpoint[0]
    if len(entries) == 1:
        # A single-cloud answer (Azure Stack, an emulator) describes the endpoint we asked.
        return entries[0]
    names = ", ".join(sorted(str(e.get("name", "?")) for e in entries))
    raise CloudEnvironmentError(
        f"metadata from {endpoint} lists clouds {names}; none matches cloud {cloud_name!r}"
    )


def _https_url(value: object, what: str, endpoint: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CloudEnvironmentError(f"metadata from {endpoint} has no {what}")
    parts = urlsplit(value.strip())
    if parts.scheme != "https" or not parts.netloc:
        raise CloudEnvironmentError(
            f"metadata from {endpoint}: {what} {value!r} is not an https URL"
        )
    return value.strip()


def parse_metadata_endpoints(document: object, cloud_name: str, endpoint: str) -> CloudEnvironment:
    """Turn a `/metadata/endpoints` answer into the environment for `cloud_name`.

    As in azclient: a missing `resourceManager` means the endpoint itself (Azure Stack omits
    it), the first audience is the token audience, and a missing login endpoint keeps the
    named cloud's authority.
    """
    if isinstance(document, Mapping):
        entries: list[Mapping[str, Any]] = [document]
    elif isinstance(document, list) and all(isinstance(e, Mapping) for e in document):
        entries = list(document)
    else:
        raise CloudEnvironmentError(
            f"metadata from {endpoint} is neither a cloud object nor a list of them"
        )
    if not entries:
        raise CloudEnvironmentError(f"metadata from {endpoint} lists no cloud")
    entry = _select_entry(entries, cloud_name, endpoint)

    resource_manager = entry.get("resourceManager") or endpoint
    resource_manager_url = _normalize_url(_https_url(resource_manager, "resourceManager", endpoint))

    authentication = entry.get("authentication")
    if not isinstance(authentication, Mapping):
        raise CloudEnvironmentError(f"metadata from {endpoint} has no authentication section")
    audiences = authentication.get("audiences")
    if not isinstance(audiences, list) or not audiences or not isinstance(audiences[0], str):
        raise CloudEnvironmentError(f"metadata from {endpoint} lists no token audience")
    audience = audiences[0].strip()

    fallback = named_cloud(cloud_name)
    login = authentication.get("loginEndpoint")
    if login:
        authority = _normalize_url(_https_url(login, "authentication.loginEndpoint", endpoint))
    elif fallback is not None:
        authority = fallback.authority_host
    else:
        raise CloudEnvironmentError(f"metadata from {endpoint} has no authentication.loginEndpoint")
    well_known = _is_well_known(authority)
    return CloudEnvironment(
        name=str(entry.get("name") or cloud_name),
        resource_manager_url=resource_manager_url,
        authority_host=authority,
        audience=audience,
        well_known_authority=well_known,
    )


def _is_well_known(authority: str) -> bool:
    return any(
        _normalize_url(authority) == _normalize_url(c.authority_host)
        for c in _NAMED_CLOUDS.values()
    )


def apply_environment_file(base: CloudEnvironment, document: object, path: str) -> CloudEnvironment:
    """Override `base` with an AZURE_ENVIRONMENT_FILEPATH document, as azclient does for Azure
    Stack: `activeDirectoryEndpoint` replaces the login host; `resourceManagerEndpoint` and
    `tokenAudience` replace ARM only when both are present."""
    if not isinstance(document, Mapping):
        raise CloudEnvironmentError(f"{ENVIRONMENT_FILE_VARIABLE} file {path} is not a JSON object")
    values: dict[str, str] = {}
    for key in ("activeDirectoryEndpoint", "resourceManagerEndpoint", "tokenAudience"):
        value = document.get(key)
        if value is not None and not isinstance(value, str):
            raise CloudEnvironmentError(
                f"{ENVIRONMENT_FILE_VARIABLE} file {path}: {key} must be a string"
            )
        if value and value.strip():
            values[key] = value.strip()
    authority, arm, audience = base.authority_host, base.resource_manager_url, base.audience
    if "activeDirectoryEndpoint" in values:
        where = f"{ENVIRONMENT_FILE_VARIABLE} file {path}"
        authority = _normalize_url(
            _https_url(values["activeDirectoryEndpoint"], "activeDirectoryEndpoint", where)
        )
    if "resourceManagerEndpoint" in values and "tokenAudience" in values:
        where = f"{ENVIRONMENT_FILE_VARIABLE} file {path}"
        arm = _normalize_url(
            _https_url(values["resourceManagerEndpoint"], "resourceManagerEndpoint", where)
        )
        audience = values["tokenAudience"]
    return CloudEnvironment(
        name=base.name,
        resource_manager_url=arm,
        authority_host=authority,
        audience=audience,
        well_known_authority=_is_well_known(authority),
    )


def _ssl_context(connection_verify: bool | str) -> ssl.SSLContext:
    if isinstance(connection_verify, str):
        return ssl.create_default_context(cafile=connection_verify)
    context = ssl.create_default_context()
    if not connection_verify:  # the caller asked for no verification, as azure-core allows
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _decode(body: bytes, endpoint: str) -> object:
    try:
        return json.loads(body)
    except ValueError as err:
        raise CloudEnvironmentError(f"metadata from {endpoint} is not JSON: {err}") from err


async def fetch_cloud_environment(
    resource_manager_endpoint: str, cloud_name: str, *, connection_verify: bool | str = True
) -> CloudEnvironment:
    """Ask `resourceManagerEndpoint` which cloud it belongs to (no authentication needed).

    `connection_verify` is a CA bundle path (a private CA, the dev stack's ca.pem) or a bool.
    """
    url = metadata_url(resource_manager_endpoint)
    timeout = aiohttp.ClientTimeout(total=_METADATA_TIMEOUT_SECONDS)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, ssl=_ssl_context(connection_verify)) as response,
        ):
            body = await response.read()
            status = response.status
    except (TimeoutError, aiohttp.ClientError, OSError) as err:
        raise CloudEnvironmentError(f"cannot fetch cloud metadata from {url}: {err}") from err
    if status != 200:
        raise CloudEnvironmentError(f"cloud metadata request {url} answered HTTP {status}")
    return parse_metadata_endpoints(_decode(body, url), cloud_name, resource_manager_endpoint)
