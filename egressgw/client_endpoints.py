"""Where the commands that inspect a running installation (`egressgw status`) find Temporal and
its Web UI: a flag, else the environment, else the dev stack's `endpoints.json` when the state
directory has one (`egressgw dev up` writes it), else the defaults of docker-compose.yml.

Pure apart from `read_dev_endpoints`, which only reads the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from egressgw.temporal_connection import (
    DEFAULT_TEMPORAL_ADDRESS,
    DEFAULT_TEMPORAL_NAMESPACE,
    ENV_ADDRESS,
    ENV_NAMESPACE,
)

UI_URL_VARIABLE: Final = "EGRESSGW_UI_URL"
# docker-compose.yml publishes the frontend on DEFAULT_TEMPORAL_ADDRESS and the Web UI here.
DEFAULT_UI_URL: Final = "http://localhost:8080"
ENDPOINTS_FILE: Final = "endpoints.json"


@dataclass(frozen=True)
class TemporalTarget:
    address: str
    namespace: str
    # The Web UI's base URL, without a trailing slash; None for a dev stack run --headless
    # (it has no Web UI, and docker-compose.yml's would be the wrong one).
    ui_url: str | None


def read_dev_endpoints(state_dir: Path) -> Mapping[str, Any]:
    """The dev stack's endpoints document, or an empty mapping when there is none (or it is
    unreadable: it only supplies defaults)."""
    try:
        document = json.loads((state_dir / ENDPOINTS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _first(*candidates: object) -> str:
    for candidate in candidates:
        if isinstance(candidate, str) and candidate:
            return candidate
    return ""


def resolve_target(
    *,
    address: str | None,
    namespace: str | None,
    ui_url: str | None,
    environ: Mapping[str, str],
    dev_endpoints: Mapping[str, Any],
) -> TemporalTarget:
    """Flags first, then the environment, then the dev stack, then docker-compose.yml's ports."""
    return TemporalTarget(
        address=_first(
            address,
            environ.get(ENV_ADDRESS),
            dev_endpoints.get("temporal_address"),
            DEFAULT_TEMPORAL_ADDRESS,
        ),
        namespace=_first(
            namespace,
            environ.get(ENV_NAMESPACE),
            dev_endpoints.get("temporal_namespace"),
            DEFAULT_TEMPORAL_NAMESPACE,
        ),
        ui_url=_ui_url(ui_url, environ.get(UI_URL_VARIABLE), dev_endpoints),
    )


def _ui_url(flag: str | None, variable: str | None, dev_endpoints: Mapping[str, Any]) -> str | None:
    headless_dev_stack = "temporal_ui_url" in dev_endpoints and not dev_endpoints["temporal_ui_url"]
    fallback = None if headless_dev_stack else DEFAULT_UI_URL
    return (
        _first(flag, variable, dev_endpoints.get("temporal_ui_url"), fallback).rstrip("/") or None
    )
