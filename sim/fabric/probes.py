"""The load balancer's health probes: what is probed, one probe, and the polling thread.

Probes are sent from the router namespace, as Azure's come from the platform rather than from a
peer node. A thread enters a namespace with setns(2) for itself only, so the probing threads do
that and the rest of the process stays where it is.
"""

from __future__ import annotations

import http.client
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pyroute2 import netns as pyroute2_netns

# Seconds; the probes egressgw creates have intervalInSeconds 5 and probeThreshold 1.
AZURE_PROBE_INTERVAL = 5.0
PROBE_TIMEOUT = 2.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeSpec:
    """A load balancer probe object: HTTP GET of `path` (200 = healthy) or a TCP connect."""

    protocol: str  # "http" or "tcp"
    port: int
    path: str = "/"


@dataclass(frozen=True)
class ProbeTarget:
    ip: str
    spec: ProbeSpec

    def __str__(self) -> str:
        if self.spec.protocol == "tcp":
            return f"tcp://{self.ip}:{self.spec.port}"
        return f"http://{self.ip}:{self.spec.port}{self.spec.path}"


def probe(target: ProbeTarget, timeout: float = PROBE_TIMEOUT) -> bool:
    """One probe from the calling thread's namespace; any failure is simply "down"."""
    try:
        if target.spec.protocol == "tcp":
            with socket.create_connection((target.ip, target.spec.port), timeout=timeout):
                return True
        conn = http.client.HTTPConnection(target.ip, target.spec.port, timeout=timeout)
        try:
            conn.request("GET", target.spec.path, headers={"User-Agent": "Load Balancer Agent"})
            return conn.getresponse().status == 200
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        return False


def _enter(netns: str) -> None:
    # flags=0: never create the namespace by accident (pyroute2's default is O_CREAT).
    pyroute2_netns.setns(netns, flags=0, fork=False)


def probe_all(
    netns: str, targets: Iterable[ProbeTarget], timeout: float = PROBE_TIMEOUT
) -> dict[ProbeTarget, bool]:
    """Probe every target at once from `netns`, each from its own short-lived thread."""
    results: dict[ProbeTarget, bool] = {}
    lock = threading.Lock()

    def run(target: ProbeTarget) -> None:
        try:
            _enter(netns)
            up = probe(target, timeout)
        except OSError:
            up = False  # the namespace is gone: nothing answers
        with lock:
            results[target] = up

    threads = [
        threading.Thread(target=run, args=(t,), name=f"probe {t}", daemon=True)
        for t in dict.fromkeys(targets)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


class Prober:
    """Polls the targets every `interval` seconds and hands each round's results over."""

    def __init__(
        self,
        netns: str,
        targets: Callable[[], Iterable[ProbeTarget]],
        on_results: Callable[[Mapping[ProbeTarget, bool]], None],
        interval: float = AZURE_PROBE_INTERVAL,
        timeout: float = PROBE_TIMEOUT,
    ) -> None:
        self._netns = netns
        self._targets = targets
        self._on_results = on_results
        self._interval = interval
        self._timeout = min(timeout, interval) if interval > 0 else timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fabric prober", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def _run(self) -> None:
        while not self._stop.is_set():
            results = probe_all(self._netns, self._targets(), self._timeout)
            if self._stop.is_set():
                return
            try:
                self._on_results(results)
            except (OSError, RuntimeError):
                # One bad round (e.g. nft refused a ruleset) must not end probing for the stack.
                log.exception("applying probe results failed")
            self.rounds += 1
            self._stop.wait(self._interval)
