"""What one HTTP request of ours does, in a few words without names: the `operation` label of
the ARM metrics and the name of an HTTP client span. Resource names, IDs and query strings are
left out, so the set of values stays small (Prometheus labels) and nothing a URL carries leaks
into a trace's name.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

OTHER: Final = "other"


def _segments(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def arm_operation(method: str, path: str) -> str:
    """`PUT Microsoft.Network/loadBalancers`, `GET Microsoft.Compute/virtualMachineScaleSets/
    virtualMachines`, `GET Microsoft.Network/locations/operations` (a long operation's poll):
    the method and the resource type path of an ARM URL."""
    parts = _segments(path)
    lowered = [part.lower() for part in parts]
    if "providers" in lowered:
        start = len(lowered) - 1 - lowered[::-1].index("providers")
        rest = parts[start + 1 :]
        if not rest:
            return f"{method.upper()} {OTHER}"
        namespace, names_and_types = rest[0], rest[1:]
        types = names_and_types[0::2]  # type, name, type, name, ... (a trailing action counts)
        return f"{method.upper()} {'/'.join([namespace, *types])}"
    if lowered[:1] == ["subscriptions"]:
        types = parts[0::2]
        return f"{method.upper()} {'/'.join(types)}"
    return f"{method.upper()} {OTHER}"


def kube_operation(method: str, path: str, query: str = "") -> str:
    """`GET secrets`, `PATCH staticgatewayconfigurations/status`, `WATCH nodes`: the method (a
    watch as WATCH) and the resource (with its subresource) of a Kubernetes API URL."""
    parts = _segments(path)
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"]:
        rest = parts[3:]
    else:
        return f"{method.upper()} {OTHER}"
    if len(rest) > 2 and rest[0] == "namespaces":
        rest = rest[2:]
    if not rest:
        return f"{method.upper()} {OTHER}"
    resource = rest[0] if len(rest) < 3 else f"{rest[0]}/{rest[2]}"
    verb = "WATCH" if "watch=true" in query.lower() or "watch=1" in query else method.upper()
    return f"{verb} {resource}"


def http_span_name(method: str, url: str) -> str:
    """`ARM PUT Microsoft.Network/loadBalancers`, `kube GET secrets`, `identity POST token`,
    else `HTTP POST`."""
    parts = urlsplit(url)
    path = parts.path
    if path.lower().startswith("/subscriptions/"):
        return f"ARM {arm_operation(method, path)}"
    if path.startswith(("/api/", "/apis/")):
        return f"kube {kube_operation(method, path, parts.query)}"
    if "/oauth2/" in path or path.rstrip("/").endswith("/token"):
        return f"identity {method.upper()} token"  # Entra ID or the managed identity endpoint
    return f"HTTP {method.upper()}"


def without_query(url: str) -> str:
    """The URL a span records: no query string (it may carry tokens) and no user info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme}://{netloc}{parts.path}"
