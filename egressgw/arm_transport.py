"""The HTTP transport of the aio ARM clients: azure-core's aiohttp transport without aiohttp's
silent second send of a PUT or DELETE whose connection dropped.

aiohttp sends an idempotent request (HTTP counts PUT and DELETE as idempotent) once more when the
connection closes before the answer arrives. For ARM that is a blind re-send: the first write may
have been accepted and its operation be running, and the copy then meets 409
AnotherOperationInProgress (or 412, its If-Match now stale). Without it the activity sees the
connection error, and its retry reads the resource first and waits for a running operation
(activities/azure/long_operations.py). Reads lose the same silent retry; Temporal's retry of the
activity covers them.
"""

from __future__ import annotations

from azure.core.pipeline.transport import AioHttpTransport


class ArmTransport(AioHttpTransport):  # type: ignore[misc]  # azure-core ships it untyped
    async def open(self) -> None:
        await super().open()
        if self.session is not None:
            # aiohttp has no public switch; its own test client sets the same attribute.
            self.session._retry_connection = False


def arm_transport(connection_verify: bool | str = True) -> ArmTransport:
    """A transport for one client (each client closes its own); `connection_verify` as the
    clients take it (True, False or a CA bundle's path)."""
    return ArmTransport(connection_verify=connection_verify)
