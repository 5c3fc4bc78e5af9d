"""What the CNI manager reports as it works, for its metrics: the manager's parts call an observer
(egressgw/cni_manager_metrics.py counts; `Unobserved` does nothing), so the node side never
imports the metrics library or the entry points."""

from __future__ import annotations

from typing import Final, Protocol

# kube-egress-gateway's operation label values.
CREATE_OR_UPDATE: Final = "create_or_update"
DELETE: Final = "delete"
INSTALL: Final = "install"
REGENERATE: Final = "regenerate"
UNINSTALL: Final = "uninstall"
OK: Final = "ok"  # a request's outcome when it succeeded; else its error code


class ManagerObserver(Protocol):
    def request_answered(self, method: str, outcome: str, seconds: float) -> None: ...

    def pod_endpoint_failed(self, namespace: str, operation: str, pod: str) -> None: ...

    def cni_config_failed(self, operation: str) -> None: ...

    def node_taint_failed(self, node: str) -> None: ...


class Unobserved:
    def request_answered(self, method: str, outcome: str, seconds: float) -> None:
        pass

    def pod_endpoint_failed(self, namespace: str, operation: str, pod: str) -> None:
        pass

    def cni_config_failed(self, operation: str) -> None:
        pass

    def node_taint_failed(self, node: str) -> None:
        pass
