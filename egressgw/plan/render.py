"""How `egressgw plan` reads: one block per configuration with its changes marked `+` (create),
`~` (update) and `-` (delete) and what each changes, then a count; or the same as JSON. A
configuration not created yet has no uid: names made from it show `<uid>`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from egressgw.plan.changes import (
    NEW_UID,
    UID_PLACEHOLDER,
    Action,
    ConfigurationPlan,
    PlannedChange,
    Target,
)

_MARKS: Final = {Action.CREATE: "+", Action.UPDATE: "~", Action.DELETE: "-"}


def _shown(text: str) -> str:
    return text.replace(NEW_UID, UID_PLACEHOLDER)


def _heading(plan: ConfigurationPlan) -> str:
    what = "new" if plan.new else f"uid {plan.uid}"
    return f"StaticGatewayConfiguration {plan.namespace}/{plan.name} ({what}; {plan.source})"


_HEADINGS: Final = {Target.AZURE: "  Azure:", Target.NODE: "  Gateway nodes:"}


def _change_lines(changes: Sequence[PlannedChange]) -> list[str]:
    lines: list[str] = []
    for target, heading in _HEADINGS.items():
        mine = [change for change in changes if change.target is target]
        if mine:
            lines.append(heading)
        for change in mine:
            lines.append(f"    {_MARKS[change.action]} {_shown(change.resource)}")
            lines += [f"        {_shown(detail)}" for detail in change.details]
    return lines


def render_invalid(plan: ConfigurationPlan) -> str:
    """The API server's wording: `<Kind> "<name>" is invalid:` and one `field: message` each."""
    lines = [f'StaticGatewayConfiguration "{plan.name}" is invalid ({plan.source}):']
    lines += [f"  {error.field}: {error.message}" for error in plan.errors]
    return "\n".join(lines) + "\n"


def render_text(plans: Sequence[ConfigurationPlan]) -> str:
    blocks: list[str] = []
    for plan in plans:
        if plan.errors:
            blocks.append(render_invalid(plan))
            continue
        lines = [_heading(plan)]
        if plan.refusal:
            lines.append(f"  ! the controller would refuse it: {_shown(plan.refusal)}")
        elif not plan.changes:
            lines.append("  no changes: Azure and the nodes already match")
        lines += _change_lines(plan.changes)
        lines += [f"  note: {note}" for note in plan.notes]
        blocks.append("\n".join(lines) + "\n")
    totals = {action: sum(p.count(action) for p in plans) for action in Action}
    blocks.append(
        f"Plan: {totals[Action.CREATE]} to create, {totals[Action.UPDATE]} to update, "
        f"{totals[Action.DELETE]} to delete.\n"
    )
    return "\n".join(blocks)


def _change_json(change: PlannedChange) -> dict[str, Any]:
    return {
        "action": str(change.action),
        "target": str(change.target),
        "resource": _shown(change.resource),
        "details": [_shown(detail) for detail in change.details],
    }


def render_json(plans: Sequence[ConfigurationPlan]) -> str:
    items = [
        {
            "source": plan.source,
            "namespace": plan.namespace,
            "name": plan.name,
            "uid": plan.uid or None,
            "valid": not plan.errors,
            "errors": [{"field": e.field, "message": e.message} for e in plan.errors],
            "refusal": _shown(plan.refusal) or None,
            "changes": [_change_json(change) for change in plan.changes],
            "notes": list(plan.notes),
        }
        for plan in plans
    ]
    return json.dumps({"items": items}, indent=2) + "\n"
