"""The controller's Temporal worker: every workflow and every Azure, Kubernetes and Temporal
activity on one task queue, bound to the clients the process opened.

The aio ARM clients are built here with `retry_total=0`: retries belong to the workflows' retry
policies, which honour Azure's Retry-After through the classified errors; an SDK retrying inside
an activity would hide throttling from them and stall heartbeats.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Final

from azure.core.pipeline.policies import AsyncHTTPPolicy
from azure.core.rest import AsyncHttpResponse, HttpRequest
from kubernetes_asyncio.client import ApiClient
from temporalio.client import Client
from temporalio.worker import Worker

from activities.azure.catalog import azure_activities
from activities.kube.catalog import kube_activities
from activities.temporal.single_writers import SingleWriterActivities
from contracts.workflow_io import DEFAULT_BATCH_QUIET_SECONDS, DEFAULT_BATCH_WINDOW_SECONDS
from egressgw.azure_credential import ArmCredential, ManagementClients, make_management_clients
from egressgw.cloud_config import CloudConfig
from kubeclient.object_cache import ObjectCache
from workflows.registry import WORKFLOWS, workflow_runner

# Long enough for an ARM call in flight to finish and report; Kubernetes' default grace period
# (30 s) leaves room for the rest of the shutdown.
DEFAULT_GRACEFUL_SHUTDOWN: Final = timedelta(seconds=20)
DEFAULT_MAX_CACHED_WORKFLOWS: Final = 1000  # the SDK's default
# How a load balancer or pool workflow started by this worker collects requests before one Azure
# write: it waits until none arrived for the quiet period, at most the window. A longer quiet
# period batches more configurations created together, a shorter one is quicker to Ready.
DEFAULT_BATCH_WINDOW: Final = timedelta(seconds=DEFAULT_BATCH_WINDOW_SECONDS)
DEFAULT_BATCH_QUIET: Final = timedelta(seconds=DEFAULT_BATCH_QUIET_SECONDS)


def management_clients(
    config: CloudConfig,
    arm: ArmCredential,
    *,
    connection_verify: bool | str = True,
    observers: Sequence[AsyncHTTPPolicy[HttpRequest, AsyncHttpResponse]] = (),
) -> ManagementClients:
    """Network and compute aio clients for the cloud config's subscription, with no SDK retries;
    `observers` see every request (the ARM metrics)."""
    return make_management_clients(
        config, arm, connection_verify=connection_verify, retry_total=0, observers=observers
    )


def controller_activities(
    temporal: Client,
    task_queue: str,
    azure: ManagementClients,
    kube: ApiClient,
    batch_window: timedelta = DEFAULT_BATCH_WINDOW,
    batch_quiet: timedelta = DEFAULT_BATCH_QUIET,
    pod_endpoint_cache: ObjectCache | None = None,
) -> list[Callable[..., Any]]:
    single_writers = SingleWriterActivities(
        temporal,
        task_queue,
        batch_window_seconds=batch_window.total_seconds(),
        batch_quiet_seconds=batch_quiet.total_seconds(),
    )
    return [
        *azure_activities(azure.network, azure.compute),
        *kube_activities(kube, pod_endpoint_cache),
        *single_writers.activities(),
    ]


def controller_worker(
    temporal: Client,
    task_queue: str,
    azure: ManagementClients,
    kube: ApiClient,
    *,
    graceful_shutdown: timedelta = DEFAULT_GRACEFUL_SHUTDOWN,
    identity: str | None = None,
    max_cached_workflows: int = DEFAULT_MAX_CACHED_WORKFLOWS,
    batch_window: timedelta = DEFAULT_BATCH_WINDOW,
    batch_quiet: timedelta = DEFAULT_BATCH_QUIET,
    pod_endpoint_cache: ObjectCache | None = None,
) -> Worker:
    """`max_cached_workflows` bounds memory: each cached configuration workflow costs about
    1 MiB (bench/control_plane_memory.py); an evicted one is replayed from history when its
    drift timer or a delivery wakes it, which costs CPU instead."""
    return Worker(
        temporal,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        workflow_runner=workflow_runner(),
        activities=controller_activities(
            temporal, task_queue, azure, kube, batch_window, batch_quiet, pod_endpoint_cache
        ),
        graceful_shutdown_timeout=graceful_shutdown,
        identity=identity,
        max_cached_workflows=max_cached_workflows,
    )
