"""One pod on this node, from binding to release: its sandbox (or the node's namespace for
hostNetwork pods), volumes, init containers in order, containers under the restart policy, status
written back, and graceful deletion (SIGTERM to every container's process group, the grace period,
SIGKILL, CNI DEL, namespace and files removed, then the pod object deleted with grace 0 and a UID
precondition so the API server releases it).

Steps that must not be torn half-way (creating the sandbox, starting a process) run as shielded
tasks that teardown waits for, so cancelling the pod's lifecycle never leaks a namespace, an
address or an untracked process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import marshal
import signal
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from sim.node_runtime import netns
from sim.node_runtime.api_client import ApiClient, ApiError, Conflict, NotFound
from sim.node_runtime.cni_config import first_ip
from sim.node_runtime.config import RuntimeConfig
from sim.node_runtime.container_env import (
    ContainerConfigError,
    ContainerCreateError,
    PodFacts,
    default_environment,
)
from sim.node_runtime.container_logs import cap
from sim.node_runtime.container_states import (
    ContainerRecord,
    Running,
    Terminated,
    Waiting,
    exit_reason,
)
from sim.node_runtime.host_paths import HostPathMap, resolve
from sim.node_runtime.kubelet_server import LogLookupError, LogTarget
from sim.node_runtime.launch_spec import LaunchSpec, Mount, launch_spec
from sim.node_runtime.node_object import rfc3339
from sim.node_runtime.pod_events import EventRecorder
from sim.node_runtime.pod_objects import ObjectRef, ObjectStore, referenced_objects
from sim.node_runtime.pod_recovery import parse_time, recover_records
from sim.node_runtime.pod_state_dir import (
    PodDir,
    ProcessRecord,
    SandboxRecord,
    pod_dir,
    write_private,
)
from sim.node_runtime.pod_status import PodView, pod_status
from sim.node_runtime.pod_volumes import (
    FILE_TYPES,
    TokenSource,
    check_volumes,
    token_sources,
    volume_files,
    volume_type,
)
from sim.node_runtime.probes import Probe, ProbeCounter, check
from sim.node_runtime.processes import ContainerProcess, adopt, start
from sim.node_runtime.restart import (
    backoff_delay,
    init_should_restart,
    next_backoff_steps,
    should_restart,
)
from sim.node_runtime.sandbox import SandboxError, Sandboxes
from sim.node_runtime.volume_files import write_volume

log = logging.getLogger(__name__)
Json = dict[str, Any]
T = TypeVar("T")
StopReason = Literal["delete", "gone", "shutdown"]
RETRY_INITIAL: Final = 1.0
RETRY_MAX: Final = 30.0
OBJECT_RESYNC: Final = 60.0
KILL_WAIT: Final = 10.0
MIN_KILL_GRACE: Final = 2  # the kubelet's minimum grace for a pod removed from the API


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class WorkerContext:
    """What every pod worker of a node shares."""

    config: RuntimeConfig
    api: ApiClient
    sandboxes: Sandboxes
    events: EventRecorder
    service_host: str
    service_port: int
    shutdown_grace: float


class PodWorker:
    def __init__(self, ctx: WorkerContext, pod: Json, on_done: Callable[[PodWorker], None]) -> None:
        self.ctx = ctx
        self.pod = pod
        meta = pod["metadata"]
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.dir: PodDir = pod_dir(ctx.config.state_dir, self.uid)
        self._on_done = on_done
        now = _now()
        running = {
            name: record
            for name, record in self.dir.processes().items()
            if adopt(record.pid, record.start_ticks) is not None
        }
        self.init_records, self.records = recover_records(pod, running, now)
        self.processes: dict[str, ContainerProcess] = {}
        for name, record in running.items():
            process = adopt(record.pid, record.start_ticks)
            if process is not None:
                self.processes[name] = process
        self.run_started: dict[str, float] = {}
        self.sandbox: SandboxRecord | None = None
        self.pod_ip = str((pod.get("status") or {}).get("podIP") or "")
        self.sandbox_ready = False
        self.init_failed = False
        phase = (pod.get("status") or {}).get("phase")
        self.terminal = phase in ("Succeeded", "Failed")
        self.start_time = parse_time((pod.get("status") or {}).get("startTime"))
        self.store = ObjectStore()
        self.tokens: dict[str, str] = {}
        self.token_refresh_at: dict[str, float] = {}
        self._conditions: list[Json] = list((pod.get("status") or {}).get("conditions") or [])
        self._last_status = ""
        self._dirty = asyncio.Event()
        self._stop = asyncio.Event()
        self._stop_reason: StopReason | None = None
        self._critical: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self.task: asyncio.Task[None] | None = None

    # --- from the watch and the runtime ----------------------------------------------------------

    def begin(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"pod {self.namespace}/{self.name}")
        if self.pod["metadata"].get("deletionTimestamp"):
            self.request_stop("delete")

    def update(self, pod: Json) -> None:
        if pod["metadata"].get("uid") != self.uid:
            return
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            self.request_stop("delete")

    def request_stop(self, reason: StopReason) -> None:
        # A deletion wins over a shutdown; "gone" (the object was removed) wins over both.
        rank = {"shutdown": 0, "delete": 1, "gone": 2}
        if self._stop_reason is None or rank[reason] > rank[self._stop_reason]:
            self._stop_reason = reason
        self._stop.set()

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    # --- the pod's life --------------------------------------------------------------------------

    async def _run(self) -> None:
        publisher = asyncio.create_task(self._publisher())
        life = asyncio.create_task(self._lifecycle())
        life.add_done_callback(self._lifecycle_ended)
        try:
            await self._stop.wait()
            life.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await life
            await self._finish_critical()
            reason = self._stop_reason or "shutdown"
            if reason == "shutdown":
                if not self.ctx.config.keep_pods_on_exit:
                    # As a node going down: processes and sandboxes go (the node's own network may
                    # not come back as it was); the next start makes fresh ones.
                    await self._terminate(self.ctx.shutdown_grace)
                    await self._release_network()
                return
            await self._terminate(self._grace_seconds())
            await self._publish()  # the containers' last states, before the object goes
            await self._release()
            publisher.cancel()
            if reason == "delete":
                await self._delete_object()
            self.dir.remove()
        except Exception:
            log.exception("pod %s/%s: worker failed", self.namespace, self.name)
            raise
        finally:
            publisher.cancel()
            for task in list(self._background):
                task.cancel()
            self._on_done(self)

    def _lifecycle_ended(self, life: asyncio.Task[None]) -> None:
        """A bug in one pod's lifecycle is reported on that pod; the runtime goes on."""
        if life.cancelled() or life.exception() is None:
            return
        error = life.exception()
        log.error("pod %s/%s: lifecycle failed", self.namespace, self.name, exc_info=error)
        self._all_waiting("RunContainerError", f"node runtime error: {error!r}")
        self._event("Warning", "Failed", f"node runtime error: {error!r}")

    async def _lifecycle(self) -> None:
        self.dir.write_meta(self.namespace, self.name)
        if self.terminal:
            # Finished before this runtime started: nothing runs again; give the network back.
            self._dirty.set()
            await self._release_network()
            return
        if self.start_time is None:
            self.start_time = _now()
        self._dirty.set()
        try:
            check_volumes(self.pod)
        except ContainerConfigError as err:
            self._all_waiting("CreateContainerConfigError", str(err))
            self._event("Warning", "Failed", f"Error: {err}")
            await asyncio.Event().wait()  # the spec cannot change: wait for the pod's deletion
        began = asyncio.get_running_loop().time()
        prefetch = asyncio.create_task(self._fetch_volume_sources(all_tokens=True))
        try:
            await self._ensure_sandbox()
            sandboxed = asyncio.get_running_loop().time()
            await self._ensure_volumes(prefetch)
        finally:
            prefetch.cancel()
            if prefetch.done() and not prefetch.cancelled():
                prefetch.exception()  # retrieved: a failure was handled by _ensure_volumes
        log.debug(
            "pod %s/%s: sandbox %.3f s, volumes %.3f s",
            self.namespace,
            self.name,
            sandboxed - began,
            asyncio.get_running_loop().time() - sandboxed,
        )
        refresher = asyncio.create_task(self._refresh_volumes())
        try:
            spec = self.pod["spec"]
            for container, record in zip(
                spec.get("initContainers") or [], self.init_records, strict=True
            ):
                if isinstance(record.state, Terminated) and record.state.exit_code == 0:
                    continue
                await self._supervise(record, container, init=True)
                if not (isinstance(record.state, Terminated) and record.state.exit_code == 0):
                    self.init_failed = True
                    break
            if not self.init_failed:
                await asyncio.gather(
                    *(
                        self._supervise(record, container, init=False)
                        for container, record in zip(spec["containers"], self.records, strict=True)
                    )
                )
            self.terminal = True
            self._dirty.set()
            await self._release_network()
        finally:
            refresher.cancel()

    # --- sandbox ---------------------------------------------------------------------------------

    @property
    def host_network(self) -> bool:
        return bool(self.pod["spec"].get("hostNetwork"))

    @property
    def netns_path(self) -> str | None:
        if self.host_network:
            node = self.ctx.config.netns
            return netns.netns_path(node) if node else None
        return netns.netns_path(self.sandbox.netns) if self.sandbox else None

    async def _ensure_sandbox(self) -> None:
        if self.host_network:
            self.pod_ip = self.ctx.config.internal_ip
            self.sandbox_ready = True
            self._dirty.set()
            return
        existing = self.dir.sandbox()
        if existing is not None:
            # Left by an earlier run of the runtime. It is kept when its namespace and address
            # are there (as containerd keeps sandboxes across restarts); CHECK is only reported:
            # the bridge plugin's CHECK fails once the bridge's MAC changed with more ports.
            if netns.exists(existing.netns) and first_ip(existing.result or {}):
                problem = await self.ctx.sandboxes.check(existing)
                if problem is not None:
                    log.info("pod %s/%s: CNI CHECK: %s", self.namespace, self.name, problem)
                self._use_sandbox(existing)
                return
            log.info(
                "pod %s/%s: sandbox %s incomplete; making it again",
                self.namespace,
                self.name,
                existing.netns,
            )
            await self._kill_adopted()
            await self._shielded(self.ctx.sandboxes.destroy(existing, self.dir))
        delay = RETRY_INITIAL
        while True:
            try:
                record = await self._shielded(self.ctx.sandboxes.create(self.pod, self.dir))
            except SandboxError as err:
                message = f"Failed to create pod sandbox: {err}"
                self._all_waiting("ContainerCreating", message)
                self._event("Warning", "FailedCreatePodSandBox", message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            if first_ip(record.result or {}):
                self._use_sandbox(record)
                return
            await self._shielded(self.ctx.sandboxes.destroy(record, self.dir))
            message = "Failed to create pod sandbox: the CNI result has no IP address"
            self._event("Warning", "FailedCreatePodSandBox", message)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def _kill_adopted(self) -> None:
        """Processes of a sandbox that is going away restart in the new one."""
        for name, process in list(self.processes.items()):
            process.kill()
            await process.wait()
            record = self._record(name)
            if record is not None and isinstance(record.state, Running):
                self._exited(record, Terminated(137, "Error", _now(), record.state.started_at))

    def _use_sandbox(self, record: SandboxRecord) -> None:
        """Not published by itself: the containers' start (or failure) follows at once and is
        written together with the pod IP, one status write fewer per pod."""
        self.sandbox = record
        self.pod_ip = first_ip(record.result or {}) or ""
        self.sandbox_ready = True
        for record_ in [*self.init_records, *self.records]:
            if isinstance(record_.state, Waiting) and record_.state.reason == "ContainerCreating":
                record_.state = Waiting("ContainerCreating")

    async def _release_network(self) -> None:
        self.sandbox_ready = False
        record = self.sandbox or self.dir.sandbox()
        self.sandbox = None
        if record is None:
            return
        for attempt in range(3):
            failure = await self._shielded(self.ctx.sandboxes.destroy(record, self.dir))
            if failure is None:
                return
            if attempt == 2:
                self._event("Warning", "FailedKillPod", f"CNI DEL failed: {failure}")
            else:
                await asyncio.sleep(1.0 + attempt)

    # --- volumes ---------------------------------------------------------------------------------

    def _facts(self) -> PodFacts:
        config = self.ctx.config
        return PodFacts(
            node_name=config.node_name,
            host_ip=config.internal_ip,
            pod_ip=self.pod_ip,
            allocatable={"cpu": config.cpu, "memory": config.memory},
        )

    async def _fetch_objects(self) -> None:
        for ref in referenced_objects(self.pod):
            plural = "configmaps" if ref.kind == "ConfigMap" else "secrets"
            path = f"/api/v1/namespaces/{self.namespace}/{plural}/{ref.name}"
            try:
                self.store.add(ref, await self.ctx.api.get(path))
            except NotFound:
                self.store.objects.pop(ObjectRef(ref.kind, ref.name), None)

    async def _request_token(self, source: TokenSource) -> None:
        account = self.pod["spec"].get("serviceAccountName") or "default"
        spec: Json = {
            "expirationSeconds": source.expiration_seconds,
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": self.name,
                "uid": self.uid,
            },
        }
        if source.audience:
            spec["audiences"] = [source.audience]
        answer = await self.ctx.api.create(
            f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{account}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
        )
        self.tokens[source.key] = str(answer["status"]["token"])
        expires = parse_time(answer["status"].get("expirationTimestamp"))
        lifetime = (
            (expires - _now()).total_seconds() if expires else float(source.expiration_seconds)
        )
        loop = asyncio.get_running_loop()
        self.token_refresh_at[source.key] = loop.time() + max(5.0, 0.8 * lifetime)

    def _volume_sources(self) -> dict[str, Path]:
        out = {}
        for volume in self.pod["spec"].get("volumes") or []:
            name = str(volume["name"])
            if volume_type(volume) == "hostPath":
                path = str(volume["hostPath"].get("path", "/"))
                out[name] = Path(resolve(self.ctx.config.host_paths, path))
            else:
                out[name] = self.dir.volume_dir(name)
        return out

    def _write_volumes(self) -> None:
        facts = self._facts()
        for volume in self.pod["spec"].get("volumes") or []:
            kind = volume_type(volume)
            name = str(volume["name"])
            if kind in FILE_TYPES:
                write_volume(
                    self.dir.volume_dir(name),
                    volume_files(self.pod, volume, self.store, self.tokens, facts),
                )
            elif kind == "emptyDir":
                self.dir.volume_dir(name).mkdir(parents=True, exist_ok=True)
            elif kind == "hostPath":
                _prepare_host_path(name, volume["hostPath"], self.ctx.config.host_paths)

    async def _fetch_volume_sources(self, *, all_tokens: bool) -> None:
        """The ConfigMaps and Secrets the pod names and its (due) tokens, concurrently."""
        now = asyncio.get_running_loop().time()
        due = [
            source
            for source in token_sources(self.pod)
            if all_tokens or now >= self.token_refresh_at.get(source.key, 0.0)
        ]
        await asyncio.gather(self._fetch_objects(), *(self._request_token(s) for s in due))

    async def _load_volumes(self, *, all_tokens: bool) -> None:
        await self._fetch_volume_sources(all_tokens=all_tokens)
        self._write_volumes()

    async def _ensure_volumes(self, prefetch: asyncio.Task[None]) -> None:
        """`prefetch` fetched the sources while the sandbox was made; on failure, retry."""
        delay = RETRY_INITIAL / 2
        try:
            await prefetch
            self._write_volumes()
            return
        except (ContainerConfigError, ApiError, OSError) as err:
            self._volume_failure(err)
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)
            try:
                await self._load_volumes(all_tokens=True)
                return
            except (ContainerConfigError, ApiError, OSError) as err:
                self._volume_failure(err)

    def _volume_failure(self, err: Exception) -> None:
        message = str(err)
        self._all_waiting("CreateContainerConfigError", message)
        self._event("Warning", "FailedMount", message)

    async def _refresh_volumes(self) -> None:
        """Tokens before they expire (at 80 % of their lifetime); ConfigMaps and Secrets every
        minute."""
        loop = asyncio.get_running_loop()
        while True:
            due = min([OBJECT_RESYNC, *(t - loop.time() for t in self.token_refresh_at.values())])
            await asyncio.sleep(max(1.0, due))
            try:
                await self._load_volumes(all_tokens=False)
            except (ContainerConfigError, ApiError, OSError) as err:
                log.warning("pod %s/%s: volume refresh: %s", self.namespace, self.name, err)

    # --- containers ------------------------------------------------------------------------------

    def _all_waiting(self, reason: str, message: str) -> None:
        for record in [*self.init_records, *self.records]:
            if isinstance(record.state, Waiting):
                record.state = Waiting(reason, message)
        self._dirty.set()

    def _defaults(self) -> dict[str, str]:
        config = self.ctx.config
        return default_environment(
            path=config.container_path(),
            service_host=self.ctx.service_host,
            service_port=self.ctx.service_port,
            hostname=config.node_name if self.host_network else self.name[:63],
        )

    async def _start_process(
        self, record: ContainerRecord, container: Json, init: bool
    ) -> ContainerProcess:
        spec = launch_spec(
            self.pod,
            container,
            self.store,
            self._facts(),
            self._defaults(),
            self._volume_sources(),
            self.netns_path,
        )
        launch_file = self.dir.launch_file(record.name)
        write_private(launch_file, marshal.dumps(spec.to_json()))  # env may hold Secrets
        log_file = self.dir.log_file(record.name, record.restart_count)

        async def started() -> ContainerProcess:
            process = await start(launch_file, log_file)
            self.processes[record.name] = process
            self.dir.write_process(
                record.name,
                ProcessRecord(
                    pid=process.pid,
                    start_ticks=process.ticks,
                    restart_count=record.restart_count,
                    started_at=rfc3339(_now()),
                    init=init,
                ),
            )
            return process

        return await self._shielded(started())

    async def _supervise(self, record: ContainerRecord, container: Json, *, init: bool) -> None:
        """Run one container until it will not be started again (for an init container: until
        it succeeded, or failed under restartPolicy Never)."""
        policy = str(self.pod["spec"].get("restartPolicy", "Always"))
        config_delay = RETRY_INITIAL
        loop = asyncio.get_running_loop()
        while True:
            process = self.processes.get(record.name)
            if isinstance(record.state, Running) and process is not None:
                ran_since = self.run_started.get(record.name, loop.time())
                probing = None if init else asyncio.create_task(self._probe(record, container))
                try:
                    code = await process.wait()
                finally:
                    if probing is not None:
                        probing.cancel()
                started_at = record.state.started_at
                if code is None:
                    terminated = Terminated(
                        137,
                        "ContainerStatusUnknown",
                        _now(),
                        started_at,
                        "the process was adopted from an earlier run of the node runtime",
                    )
                else:
                    terminated = Terminated(code, exit_reason(code), _now(), started_at)
                self._exited(record, terminated)
                ran_for = loop.time() - ran_since
            elif isinstance(record.state, Terminated):
                terminated, ran_for = record.state, 0.0
            else:
                try:
                    process = await self._start_process(record, container, init)
                except ContainerConfigError as err:
                    self._waiting_error(record, "CreateContainerConfigError", str(err))
                    await asyncio.sleep(config_delay)
                    config_delay = min(config_delay * 2, RETRY_MAX)
                    continue
                except ContainerCreateError as err:
                    self._waiting_error(record, "CreateContainerError", str(err))
                    await asyncio.sleep(config_delay)
                    config_delay = min(config_delay * 2, RETRY_MAX)
                    continue
                config_delay = RETRY_INITIAL
                log.debug("pod %s/%s: container %s started", self.namespace, self.name, record.name)
                self.run_started[record.name] = loop.time()
                record.state = Running(_now())
                record.ready = not init and not container.get("readinessProbe")
                self._dirty.set()
                self._prune_logs(record)
                continue
            restart = (init_should_restart if init else should_restart)(
                policy, terminated.exit_code
            )
            if not restart:
                return
            config = self.ctx.config
            record.backoff_steps = next_backoff_steps(
                record.backoff_steps, ran_for, config.restart_backoff_max
            )
            delay = backoff_delay(
                record.backoff_steps, config.restart_backoff_initial, config.restart_backoff_max
            )
            record.last_state = terminated
            if delay > 0:
                record.state = Waiting(
                    "CrashLoopBackOff",
                    f"back-off {delay:g}s restarting failed container={record.name} "
                    f"pod={self.name}_{self.namespace}({self.uid})",
                )
                self._dirty.set()
                self._event(
                    "Warning",
                    "BackOff",
                    "Back-off restarting failed container "
                    f"{record.name} in pod {self.name}_{self.namespace}({self.uid})",
                    f"spec.containers{{{record.name}}}",
                )
                await asyncio.sleep(delay)
            record.restart_count += 1
            record.state = Waiting("ContainerCreating")

    async def _probe(self, record: ContainerRecord, container: Json) -> None:
        """Readiness sets the container's `ready`; a failed liveness probe stops the container
        (its restart policy then applies). Without a readiness probe a running container is
        ready."""
        checks = []
        readiness = Probe.from_json(container.get("readinessProbe") or {}, container)
        if readiness is not None:
            checks.append(self._probe_loop(record, readiness, "Readiness", healthy=False))
        liveness = Probe.from_json(container.get("livenessProbe") or {}, container)
        if liveness is not None:
            checks.append(self._probe_loop(record, liveness, "Liveness", healthy=True))
        if checks:
            await asyncio.gather(*checks)

    async def _probe_loop(
        self, record: ContainerRecord, probe: Probe, kind: str, *, healthy: bool
    ) -> None:
        counter = ProbeCounter(probe.success_threshold, probe.failure_threshold, healthy)
        spec_file = self.dir.launch_file(f"{record.name}.{kind.lower()}-probe")
        await asyncio.sleep(probe.initial_delay)
        while True:
            spec = read_launch_spec(self.dir.launch_file(record.name))
            ok = spec is not None and await check(
                probe, self.pod_ip, self.netns_path, spec, spec_file
            )
            if not ok:
                self._event(
                    "Warning",
                    "Unhealthy",
                    f"{kind} probe failed",
                    f"spec.containers{{{record.name}}}",
                )
            if counter.record(ok):
                if kind == "Readiness":
                    record.ready = counter.healthy
                    self._dirty.set()
                elif not counter.healthy:
                    process = self.processes.get(record.name)
                    self._event(
                        "Normal",
                        "Killing",
                        f"Container {record.name} failed liveness probe, will be restarted",
                        f"spec.containers{{{record.name}}}",
                    )
                    if process is not None:
                        await self._stop_process(process, self._grace_seconds())
                    return
            await asyncio.sleep(probe.period)

    async def _stop_process(self, process: ContainerProcess, grace: float) -> None:
        process.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.ensure_future(process.wait())), grace)
        except TimeoutError:
            process.kill()

    def _exited(self, record: ContainerRecord, terminated: Terminated) -> None:
        record.state = terminated
        record.ready = False
        self.processes.pop(record.name, None)
        self.dir.clear_process(record.name)
        self._dirty.set()

    def _waiting_error(self, record: ContainerRecord, reason: str, message: str) -> None:
        if record.state != Waiting(reason, message):
            self._event(
                "Warning", "Failed", f"Error: {message}", f"spec.containers{{{record.name}}}"
            )
        record.state = Waiting(reason, message)
        self._dirty.set()

    def _prune_logs(self, record: ContainerRecord) -> None:
        """Keep the current and the previous run's logs (what `kubectl logs -p` can ask for)."""
        directory = self.dir.log_dir(record.name)
        for path in directory.glob("*.log*"):
            run = path.name.split(".")[0]
            if run.isdigit() and int(run) < record.restart_count - 1:
                path.unlink(missing_ok=True)

    def cap_logs(self) -> None:
        for record in [*self.init_records, *self.records]:
            if record.name in self.processes:
                cap(
                    self.dir.log_file(record.name, record.restart_count),
                    self.ctx.config.log_max_bytes,
                )

    # --- stopping --------------------------------------------------------------------------------

    def _grace_seconds(self) -> float:
        meta = self.pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = self.pod["spec"].get("terminationGracePeriodSeconds", 30)
        if self._stop_reason == "gone":
            grace = max(int(grace), MIN_KILL_GRACE)
        return float(grace)

    async def _terminate(self, grace: float) -> None:
        """SIGTERM every container's process group, SIGKILL what is left after `grace`."""
        running = dict(self.processes)
        if not running:
            return
        for name, process in running.items():
            process.signal(signal.SIGTERM)
            self._event(
                "Normal", "Killing", f"Stopping container {name}", f"spec.containers{{{name}}}"
            )
        waits = {name: asyncio.create_task(p.wait()) for name, p in running.items()}
        _, pending = await asyncio.wait(waits.values(), timeout=max(grace, 0.0))
        if pending:
            for name, task in waits.items():
                if task in pending:
                    running[name].kill()
            await asyncio.wait(pending, timeout=KILL_WAIT)
        for name, task in waits.items():
            code = task.result() if task.done() and not task.cancelled() else None
            record = self._record(name)
            if record is not None:
                started = record.state.started_at if isinstance(record.state, Running) else None
                exit_code = 137 if code is None else code
                self._exited(record, Terminated(exit_code, exit_reason(exit_code), _now(), started))

    def _record(self, name: str) -> ContainerRecord | None:
        return next((r for r in [*self.init_records, *self.records] if r.name == name), None)

    async def _release(self) -> None:
        await self._release_network()

    async def _delete_object(self) -> None:
        path = f"/api/v1/namespaces/{self.namespace}/pods/{self.name}"
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": self.uid},
        }
        delay = RETRY_INITIAL
        for _ in range(10):
            try:
                await self.ctx.api.delete(path, body)
                return
            except (NotFound, Conflict):
                return  # gone already, or a new pod of the same name
            except ApiError as err:
                log.warning("pod %s/%s: delete failed: %s", self.namespace, self.name, err)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)

    # --- status ----------------------------------------------------------------------------------

    def view(self) -> PodView:
        return PodView(
            restart_policy=str(self.pod["spec"].get("restartPolicy", "Always")),
            sandbox_ready=self.sandbox_ready,
            pod_ip=self.pod_ip,
            host_ip=self.ctx.config.internal_ip,
            start_time=self.start_time,
            init_containers=self.init_records,
            containers=self.records,
            init_failed=self.init_failed,
            terminal=self.terminal,
        )

    async def _publisher(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self._publish()

    async def _publish(self) -> None:
        status = pod_status(self.view(), self._conditions, _now())
        text = json.dumps(status, sort_keys=True)
        if text == self._last_status:
            return
        path = f"/api/v1/namespaces/{self.namespace}/pods/{self.name}/status"
        try:
            answer = await self.ctx.api.patch(
                path, {"metadata": {"uid": self.uid}, "status": status}
            )
        except (NotFound, Conflict):
            return
        except ApiError as err:
            log.warning("pod %s/%s: status not written: %s", self.namespace, self.name, err)
            await asyncio.sleep(RETRY_INITIAL)
            self._dirty.set()
            return
        if log.isEnabledFor(logging.DEBUG):
            before = json.loads(self._last_status) if self._last_status else {}
            changed = sorted(k for k in status if before.get(k) != status[k])
            log.debug(
                "pod %s/%s: status written: %s (%s)",
                self.namespace,
                self.name,
                status["phase"],
                ", ".join(changed),
            )
        self._last_status = text
        self._conditions = list((answer.get("status") or {}).get("conditions") or [])

    # --- logs ------------------------------------------------------------------------------------

    def log_target(self, container: str, previous: bool) -> LogTarget:
        record = self._record(container)
        if record is None:
            raise LogLookupError(400, f"container {container} is not valid for pod {self.name}")
        run = record.restart_count - 1 if previous else record.restart_count
        file = self.dir.log_file(container, run)
        if previous and (run < 0 or not file.exists()):
            raise LogLookupError(
                400, f'previous terminated container "{container}" in pod "{self.name}" not found'
            )
        if not previous and isinstance(record.state, Waiting) and not file.exists():
            raise LogLookupError(
                400,
                f'container "{container}" in pod "{self.name}" is waiting to start: '
                f"{record.state.reason}",
            )

        def running() -> bool:
            return (
                not previous
                and container in self.processes
                and self._record(container) is record
                and record.restart_count == run
            )

        return LogTarget(file, running)

    # --- helpers ---------------------------------------------------------------------------------

    async def _shielded(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` to its end even if this pod's lifecycle is cancelled meanwhile."""
        task: asyncio.Task[T] = asyncio.create_task(work)
        self._critical.add(task)
        task.add_done_callback(self._critical.discard)
        return await asyncio.shield(task)

    async def _finish_critical(self) -> None:
        if self._critical:
            await asyncio.gather(*self._critical, return_exceptions=True)

    def _event(self, kind: str, reason: str, message: str, field_path: str = "") -> None:
        task = asyncio.create_task(
            self.ctx.events.record(self.pod, kind, reason, message, field_path)
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _prepare_host_path(volume: str, source: Json, host_paths: Sequence[HostPathMap]) -> None:
    path = Path(resolve(host_paths, str(source.get("path", ""))))
    kind = str(source.get("type", ""))
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True)
    elif kind == "FileOrCreate":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    checks: dict[str, Callable[[Path], bool]] = {
        "Directory": Path.is_dir,
        "File": Path.is_file,
        "Socket": Path.is_socket,
        "CharDevice": Path.is_char_device,
        "BlockDevice": Path.is_block_device,
    }
    if kind in checks and not checks[kind](path):
        raise ContainerConfigError(f'volume "{volume}": hostPath {path} is not a {kind}')


def read_launch_spec(path: Path) -> LaunchSpec | None:
    """The spec a container was started with (also for a process adopted after a restart)."""
    try:
        raw = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError):
        return None
    return LaunchSpec(
        argv=list(raw["argv"]),
        env=dict(raw["env"]),
        cwd=str(raw["cwd"]),
        netns=raw["netns"],
        mounts=[Mount(**m) for m in raw["mounts"]],
    )
