"""`egressgw controller`: the watchers and the Temporal worker in one process.

Several replicas may run at once without leader election: the watchers derive workflow IDs from
the objects, so duplicate deliveries collapse into one workflow per configuration, and Temporal
hands each task to one worker.

Start-up: load the cloud config (its warnings are logged), connect to Temporal (retried until it
answers, so the controller may start before the server), build the Azure credential and aio ARM
clients, the Kubernetes client, the worker and the watchers. SIGTERM or SIGINT stop the watchers,
then the worker (in-flight activities get `graceful_shutdown` to finish), then close the clients.
Nothing secret is logged: the cloud config's secrets are masked types and only the chosen
credential method is announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Final

from temporalio.worker import Worker

from contracts import resource_names
from contracts.azure_state import AzureScope
from contracts.workflow_io import ControllerSettings
from egressgw.arm_metrics import ArmRequestMetrics
from egressgw.azure_credential import (
    ManagementClients,
    build_async_credential,
    resolve_cloud_environment,
)
from egressgw.cloud_config import CloudConfig, LoadedCloudConfig, load_cloud_config
from egressgw.controller_flags import DEFAULT_CLOUD_CONFIG, resolve_secret_namespace
from egressgw.controller_metrics import controller_telemetry
from egressgw.listen_address import ListenAddress
from egressgw.service_clients import connect_temporal, kube_api_client
from egressgw.telemetry import HealthServer
from egressgw.temporal_connection import (
    DEFAULT_TEMPORAL_ADDRESS,
    TemporalConnection,
    TemporalTls,
)
from egressgw.tracing import TracingSettings
from egressgw.worker import (
    DEFAULT_BATCH_QUIET,
    DEFAULT_BATCH_WINDOW,
    DEFAULT_GRACEFUL_SHUTDOWN,
    DEFAULT_MAX_CACHED_WORKFLOWS,
    controller_worker,
    management_clients,
)
from kubeclient.object_cache import ObjectCache
from watchers.supervisor import Watchers

log = logging.getLogger(__name__)

DEFAULT_DRIFT_CHECK: Final = timedelta(minutes=5)
# The longest a configuration goes without a full peer sync (ControllerSettings.peer_sync_seconds).
DEFAULT_PEER_SYNC: Final = timedelta(minutes=5)
CONTROLLER_SERVICE: Final = "egressgw-controller"  # service.name of its spans


class ControllerError(ValueError):
    """A start-up problem worded for the operator (a flag naming a missing file, ...); a
    ValueError like every other unusable flag value."""


# How long a node's agent gets to pick up its work before the node is reported (not waited for).
DEFAULT_NODE_ANSWER_TIMEOUT: Final = timedelta(seconds=10)


def azure_scope(config: CloudConfig) -> AzureScope:
    """Where the controller works, from the cloud config; empty resource groups default to the
    cluster's, as upstream's config does."""
    return AzureScope(
        subscription_id=config.subscription_id,
        location=config.location,
        resource_group=config.resource_group,
        load_balancer_resource_group=config.load_balancer_resource_group or config.resource_group,
        load_balancer_name=config.load_balancer_name,
        vnet_resource_group=config.vnet_resource_group or config.resource_group,
        vnet_name=config.vnet_name,
        subnet_name=config.subnet_name,
    )


def controller_settings(
    config: CloudConfig,
    secret_namespace: str,
    drift_check: timedelta,
    task_queue: str = resource_names.CONTROLLER_TASK_QUEUE,
    *,
    configure_nodes: bool = True,
    node_answer_timeout: timedelta = DEFAULT_NODE_ANSWER_TIMEOUT,
    peer_sync: timedelta = DEFAULT_PEER_SYNC,
) -> ControllerSettings:
    seconds = max(1, round(drift_check.total_seconds()))
    return ControllerSettings(
        scope=azure_scope(config),
        secret_namespace=secret_namespace,
        drift_check_seconds=seconds,
        task_queue=task_queue,
        configure_nodes=configure_nodes,
        node_answer_timeout_seconds=max(1, round(node_answer_timeout.total_seconds())),
        peer_sync_seconds=max(1, round(peer_sync.total_seconds())),
    )


@dataclass(frozen=True)
class ControllerOptions:
    cloud_config: Path = DEFAULT_CLOUD_CONFIG
    kubeconfig: Path | None = None  # None: $KUBECONFIG, in-cluster, ~/.kube/config
    temporal_address: str = DEFAULT_TEMPORAL_ADDRESS
    temporal_namespace: str = "default"
    temporal_tls: TemporalTls | None = None  # None: plaintext
    temporal_api_key: str | None = field(default=None, repr=False)
    secret_namespace: str = ""
    azure_ca_file: Path | None = None
    drift_check: timedelta = DEFAULT_DRIFT_CHECK
    task_queue: str = resource_names.CONTROLLER_TASK_QUEUE
    health: ListenAddress | None = None
    metrics: ListenAddress | None = None  # /metrics (egressgw/controller_metrics.py)
    tracing: TracingSettings | None = None  # from the OTEL_* variables (egressgw/tracing.py)
    graceful_shutdown: timedelta = DEFAULT_GRACEFUL_SHUTDOWN
    identity: str | None = None  # Temporal worker identity; the SDK's default is pid@host
    max_cached_workflows: int = DEFAULT_MAX_CACHED_WORKFLOWS
    batch_window: timedelta = DEFAULT_BATCH_WINDOW
    batch_quiet: timedelta = DEFAULT_BATCH_QUIET
    configure_nodes: bool = True  # False: Azure and status only, no node agents asked
    node_answer_timeout: timedelta = DEFAULT_NODE_ANSWER_TIMEOUT
    peer_sync: timedelta = DEFAULT_PEER_SYNC

    @property
    def temporal(self) -> TemporalConnection:
        return TemporalConnection(
            self.temporal_address,
            self.temporal_namespace,
            self.temporal_tls,
            self.temporal_api_key,
        )


@contextlib.asynccontextmanager
async def _azure_clients(
    config: CloudConfig, ca_file: Path | None, observer: ArmRequestMetrics | None
) -> AsyncIterator[ManagementClients]:
    verify: bool | str = str(ca_file) if ca_file is not None else True
    cloud = await resolve_cloud_environment(config, connection_verify=verify)
    arm = build_async_credential(config, cloud, connection_verify=verify)
    async with arm.credential:
        clients = management_clients(
            config, arm, connection_verify=verify, observers=[observer] if observer else []
        )
        async with clients:
            yield clients


class Controller:
    """One controller process's parts, started and stopped in order."""

    def __init__(
        self, options: ControllerOptions, cloud_config: LoadedCloudConfig | None = None
    ) -> None:
        """`cloud_config`: already loaded (the CLI loads it before the heavy imports, so that a
        bad file is reported at once); else loaded from `options.cloud_config` on run."""
        self.options = options
        self._loaded = cloud_config
        self._ready_problem: str | None = "starting"
        # What traces and the worker call this process (the SDK's default identity).
        self.instance = options.identity or f"{os.getpid()}@{socket.gethostname()}"

    def readiness(self) -> str | None:
        return self._ready_problem

    async def run(self, stop: asyncio.Event) -> int:
        options = self.options
        for flag, path in (
            ("--azure-ca-file", options.azure_ca_file),
            ("--kubeconfig", options.kubeconfig),
        ):
            if path is not None and not path.is_file():
                raise ControllerError(f"{flag} {path} is not a file")
        loaded = self._loaded or load_cloud_config(options.cloud_config, environ=dict(os.environ))
        settings = controller_settings(
            loaded.config,
            resolve_secret_namespace(options.secret_namespace, dict(os.environ)),
            options.drift_check,
            options.task_queue,
            configure_nodes=options.configure_nodes,
            node_answer_timeout=options.node_answer_timeout,
            peer_sync=options.peer_sync,
        )
        health = HealthServer(options.health, self.readiness) if options.health else None
        if health is not None:
            await health.start()
            log.info("health endpoints on port %d: /healthz, /readyz", health.port)
        telemetry, arm_metrics = controller_telemetry(options.metrics)
        try:
            await telemetry.start(
                options.tracing, CONTROLLER_SERVICE, {"service.instance.id": self.instance}
            )
            self._ready_problem = "connecting to Temporal"
            temporal = await connect_temporal(
                options.temporal,
                stop,
                runtime=telemetry.runtime,
                interceptors=telemetry.interceptors,
            )
            if temporal is None:
                return 0
            log.info("connected to Temporal at %s", options.temporal.describe())
            async with _azure_clients(loaded.config, options.azure_ca_file, arm_metrics) as azure:
                kube = await kube_api_client(options.kubeconfig)
                # The PodEndpoint watch fills it; the peer passes read it (no list per pass).
                pod_endpoints = ObjectCache()
                try:
                    worker = controller_worker(
                        temporal,
                        options.task_queue,
                        azure,
                        kube,
                        graceful_shutdown=options.graceful_shutdown,
                        identity=options.identity,
                        max_cached_workflows=options.max_cached_workflows,
                        batch_window=options.batch_window,
                        batch_quiet=options.batch_quiet,
                        pod_endpoint_cache=pod_endpoints,
                    )
                    watchers = Watchers(kube, temporal, settings, pod_endpoint_cache=pod_endpoints)
                    return await self._serve(worker, watchers, stop)
                finally:
                    await kube.close()
        finally:
            await telemetry.stop()
            if health is not None:
                await health.stop()

    async def _serve(self, worker: Worker, watchers: Watchers, stop: asyncio.Event) -> int:
        worker_task = asyncio.create_task(worker.run(), name="temporal worker")
        stop_task = asyncio.create_task(stop.wait(), name="stop requested")
        await watchers.start()
        self._ready_problem = None
        log.info(
            "controller running: task queue %s, drift check every %s, peer sync at least every %s",
            self.options.task_queue,
            self.options.drift_check,
            self.options.peer_sync,
        )
        exit_code = 0
        try:
            done, _ = await asyncio.wait(
                {worker_task, stop_task}, return_when=asyncio.FIRST_COMPLETED
            )
            if worker_task in done:
                error = worker_task.exception()
                log.error("the Temporal worker stopped: %s", error or "without an error")
                exit_code = 1
            else:
                log.info("stopping: watchers, then the worker (in-flight activities may finish)")
        finally:
            self._ready_problem = "stopping"
            stop_task.cancel()
            await watchers.stop()
            if not worker_task.done():
                await worker.shutdown()
                with contextlib.suppress(Exception):
                    await worker_task
        log.info("controller stopped")
        return exit_code


async def run_controller(
    options: ControllerOptions, cloud_config: LoadedCloudConfig | None = None
) -> int:
    """Run until SIGTERM/SIGINT; the process's exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await Controller(options, cloud_config).run(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
