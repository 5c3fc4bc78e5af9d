"""The node's conflist with our plugin chained right after the main plugin (pure).

As upstream's conf manager (docs/pod-side.md): the main configuration is the first regular file
with extension .conflist, .conf or .json in the conf dir, in lexical order, other than ours. Ours
(`01-egressgateway.conflist`, so that runtimes, which take the lexically first, use it) is the
main one with our entry inserted at index 1; a single-plugin .conf is wrapped into a list. An
entry of our type already in the main list is dropped first, so that regenerating is stable.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from agent.cni.cni_protocol import SUPPORTED_VERSIONS
from contracts import kube_names

CONF_EXTENSIONS = (".conflist", ".conf", ".json")


class ConflistError(ValueError):
    """The main configuration cannot carry our entry (the message says why)."""


def main_conf_name(names: Iterable[str], own: str) -> str | None:
    """The main configuration among the conf dir's regular file names."""
    candidates = sorted(n for n in names if n != own and n.endswith(CONF_EXTENSIONS))
    return candidates[0] if candidates else None


def render(main_name: str, main_text: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """Our conflist from the main configuration's text."""
    try:
        raw = json.loads(main_text)
    except ValueError as err:
        raise ConflistError(f"{main_name} is not JSON: {err}") from None
    if not isinstance(raw, dict):
        raise ConflistError(f"{main_name} is not a JSON object")
    version = raw.get("cniVersion")
    if version not in SUPPORTED_VERSIONS:
        raise ConflistError(
            f"{main_name} has cniVersion {version!r}; {kube_names.CNI_PLUGIN_TYPE} supports "
            f"{', '.join(SUPPORTED_VERSIONS)}"
        )
    if "plugins" in raw:
        plugins = raw["plugins"]
        if not isinstance(plugins, list) or not all(isinstance(p, dict) for p in plugins):
            raise ConflistError(f"{main_name}: plugins is not a list of objects")
        kept = [p for p in plugins if p.get("type") != kube_names.CNI_PLUGIN_TYPE]
        if not kept:
            raise ConflistError(f"{main_name} has no plugin besides {kube_names.CNI_PLUGIN_TYPE}")
        return {**raw, "plugins": [kept[0], dict(entry), *kept[1:]]}
    if not isinstance(raw.get("type"), str):
        raise ConflistError(f"{main_name} has neither plugins nor a type")
    return {"cniVersion": version, "name": raw.get("name", ""), "plugins": [raw, dict(entry)]}


def render_text(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"
