"""How `egressgw controller` reads its flags: durations as upstream's Go flags write them, the
health address, the secret namespace from the pod's environment, the scope from a cloud config,
the kubeconfig from $KUBECONFIG."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from kubernetes_asyncio.client import CoreV1Api

from egressgw import cli
from egressgw.cloud_config import parse_cloud_config
from egressgw.controller import azure_scope, controller_settings
from egressgw.controller_flags import parse_duration, resolve_secret_namespace
from egressgw.listen_address import ListenAddress, parse_listen_address
from egressgw.service_clients import kube_api_client
from tests.fixtures.cluster import Cluster


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5m", timedelta(minutes=5)),
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("2.5s", timedelta(seconds=2.5)),
        ("300", timedelta(seconds=300)),
    ],
)
def test_durations_read_like_go_flags(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "5 m", "m5", "5m3", "-5m", "5d"])
def test_other_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("flags", "seconds"),
    [((), 10), (("--node-answer-timeout", "4s"), 4), (("--node-start-timeout", "1m"), 60)],
)
def test_the_node_answer_timeout_reads_its_0_1_0_name_too(
    flags: tuple[str, ...], seconds: int
) -> None:
    args = cli._parser().parse_args(["controller", *flags])
    node_answer_timeout = parse_duration(args.node_answer_timeout)
    settings = controller_settings(
        parse_cloud_config(CLOUD_CONFIG, "azure.json", {}).config,
        "egressgw-system",
        timedelta(minutes=5),
        node_answer_timeout=node_answer_timeout,
    )
    assert settings.node_answer_timeout_seconds == seconds


def test_health_address_forms() -> None:
    assert parse_listen_address(":8081") == ListenAddress("0.0.0.0", 8081)
    assert parse_listen_address("127.0.0.1:9000") == ListenAddress("127.0.0.1", 9000)
    assert parse_listen_address("[::1]:9000") == ListenAddress("::1", 9000)
    assert parse_listen_address("off") is None
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen_address("localhost")


def test_secret_namespace_comes_from_the_flag_then_the_pod() -> None:
    assert resolve_secret_namespace("flagged", {"MY_POD_NAMESPACE": "pod"}) == "flagged"
    assert resolve_secret_namespace("", {"MY_POD_NAMESPACE": "pod"}) == "pod"
    with pytest.raises(ValueError, match="MY_POD_NAMESPACE"):
        resolve_secret_namespace("", {})


CLOUD_CONFIG = """{
    "cloud": "AzurePublicCloud", "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "subscriptionId": "9e2f1a3c-4b5d-4e6f-8a7b-1c2d3e4f5a6b",
    "aadClientId": "00000000-0000-0000-0000-00000000c11e", "aadClientSecret": "x",
    "location": "westeurope",
    "resourceGroup": "rg", "vnetName": "vnet", "subnetName": "gw"
}"""


def test_scope_defaults_resource_groups_to_the_clusters() -> None:
    config = parse_cloud_config(CLOUD_CONFIG, "azure.json", {}).config

    scope = azure_scope(config)

    assert (scope.load_balancer_resource_group, scope.vnet_resource_group) == ("rg", "rg")
    assert scope.load_balancer_name == "kubeegressgateway-ilb"
    assert scope.subscription_id == "9e2f1a3c-4b5d-4e6f-8a7b-1c2d3e4f5a6b"
    assert (scope.vnet_name, scope.subnet_name) == ("vnet", "gw")


async def test_kubeconfig_comes_from_the_kubeconfig_variable_like_kubectls(
    kube_cluster: Cluster, tmp_path: Path
) -> None:
    """$KUBECONFIG may list several files (missing ones are skipped), as kubectl reads it."""
    listed = f"{tmp_path / 'missing'}:{kube_cluster.admin_kubeconfig}"

    api = await kube_api_client(None, {"KUBECONFIG": listed})
    async with api:
        namespaces = await CoreV1Api(api).list_namespace()

    assert "default" in {ns.metadata.name for ns in namespaces.items}
