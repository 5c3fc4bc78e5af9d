"""A configuration named as long as Kubernetes allows (253 characters; label values hold 63)
through the whole `egressgw controller` process (watchers, workflows, activities) on the
session's API server and the ARM emulator: Ready, its key Secret labelled with a derived value
and annotated with the whole name, recreated when deleted (the Secret watcher finds the owner
through the annotation), and torn down with nothing left."""

from __future__ import annotations

import pytest
from kubernetes_asyncio.client import CoreV1Api

from contracts import kube_names, resource_names
from tests.fixtures.controller_stack import ControllerStack
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow

NAME = ("egress-" + "long" * 80)[:252] + "z"


async def test_a_253_character_name_provisions_and_goes(controller_stack: ControllerStack) -> None:
    stack = controller_stack
    assert len(NAME) == 253
    controller = await stack.start_controller()
    uid = await stack.create_sgc(NAME)

    ready = await stack.wait_ready(NAME, timeout=90)

    assert ready["status"]["egressIpPrefix"]
    core = CoreV1Api(stack.kube)
    secret_name = resource_names.gateway_secret_name(uid)
    secret = await core.read_namespaced_secret(secret_name, stack.secret_namespace)
    label = secret.metadata.labels[kube_names.SECRET_OWNER_NAME_LABEL]
    assert len(label) == 63 and label == resource_names.owner_name_label_value(NAME)
    assert secret.metadata.annotations[kube_names.SECRET_OWNER_NAME_ANNOTATION] == NAME

    # The Secret watcher maps a deleted key Secret back to its configuration by the annotation.
    await core.delete_namespaced_secret(secret_name, stack.secret_namespace)

    async def recreated() -> bool:
        return secret_name in await stack.key_secrets()

    await wait_for(recreated, 60, "the key Secret to be recreated")

    await stack.delete_sgc(NAME)
    await stack.wait_gone(NAME, timeout=90)
    assert await stack.key_secrets() == []
    assert stack.load_balancer() is None
    assert stack.prefix(uid) is None
    assert await controller.stop() == 0
