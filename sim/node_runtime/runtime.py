"""The node runtime assembled: node registration and heartbeat, the kubelet endpoint, the pod
watch feeding one PodWorker per pod, start-up reconciliation against the state dir, and the stop
(pods' processes stopped unless --keep-pods-on-exit; the Lease is no longer renewed)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Final

from sim.node_runtime import netns
from sim.node_runtime.api_client import ApiClient, ApiError, load_kubeconfig
from sim.node_runtime.cni_exec import CniRunner
from sim.node_runtime.config import RuntimeConfig
from sim.node_runtime.kubelet_server import KubeletServer, LogLookupError, LogTarget
from sim.node_runtime.node_reconcile import orphan_pods, stale_netns
from sim.node_runtime.node_registration import NodeRegistration, read_host_facts
from sim.node_runtime.pod_events import EventRecorder
from sim.node_runtime.pod_feed import PodChange
from sim.node_runtime.pod_state_dir import PodDir, pod_dirs
from sim.node_runtime.pod_watch import PodWatch
from sim.node_runtime.pod_worker import PodWorker, WorkerContext
from sim.node_runtime.processes import adopt, signal_group
from sim.node_runtime.sandbox import Sandboxes

log = logging.getLogger(__name__)
HOUSEKEEPING_SECONDS: Final = 10.0
SHUTDOWN_GRACE: Final = 10.0
ORPHAN_KILL_WAIT: Final = 5.0


class NodeRuntime:
    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config
        self.workers: dict[str, PodWorker] = {}
        self.sandboxes = Sandboxes(
            CniRunner(config.cni_bin_dirs, config.netns, config.host_paths),
            config.cni_conf_dir,
            config.pod_netns_prefix,
        )
        self._ctx: WorkerContext | None = None

    # --- pods ------------------------------------------------------------------------------------

    def _deliver(self, change: PodChange) -> None:
        uid = change.uid
        worker = self.workers.get(uid)
        if change.kind == "gone":
            if worker is not None:
                worker.request_stop("gone")
            return
        if worker is not None:
            worker.update(change.pod)
            return
        assert self._ctx is not None
        worker = PodWorker(self._ctx, change.pod, self._worker_done)
        self.workers[uid] = worker
        worker.begin()

    def _worker_done(self, worker: PodWorker) -> None:
        if self.workers.get(worker.uid) is worker:
            del self.workers[worker.uid]

    def lookup_logs(self, namespace: str, name: str, container: str, previous: bool) -> LogTarget:
        for worker in self.workers.values():
            if worker.key == (namespace, name):
                return worker.log_target(container, previous)
        raise LogLookupError(
            404, f'pod "{namespace}/{name}" not found on node {self.config.node_name}'
        )

    # --- start-up reconciliation -----------------------------------------------------------------

    async def _clean_orphan(self, directory: PodDir) -> None:
        for record in directory.processes().values():
            signal_group(record.pid, record.start_ticks, signal.SIGTERM)
        for record in directory.processes().values():
            process = adopt(record.pid, record.start_ticks)
            if process is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), ORPHAN_KILL_WAIT)
                process.kill()
        sandbox = directory.sandbox()
        if sandbox is not None:
            await self.sandboxes.destroy(sandbox, directory)
        directory.remove()

    async def reconcile(self, bound: set[str]) -> None:
        directories = {d.uid: d for d in pod_dirs(self.config.state_dir)}
        for uid in orphan_pods(sorted(directories), bound):
            log.info("cleaning up pod %s: no longer bound to this node", uid)
            await self._clean_orphan(directories.pop(uid))
        owned = set()
        for directory in directories.values():
            sandbox = directory.sandbox()
            if sandbox is not None:
                owned.add(sandbox.netns)
        keep = {self.config.netns} if self.config.netns else set()
        for name in stale_netns(netns.list_names(), self.config.pod_netns_prefix, owned, keep):
            log.info("removing stale pod netns %s", name)
            await netns.remove(name)

    # --- run -------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        config = self.config
        config.state_dir.mkdir(parents=True, exist_ok=True)
        config.state_dir.chmod(0o700)  # Secrets and tokens are written below it
        kubeconfig = load_kubeconfig(config.kubeconfig, config.state_dir / "kubeconfig-data")
        async with ApiClient(
            kubeconfig, user_agent=f"egressgw-node-runtime/{config.node_name}"
        ) as api:
            self._ctx = WorkerContext(
                config=config,
                api=api,
                sandboxes=self.sandboxes,
                events=EventRecorder(api, config.node_name),
                service_host=config.kubernetes_service_host or kubeconfig.host,
                service_port=config.kubernetes_service_port or kubeconfig.port,
                shutdown_grace=SHUTDOWN_GRACE,
            )
            registration = NodeRegistration(api, config, read_host_facts())
            if not await _retry("register node", registration.register, stop):
                return
            server = KubeletServer(
                self.lookup_logs,
                host=config.kubelet_bind_address,
                port=config.kubelet_port,
                cert=config.serving_cert,
                key=config.serving_key,
                client_ca=config.client_ca or kubeconfig.ca,
            )
            await server.start()
            watch = PodWatch(api, config.node_name, lambda change: None)
            if not await _retry("list pods", watch.list_once, stop):
                await server.stop()
                return
            await self.reconcile(set(watch.feed.pods))
            watch.deliver = self._deliver
            for pod in watch.feed.pods.values():
                self._deliver(PodChange("upsert", pod))
            log.info("node %s ready: %d pods bound", config.node_name, len(self.workers))
            tasks = [
                asyncio.create_task(registration.run(), name="heartbeat"),
                asyncio.create_task(watch.run(), name="pod watch"),
                asyncio.create_task(self._housekeeping(), name="housekeeping"),
            ]
            try:
                await stop.wait()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await self._stop_workers()
                await server.stop()

    async def _stop_workers(self) -> None:
        workers = list(self.workers.values())
        for worker in workers:
            worker.request_stop("shutdown")
        pending = [w.task for w in workers if w.task is not None]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            for worker in list(self.workers.values()):
                with contextlib.suppress(OSError):
                    worker.cap_logs()


async def _retry(what: str, step: Callable[[], Awaitable[None]], stop: asyncio.Event) -> bool:
    """Until `step` succeeds (True) or the runtime is asked to stop (False)."""
    delay = 0.5
    while not stop.is_set():
        try:
            await step()
            return True
        except ApiError as err:
            log.warning("%s: %s; retrying in %.1f s", what, err, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
    return False
