"""The suite's scenarios on one running dev stack.

- A kill run takes a new configuration through create, update and delete; at a random moment of
  one of them it SIGKILLs one part (stack_parts.KINDS). After each step the Azure inventory must
  be exactly what a calibration run without kills left (the configuration's UID aside), and after
  the delete exactly the seeded baseline.
- A fault cycle creates and deletes a configuration while ARM answers 20% of requests with a
  fault of every kind; each Retry-After must be honoured (checked in the request log).
- The invalid corpus (invalid_corpus.py): each case, refused or accepted, causes no ARM write.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from contracts import resource_names
from tests.chaos.history_checks import retrying_activities, workflow_open
from tests.chaos.inventory import InventoryCheck, compare, normalized
from tests.chaos.session import SGC_NAMESPACE, ChaosSession, poll
from tests.chaos.stack_parts import StackParts

PHASES = ("create", "update", "delete")
VMSS_PROFILE = {"vmssResourceGroup": "egressgw-dev", "vmssName": "aks-gwpool-12345678-vmss"}
SPEC_CREATE: dict[str, Any] = {
    "gatewayVmssProfile": {**VMSS_PROFILE, "publicIpPrefixSize": 31},
    "provisionPublicIps": True,
    "defaultRoute": "staticEgressGateway",
    "excludeCidrs": ["10.224.0.0/12"],
}
SPEC_UPDATE: dict[str, Any] = {
    **SPEC_CREATE,
    "gatewayVmssProfile": {**VMSS_PROFILE, "publicIpPrefixSize": 30},
    "excludeCidrs": ["10.224.0.0/12", "172.16.0.0/12"],
}
STEP_TIMEOUT = 180.0  # a step with a killed part: its restart, then the retries' backoff
SETTLE = 20.0  # how long the inventory may lag the object (a single writer's next batch)
UID = "<uid>"
# The nodes of SPEC_CREATE's pool: agents and node runtimes are killed among those.
SERVING_NODES = "aks-gwpool-12345678-vmss"
INVALID_VERDICT_TIMEOUT = 20.0


def workflow_id(name: str) -> str:
    return resource_names.gateway_config_workflow_id(SGC_NAMESPACE, name)


@dataclass(frozen=True)
class Calibration:
    """What a run without chaos leaves in Azure after each step, and how long each step took."""

    baseline: list[str]
    after: dict[str, list[str]]  # phase -> normalized inventory
    seconds: dict[str, float]


@dataclass
class RunResult:
    test: str
    converged: bool = True
    seconds: float = 0.0
    leaked: int = 0
    duplicated: int = 0
    stuck: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class Suite:
    """State shared by the scenarios of one stack: secrets seen, UIDs made, the calibration."""

    session: ChaosSession
    parts: StackParts
    rng: random.Random
    calibration: Calibration | None = None
    secrets: dict[str, str] = field(default_factory=dict)
    uids: dict[str, str] = field(default_factory=dict)  # every configuration's UID -> name
    serial: int = 0

    def next_name(self, what: str) -> str:
        self.serial += 1
        return f"chaos-{what}-{self.serial}"

    # --- Inventory ------------------------------------------------------------------------

    async def current(self, uid: str | None) -> list[str]:
        """The inventory, without what earlier configurations left (counted against those)."""
        inventory = await self.session.inventory()
        others = [u for u in self.uids if u != uid]
        items = [i for i in inventory if not any(o in i for o in others)]
        return normalized(items, {uid: UID} if uid else {})

    async def settled(self, expected: list[str], uid: str | None) -> InventoryCheck:
        """The inventory compared with `expected`, re-read for up to SETTLE seconds while it
        differs."""
        check = compare(expected, await self.current(uid))
        deadline = time.monotonic() + SETTLE
        while not check.exact and time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            with contextlib.suppress(Exception):
                check = compare(expected, await self.current(uid))
        return check

    async def remember_secrets(self, uid: str) -> None:
        key = await self.session.gateway_private_key(uid)
        if key:
            self.secrets[f"WireGuard private key of {uid}"] = key

    # --- One step --------------------------------------------------------------------------

    async def _start(self, phase: str, name: str) -> str | None:
        """Begin a step; the UID after a create."""
        if phase == "create":
            uid = await self.session.create(name, SPEC_CREATE)
            self.uids[uid] = name
            return uid
        if phase == "update":
            await self.session.replace_spec(name, SPEC_UPDATE)
        else:
            await self.session.delete(name)
        return None

    async def _wait(self, phase: str, name: str, timeout: float = STEP_TIMEOUT) -> bool:
        if phase == "delete":
            return await self.session.wait_gone(name, timeout)
        return await self.session.wait_ready(name, timeout)

    async def calibrate(self) -> Calibration:
        """One create, update and delete without chaos: the expected inventories and times."""
        baseline = await self.current(None)
        name = self.next_name("calibration")
        after: dict[str, list[str]] = {}
        seconds: dict[str, float] = {}
        uid = ""
        for phase in PHASES:
            began = time.monotonic()
            uid = await self._start(phase, name) or uid
            if not await self._wait(phase, name):
                raise AssertionError(f"calibration: {name} did not finish its {phase}")
            seconds[phase] = time.monotonic() - began
            if phase == "create":
                await self.remember_secrets(uid)
            await asyncio.sleep(2.0)  # let single writers finish their batch
            after[phase] = await self.current(uid)
        if after["delete"] != baseline:
            check = compare(baseline, after["delete"])
            raise AssertionError(f"calibration: delete did not restore the baseline: {check}")
        self.calibration = Calibration(baseline, after, seconds)
        return self.calibration

    # --- Kill runs -------------------------------------------------------------------------

    async def kill_run(self, kind: str, phase: str) -> RunResult:
        """Create, update, delete a new configuration; SIGKILL a `kind` at a random moment of
        `phase`."""
        assert self.calibration is not None
        calibration = self.calibration
        name = self.next_name(kind)
        result = RunResult(f"kill {kind}")
        began = time.monotonic()
        uid = ""
        for step in PHASES:
            uid = await self._retrying_start(step, name) or uid
            if step == phase:
                await asyncio.sleep(self.rng.uniform(0, calibration.seconds[step]))
                part = await asyncio.to_thread(self.parts.pick, kind, SERVING_NODES)
                await asyncio.to_thread(self.parts.kill, part)
                result.notes.append(f"killed {part.kind} {part.name} during {step}")
            if not await self._wait(step, name):
                await self._step_failed(result, step, name, uid)
                break
            if step == "create":
                await self.remember_secrets(uid)
            check = await self.settled(calibration.after[step], uid)
            self._count(result, step, check)
        result.seconds = time.monotonic() - began
        if result.converged and await self._still_open(name):
            result.stuck = True
            result.notes.append(f"{workflow_id(name)} still running after the delete")
        return result

    async def _retrying_start(self, phase: str, name: str) -> str | None:
        """A step's request, retried while the API server restarts."""
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            try:
                return await self._start(phase, name)
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1.0)

    def _count(self, result: RunResult, step: str, check: InventoryCheck) -> None:
        if check.exact:
            return
        result.converged = False
        result.leaked += len(check.leaked)
        result.duplicated += len(check.duplicated)
        result.notes.append(f"after {step}: {check.describe()}")

    async def _step_failed(self, result: RunResult, step: str, name: str, uid: str) -> None:
        """A step that did not finish: the run did not converge; what is stuck is noted, and the
        configuration deleted and checked against the baseline."""
        result.converged = False
        result.notes.append(f"{step} did not finish in {STEP_TIMEOUT:.0f} s")
        await self._record_stuck(result, name)
        await self._give_up(name, uid, result)

    async def _record_stuck(self, result: RunResult, name: str) -> None:
        with contextlib.suppress(Exception):
            client = await self.session.temporal()
            retrying = await retrying_activities(client, workflow_id(name))
            if retrying:
                result.stuck = True
                result.notes.append("retrying: " + "; ".join(retrying))

    async def _still_open(self, name: str, grace: float = 30.0) -> bool:
        async def closed() -> bool:
            client = await self.session.temporal()
            return not await workflow_open(client, workflow_id(name))

        return not await poll(closed, grace, every=1.0)

    async def _give_up(self, name: str, uid: str = "", result: RunResult | None = None) -> None:
        """Make room for the next run: delete, and if that does not finish, drop finalizers.
        A delete that finished must have left the baseline (else: leaks of this run); what
        dropping finalizers leaves is noted, not counted (the harness left it)."""
        assert self.calibration is not None
        await self.session.delete(name)
        deleted = await self.session.wait_gone(name, 60)
        if not deleted:
            await self.session.drop_finalizers(name)
            await self.session.wait_gone(name, 30)
        if result is None or not uid:
            return
        check = await self.settled(self.calibration.baseline, uid)
        if deleted:
            self._count(result, "the delete that followed", check)
        elif not check.exact:
            result.notes.append(f"finalizers dropped, left: {check.describe()}")

    # --- ARM fault cycles ------------------------------------------------------------------

    async def fault_cycle(self, fault_share: float = 0.2, retry_after: int = 2) -> RunResult:
        assert self.calibration is not None
        calibration = self.calibration
        name = self.next_name("faults")
        result = RunResult("ARM faults")
        began = time.monotonic()
        uid = ""
        await self.session.clear_requests()
        for step in ("create", "delete"):
            for rule in fault_rules(fault_share, retry_after):
                await self.session.add_fault(rule)
            try:
                uid = await self._retrying_start(step, name) or uid
                done = await self._wait(step, name)
            finally:
                await self.session.clear_faults()
            if not done:
                await self._step_failed(result, step, name, uid)
                break
            if step == "create":
                await self.remember_secrets(uid)
            expected = calibration.after["create"] if step == "create" else calibration.baseline
            self._count(result, step, await self.settled(expected, uid))
        entries = await self.session.requests()
        faults = sum(e["status"] in FAULT_STATUSES for e in entries)
        delayed = sum(e["status"] in (429, 503) and e["method"] in WRITES for e in entries)
        result.notes.append(
            f"{faults} of {len(entries)} ARM requests answered with a fault, "
            f"{delayed} writes told to retry after {retry_after} s"
        )
        violations = retry_after_violations(entries, retry_after)
        if violations:
            result.converged = False
            result.notes += violations[:5]
        result.seconds = time.monotonic() - began
        if result.converged and await self._still_open(name):
            result.stuck = True
            result.notes.append(f"{workflow_id(name)} still running after the delete")
        return result

    # --- The invalid corpus -------------------------------------------------------------

    async def invalid_case(self, case: str, spec: dict[str, Any]) -> RunResult:
        """Apply an invalid spec: refused by the API server, or admitted and then refused by
        the controller (a status condition that is not Ready); either way no ARM write, also
        while it is deleted."""
        result = RunResult("invalid input")
        name = self.next_name("invalid")
        began = time.monotonic()
        await self.session.clear_requests()
        try:
            uid = await self.session.create(name, spec)
        except ApiException as err:
            refused = err.status in (400, 422)
            result.converged = refused
            if not refused:
                result.notes.append(f"{case}: the API server answered {err.status}")
        else:
            self.uids[uid] = name
            marked = await self.session.wait_condition(name, INVALID_VERDICT_TIMEOUT)
            if not marked:
                result.converged = False
                result.notes.append(f"{case}: admitted and never marked invalid")
            await self.session.delete(name)
            if not await self.session.wait_gone(name, 60):
                result.stuck = True
                result.notes.append(f"{case}: not deleted in 60 s")
                await self._give_up(name)
        writes = [e for e in await self.session.requests() if e["method"] in WRITES]
        if writes:
            result.converged = False
            result.leaked = len(writes)
            shown = ", ".join(
                f"{e['method']} {e['path'].rsplit('/providers/', 1)[-1]}" for e in writes[:3]
            )
            result.notes.append(f"{case}: {len(writes)} ARM writes ({shown})")
        result.seconds = time.monotonic() - began
        return result


def fault_rules(share: float, retry_after: int) -> list[dict[str, Any]]:
    """One rule per kind of fault, together answering `share` of all requests (the first
    matching rule wins, each with its own probability: equal shares need 1-(1-share)^(1/n))."""
    kinds: list[dict[str, Any]] = [
        {"effect": "throttle", "retry_after": retry_after},
        {"effect": "error", "status": 500},
        {"effect": "error", "status": 502},
        {"effect": "error", "status": 503, "retry_after": retry_after},
        {"effect": "error", "status": 504},
        {"effect": "conflict"},
        {"effect": "fail-operation"},
        {"effect": "drop"},
    ]
    each = 1 - (1 - share) ** (1 / len(kinds))
    return [{**kind, "probability": each} for kind in kinds]


WRITES = frozenset({"PUT", "PATCH", "POST", "DELETE"})
# How the request log shows an injected fault (0: a dropped connection). A failed operation is
# answered later, in its poll, so it is not among these.
FAULT_STATUSES = frozenset({0, 409, 429, 500, 502, 503, 504})


def retry_after_violations(
    entries: list[dict[str, Any]], retry_after: int, slack: float = 0.1
) -> list[str]:
    """Writes repeated sooner than the Retry-After of the answer before them: after a 429 or a
    503 (both sent with Retry-After by fault_rules), the next request of the same method and
    path must wait that long. (Reads are left out: two callers may read one resource.)"""
    violations = []
    for index, entry in enumerate(entries):
        if entry["status"] not in (429, 503) or entry["method"] not in WRITES:
            continue
        key = (entry["method"], entry["path"])
        later = [e for e in entries[index + 1 :] if (e["method"], e["path"]) == key]
        if not later:
            continue
        gap = later[0]["timestamp"] - entry["timestamp"]
        if gap < retry_after - slack:
            violations.append(
                f"Retry-After {retry_after} s not honoured: {entry['method']} "
                f"{entry['path'].rsplit('/providers/', 1)[-1]} again after {gap:.2f} s"
            )
    return violations
