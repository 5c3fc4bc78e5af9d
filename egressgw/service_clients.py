"""Connections both long-running processes (controller and agent) open: Temporal and the
Kubernetes API. Kept free of the Azure SDK so the agent starts without importing it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import kubernetes_asyncio
from kubernetes_asyncio.client import ApiClient
from temporalio.client import Client, Interceptor
from temporalio.runtime import Runtime
from temporalio.service import RPCError, TLSConfig

from egressgw.temporal_connection import TemporalConnection

log = logging.getLogger(__name__)

KUBECONFIG_VARIABLE: Final = "KUBECONFIG"


async def kube_api_client(
    kubeconfig: Path | None, environ: Mapping[str, str] | None = None
) -> ApiClient:
    """From `kubeconfig`; without one, as controller-runtime's Go controllers look: the files
    `$KUBECONFIG` names (one, or several separated by ':', merged as kubectl merges them), then
    the in-cluster configuration, then ~/.kube/config."""
    if kubeconfig is not None:
        return await kubernetes_asyncio.config.new_client_from_config(config_file=str(kubeconfig))
    listed = (os.environ if environ is None else environ).get(KUBECONFIG_VARIABLE, "")
    if listed:
        return await kubernetes_asyncio.config.new_client_from_config(config_file=listed)
    configuration = kubernetes_asyncio.client.Configuration()
    try:
        kubernetes_asyncio.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except kubernetes_asyncio.config.ConfigException:
        return await kubernetes_asyncio.config.new_client_from_config()
    return ApiClient(configuration)


def _tls(connection: TemporalConnection) -> TLSConfig | bool:
    tls = connection.tls
    if tls is None:
        return False  # also with an API key: TLS was switched off on purpose
    return TLSConfig(
        server_root_ca_cert=tls.server_ca,
        domain=tls.server_name,
        client_cert=tls.client_cert,
        client_private_key=tls.client_key,
    )


async def connect_temporal_once(connection: TemporalConnection) -> Client:
    """One attempt, for commands that report an unreachable server instead of waiting for it
    (`egressgw status`); raises what `Client.connect` raises."""
    return await Client.connect(
        connection.address,
        namespace=connection.namespace,
        tls=_tls(connection),
        api_key=connection.api_key,
    )


async def connect_temporal(
    connection: TemporalConnection,
    stop: asyncio.Event,
    *,
    max_wait: float = 5.0,
    runtime: Runtime | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client | None:
    """Connect, retrying with backoff until the server answers; None if asked to stop first.
    The settings were checked before (egressgw/temporal_connection.py): what is retried here is
    a server that is not reachable yet.

    `runtime`: the one whose metrics the process serves (egressgw/temporal_metrics.py);
    `interceptors`: tracing (egressgw/tracing.py). Workers built from the client get both."""
    delay = 0.2
    while not stop.is_set():
        try:
            return await Client.connect(
                connection.address,
                namespace=connection.namespace,
                tls=_tls(connection),
                api_key=connection.api_key,
                runtime=runtime,
                interceptors=interceptors,
            )
        except (RPCError, RuntimeError, OSError) as err:
            log.warning("Temporal at %s not reachable yet: %s", connection.describe(), err)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        delay = min(delay * 2, max_wait)
    return None
