"""`egressgw cni-manager`: the pod side's node-local process (docs/pod-side.md), one per regular
node, hostNetwork.

Parts: the Unix socket the plugin calls (agent/cni/manager_server.py over nic_service.py), and the
node installer (agent/cni/node_install.py: launchers in the CNI bin dir, our conflist, the
not-ready taint). The socket listens first, so a pod the runtime starts as soon as the conflist
appears finds the manager there. SIGTERM or SIGINT: the socket closes, then our conflist is
removed if the uninstall ConfigMap asks for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Final

from agent.cni.manager_events import ManagerObserver
from agent.cni.manager_server import ManagerServer
from agent.cni.nic_service import NicService
from agent.cni.node_install import NodeInstaller
from egressgw.cni_manager_flags import CniManagerOptions
from egressgw.cni_manager_metrics import CniManagerMetrics
from egressgw.process_telemetry import ProcessTelemetry
from egressgw.service_clients import kube_api_client

log = logging.getLogger(__name__)

CNI_MANAGER_SERVICE: Final = "egressgw-cni-manager"  # service.name of its spans


async def run_cni_manager(options: CniManagerOptions) -> int:
    settings = options.settings
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    metrics = CniManagerMetrics() if options.metrics is not None else None
    telemetry = ProcessTelemetry(options.metrics, metrics.registry if metrics else None)
    await telemetry.start(
        options.tracing, CNI_MANAGER_SERVICE, {"k8s.node.name": settings.node_name}
    )
    try:
        return await _serve(options, stop, metrics)
    finally:
        await telemetry.stop()


async def _serve(
    options: CniManagerOptions, stop: asyncio.Event, observer: ManagerObserver | None
) -> int:
    settings = options.settings
    api = await kube_api_client(options.kubeconfig)
    async with api:
        server = ManagerServer(NicService(api, observer), settings.socket_path, observer)
        await server.start()
        installer = NodeInstaller(settings, api, observer=observer)
        installed = asyncio.Event()
        upkeep = asyncio.create_task(installer.run(stop, installed), name="node-install")
        stopping = asyncio.create_task(stop.wait(), name="stop")
        try:
            await asyncio.wait({upkeep, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.set()
            await server.stop()
            stopping.cancel()
        failed = upkeep.done() and not upkeep.cancelled() and upkeep.exception() is not None
        if failed:
            log.error("keeping the node's CNI installation failed", exc_info=upkeep.exception())
        else:
            with contextlib.suppress(asyncio.CancelledError):
                await upkeep
        await installer.uninstall_if_requested()
    log.info("CNI manager stopped")
    return 1 if failed else 0
