"""What the Temporal histories the suite produced must not hold (secrets), and which workflows
are stuck (still open and retrying an activity after their configuration is gone or settled)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus

SGC_WORKFLOW_PREFIX = "egressgw/sgc/"


@dataclass(frozen=True)
class SecretFinding:
    workflow_id: str
    run_id: str
    secret: str  # which secret (its label, never its value)


def _decoded(value: str) -> str | None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.decode("utf-8", errors="replace")


def history_texts(document: Any) -> Iterable[str]:
    """Every string of a history's JSON, and payloads' `data` also decoded (payload data is
    base64 in the JSON form, so a secret in a payload is not visible as itself)."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "data" and isinstance(value, str):
                decoded = _decoded(value)
                if decoded is not None:
                    yield decoded
            yield from history_texts(value)
    elif isinstance(document, list):
        for item in document:
            yield from history_texts(item)
    elif isinstance(document, str):
        yield document


def secret_forms(value: str) -> list[str]:
    """The ways a secret could show in text: itself, and a WireGuard key's bytes in hex."""
    forms = [value]
    with_padding = value + "=" * (-len(value) % 4)
    try:
        raw = base64.b64decode(with_padding, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) >= 16:
        forms.append(raw.hex())
    return forms


def find_secrets(texts: Iterable[str], secrets: dict[str, str]) -> list[str]:
    """Labels of the secrets that occur in any of the texts."""
    found: set[str] = set()
    wanted = {label: secret_forms(value) for label, value in secrets.items() if len(value) >= 8}
    for text in texts:
        for label, forms in wanted.items():
            if label not in found and any(form in text for form in forms):
                found.add(label)
    return sorted(found)


async def scan_histories(
    client: Client, secrets: dict[str, str]
) -> tuple[int, list[SecretFinding]]:
    """(histories scanned, findings) over every workflow run the namespace holds."""
    scanned = 0
    findings: list[SecretFinding] = []
    async for execution in client.list_workflows():
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        history = await handle.fetch_history()
        scanned += 1
        for label in find_secrets(history_texts(history.to_json_dict()), secrets):
            findings.append(SecretFinding(execution.id, execution.run_id, label))
    return scanned, findings


async def workflow_open(client: Client, workflow_id: str) -> bool:
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except Exception:  # noqa: BLE001 - not found: never started, or gone from visibility
        return False
    return described.status == WorkflowExecutionStatus.RUNNING


async def retrying_activities(client: Client, workflow_id: str) -> list[str]:
    """The workflow's pending activities that have failed at least once (type and attempt)."""
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except Exception:  # noqa: BLE001 - not found
        return []
    if described.status != WorkflowExecutionStatus.RUNNING:
        return []
    pending = described.raw_description.pending_activities
    return [
        f"{a.activity_type.name} (attempt {a.attempt}: {a.last_failure.message[:200]})"
        for a in pending
        if a.attempt > 1
    ]
