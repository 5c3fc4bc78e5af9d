"""The plugin's side of the manager's Unix socket (manager_api has the messages).

A manager that is not running (no socket, or nobody listening) or does not answer in time is
`ManagerUnavailable`: the runtime should try again later, since the manager is a DaemonSet pod
that may be starting.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from agent.cni import cni_protocol, manager_api
from agent.cni.cni_protocol import CniError, PodRef
from agent.cni.manager_api import (
    GatewayProfile,
    NicAddRequest,
    NicDelRequest,
    PodInfo,
    PodRequest,
)

DEFAULT_TIMEOUT_S = 15.0
T = TypeVar("T")
# The CNI error code for each kind of manager error.
KIND_CODES = {
    manager_api.UNAVAILABLE: cni_protocol.TRY_AGAIN_LATER,
    manager_api.NOT_READY: cni_protocol.TRY_AGAIN_LATER,
    manager_api.NOT_FOUND: cni_protocol.GATEWAY_NOT_FOUND,
    manager_api.DELETING: cni_protocol.GATEWAY_DELETING,
    manager_api.POD_NOT_FOUND: cni_protocol.POD_NOT_FOUND,
    manager_api.INVALID: cni_protocol.INVALID_POD_GATEWAY,
    manager_api.REFUSED: cni_protocol.MANAGER_REFUSED,
    manager_api.MISMATCH: cni_protocol.CHECK_FAILED,
    manager_api.INTERNAL: cni_protocol.MANAGER_REFUSED,
}


class ManagerUnavailable(Exception):
    pass


class ManagerClient:
    def __init__(self, socket_path: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.socket_path = socket_path
        self._timeout = timeout

    def _call(self, method: str, params: Mapping[str, Any]) -> Mapping[str, Any]:
        request = manager_api.encode_request(method, params)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self._timeout)
            try:
                sock.connect(self.socket_path)
            except (FileNotFoundError, ConnectionRefusedError) as err:
                raise ManagerUnavailable(
                    f"the CNI manager is not running (nothing listens on {self.socket_path}: "
                    f"{err.strerror})"
                ) from None
            except OSError as err:
                raise ManagerUnavailable(
                    f"cannot reach the CNI manager at {self.socket_path}: {err.strerror or err}"
                ) from None
            chunks: list[bytes] = []
            size = 0
            try:
                sock.sendall(request)
                sock.shutdown(socket.SHUT_WR)
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > manager_api.MAX_MESSAGE_BYTES:
                        break
            except TimeoutError:
                raise ManagerUnavailable(
                    f"the CNI manager did not answer {method} within {self._timeout:g} s"
                ) from None
            except OSError as err:
                raise ManagerUnavailable(
                    f"the CNI manager dropped {method}: {err.strerror or err}"
                ) from None
        reply = b"".join(chunks)
        if not reply:
            raise ManagerUnavailable("the CNI manager closed the connection without answering")
        return manager_api.decode_reply(reply)

    def pod_retrieve(self, pod: PodRef) -> PodInfo:
        return PodInfo.from_json(self._call(manager_api.POD_RETRIEVE, PodRequest(pod).to_json()))

    def nic_add(self, request: NicAddRequest) -> GatewayProfile:
        return GatewayProfile.from_json(self._call(manager_api.NIC_ADD, request.to_json()))

    def nic_check(self, request: NicAddRequest) -> GatewayProfile:
        return GatewayProfile.from_json(self._call(manager_api.NIC_CHECK, request.to_json()))

    def nic_del(self, request: NicDelRequest) -> None:
        self._call(manager_api.NIC_DEL, request.to_json())

    def status(self) -> None:
        self._call(manager_api.STATUS, {})


def ask(
    call: Callable[[Any], T], argument: Any, *, on_unavailable: Callable[[], None] | None = None
) -> T:
    """A manager call, its failures as CNI errors: a manager that cannot be reached is "try
    again later" (code 11), its answers map by kind (KIND_CODES)."""
    try:
        return call(argument)
    except ManagerUnavailable as err:
        if on_unavailable is not None:
            on_unavailable()
        raise CniError(
            cni_protocol.TRY_AGAIN_LATER, str(err), "try again once the CNI manager runs"
        ) from None
    except manager_api.ManagerError as err:
        code = KIND_CODES.get(err.kind, cni_protocol.MANAGER_REFUSED)
        raise CniError(code, err.message) from None
