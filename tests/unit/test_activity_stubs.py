"""The typed stubs workflows call (workflows/activity_stubs.py) stand for exactly the activities
the workers register: the same names, input types and result types. A stub that drifted from its
implementation would type-check the workflow against the wrong contract."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient
from temporalio import activity

from agent.node_activities import NodeActivities
from egressgw.azure_credential import ManagementClients
from egressgw.worker import controller_activities
from workflows import activity_stubs


def _name(fn: Callable[..., Any]) -> str:
    definition = activity._Definition.from_callable(fn)
    assert definition is not None and definition.name is not None
    return definition.name


def _signature(fn: Callable[..., Any]) -> tuple[list[Any], Any]:
    """Parameter types (without self) and result type, resolved."""
    hints = typing.get_type_hints(fn)
    params = [hints[name] for name in inspect.signature(fn).parameters]
    return params, hints["return"]


async def _registered() -> dict[str, Callable[..., Any]]:
    async with ApiClient() as kube:
        controller = controller_activities(
            temporal=None,  # type: ignore[arg-type]  # only bound here, never called
            task_queue="egressgw",
            azure=ManagementClients(network=None, compute=None),  # type: ignore[arg-type]
            kube=kube,
        )
    node = NodeActivities("node-0", dataplane=None, keys=None, probe=None, status=None)  # type: ignore[arg-type]
    return {_name(fn): fn for fn in (*controller, *node.activities())}


async def test_every_stub_has_an_implementation_with_its_signature() -> None:
    registered = await _registered()
    for stub in (*activity_stubs.CONTROLLER_STUBS, *activity_stubs.NODE_STUBS):
        name = _name(stub)
        assert name in registered, f"no worker registers {name}"
        assert _signature(registered[name]) == _signature(stub), name


async def test_every_registered_activity_has_a_stub() -> None:
    stubbed = {_name(s) for s in (*activity_stubs.CONTROLLER_STUBS, *activity_stubs.NODE_STUBS)}
    assert set(await _registered()) == stubbed


async def test_a_stub_never_runs() -> None:
    with pytest.raises(NotImplementedError, match="stub"):
        await activity_stubs.list_gateway_peers(None)  # type: ignore[arg-type]
