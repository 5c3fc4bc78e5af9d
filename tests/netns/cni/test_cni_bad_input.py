"""Bad input to kube-egress-cni: every case is the spec's error object with the expected code and
a message that says what is wrong, and leaves the pod as the main plugin made it (no interface,
route, rule or nftables table), no wireguard-go process or socket, no attachment record and no
PodEndpoint behind.

Each case starts from a pod the reference bridge plugin has just set up (so prevResult is real),
annotated for a ready configuration unless the case arranges otherwise, and changes one thing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from agent.cni import pod_wireguard
from tests.fixtures.cluster import KubeObjects
from tests.netns.cni.cni_env import (
    PE_API,
    PE_KIND,
    SGC_KIND,
    WG_SOCKETS,
    CniNode,
    daemon_processes,
    netns_snapshot,
    present,
    sgc_object,
    succeeded,
)
from tests.netns.cni.conftest import PodFactory, SgcFactory

Env = dict[str, str]
Conf = dict[str, Any]
# (env, our plugin's network config with prevResult, node) -> (env, stdin)
Mutation = Callable[[Env, Conf, CniNode], tuple[Env, bytes]]
HOLD_FINALIZER = "test.egressgw.dev/hold"


def as_is(env: Env, conf: Conf, node: CniNode) -> tuple[Env, bytes]:
    return env, json.dumps(conf).encode()


def env_without(name: str) -> Mutation:
    def mutate(env: Env, conf: Conf, node: CniNode) -> tuple[Env, bytes]:
        return {k: v for k, v in env.items() if k != name}, json.dumps(conf).encode()

    return mutate


def env_with(name: str, value: str | Callable[[CniNode], str]) -> Mutation:
    def mutate(env: Env, conf: Conf, node: CniNode) -> tuple[Env, bytes]:
        chosen = value(node) if callable(value) else value
        return {**env, name: chosen}, json.dumps(conf).encode()

    return mutate


def stdin_is(raw: bytes) -> Mutation:
    return lambda env, conf, node: (env, raw)


def conf_with(**changes: Any) -> Mutation:
    """Set (or, with None, remove) keys of the network config."""

    def mutate(env: Env, conf: Conf, node: CniNode) -> tuple[Env, bytes]:
        changed = {**conf, **{k.replace("_", "-"): v for k, v in changes.items()}}
        return env, json.dumps({k: v for k, v in changed.items() if v is not None}).encode()

    return mutate


def prev_address(address: str) -> Mutation:
    def mutate(env: Env, conf: Conf, node: CniNode) -> tuple[Env, bytes]:
        prev = json.loads(json.dumps(conf["prevResult"]))
        prev["ips"][0]["address"] = address
        return env, json.dumps({**conf, "prevResult": prev}).encode()

    return mutate


def command(name: str, version: str, **changes: Any) -> Mutation:
    def mutate(env: Env, conf: Conf, node: CniNode) -> tuple[Env, bytes]:
        return (
            {**env, "CNI_COMMAND": name},
            json.dumps({**conf, "cniVersion": version, **changes}).encode(),
        )

    return mutate


def socket_nowhere(node: CniNode) -> str:
    return str(node.dir / "nobody-listens.sock")


def a_regular_file(node: CniNode) -> str:
    path = node.dir / "not-a-netns"
    path.write_text("")
    return str(path)


@dataclass(frozen=True)
class Case:
    id: str
    code: int
    message: str
    mutate: Mutation = as_is
    # What the API holds: the pod's annotation names "gw", a ready configuration, unless:
    arrange: str = "ready"


CASES = [
    Case("stdin-not-json", 6, "not JSON", stdin_is(b"{not json")),
    Case("stdin-not-an-object", 6, "not a JSON object", stdin_is(b'["cniVersion"]')),
    Case("stdin-empty", 6, "not JSON", stdin_is(b"")),
    Case("no-cni-command", 4, "CNI_COMMAND is not set", env_without("CNI_COMMAND")),
    Case("unknown-cni-command", 4, "unknown CNI_COMMAND 'FROB'", env_with("CNI_COMMAND", "FROB")),
    Case("no-container-id", 4, "ADD needs CNI_CONTAINERID", env_without("CNI_CONTAINERID")),
    Case("no-netns", 4, "ADD needs CNI_NETNS", env_without("CNI_NETNS")),
    Case("no-ifname", 4, "ADD needs CNI_IFNAME", env_without("CNI_IFNAME")),
    Case("bad-ifname", 4, "is not an interface name", env_with("CNI_IFNAME", "eth0/../x")),
    Case("no-cni-path", 4, "ADD needs CNI_PATH", env_without("CNI_PATH")),
    Case(
        "no-pod-in-cni-args",
        4,
        "CNI_ARGS lacks K8S_POD_NAMESPACE or K8S_POD_NAME",
        env_with("CNI_ARGS", "IgnoreUnknown=1"),
    ),
    Case("malformed-cni-args", 4, "is not KEY=VALUE", env_with("CNI_ARGS", "K8S_POD_NAME")),
    Case(
        "unsupported-version", 1, "cniVersion 0.2.0 is not supported", conf_with(cniVersion="0.2.0")
    ),
    Case("no-version", 7, "no cniVersion", conf_with(cniVersion=None)),
    Case("no-prev-result", 7, "prevResult is missing", conf_with(prevResult=None)),
    Case("bad-pod-ip", 7, "'10.244.1.300/24' is not an IP/prefix", prev_address("10.244.1.300/24")),
    Case("no-ipv4-address", 7, "no IPv4 address for eth0", prev_address("fd00::5/64")),
    Case("no-socket-path", 7, "socketPath is missing", conf_with(socketPath=None)),
    Case(
        "bad-exception-cidr",
        7,
        "excludedCIDRs: '169.254.1000.1/32' is not a CIDR",
        conf_with(excludedCIDRs=["169.254.1000.1/32"]),
    ),
    Case(
        "unknown-wireguard-backend",
        7,
        "wireguardBackend 'magic'",
        conf_with(wireguardBackend="magic"),
    ),
    Case(
        "netns-missing",
        3,
        "network namespace /var/run/netns/nonexistent-ns does not exist",
        env_with("CNI_NETNS", "/var/run/netns/nonexistent-ns"),
    ),
    Case(
        "netns-not-a-namespace",
        3,
        "is not a network namespace",
        env_with("CNI_NETNS", a_regular_file),
    ),
    Case("pod-missing", 103, "not found", arrange="no-pod"),
    Case(
        "configuration-unknown",
        101,
        "StaticGatewayConfiguration gw not found in namespace",
        arrange="no-sgc",
    ),
    Case(
        "configuration-in-another-namespace",
        101,
        "can only use a configuration of its own namespace",
        arrange="sgc-elsewhere",
    ),
    Case(
        "annotation-names-a-namespace",
        104,
        "names a configuration in another namespace",
        arrange="slash",
    ),
    Case("configuration-being-deleted", 102, "is being deleted", arrange="deleting"),
    Case("configuration-not-ready", 11, "is not ready yet", arrange="not-ready"),
    Case(
        "configuration-gateway-key-unusable",
        104,
        "gatewayServerProfile.publicKey is not base64",
        arrange="bad-gateway-key",
    ),
    Case(
        "manager-down",
        11,
        "the CNI manager is not running",
        lambda env, conf, node: conf_with(socketPath=socket_nowhere(node))(env, conf, node),
    ),
    Case(
        "wireguard-go-fails-after-the-podendpoint-was-written",
        106,
        "wireguard-go exited with status 1",
        conf_with(wireguardGo="/bin/false"),
    ),
    Case("check-before-0.4.0", 1, "CHECK needs cniVersion 0.4.0", command("CHECK", "0.3.1")),
    Case("gc-before-1.1.0", 1, "GC needs cniVersion 1.1.0", command("GC", "1.0.0")),
    Case(
        "status-with-the-manager-down",
        50,
        "the CNI manager is not running",
        lambda env, conf, node: command("STATUS", "1.1.0", socketPath=socket_nowhere(node))(
            env, conf, node
        ),
    ),
]


async def arrange(
    case: Case, kube: KubeObjects, namespace: str, other_namespace: str, make_sgc: SgcFactory
) -> str:
    """Make the API hold what the case needs; the pod's annotation value."""
    if case.arrange in ("ready", "no-pod"):
        await make_sgc(namespace, "gw")
    elif case.arrange == "sgc-elsewhere":
        await make_sgc(other_namespace, "gw")
    elif case.arrange == "slash":
        await make_sgc(other_namespace, "gw")
        return f"{other_namespace}/gw"
    elif case.arrange == "deleting":
        obj = sgc_object(namespace, "gw")
        obj["metadata"]["finalizers"] = [HOLD_FINALIZER]
        succeeded(await kube.create(obj))
        await kube.delete(PE_API, SGC_KIND, "gw", namespace)
    elif case.arrange == "not-ready":
        await make_sgc(namespace, "gw", ready=False)
    elif case.arrange == "bad-gateway-key":
        await make_sgc(namespace, "gw")
        succeeded(
            await kube.patch(
                PE_API,
                SGC_KIND,
                "gw",
                {"status": {"gatewayServerProfile": {"publicKey": "not base64!"}}},
                namespace,
                subresource="status",
            )
        )
    return "gw"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_bad_input_is_a_cni_error_that_leaves_nothing_behind(
    case: Case,
    cni_node: CniNode,
    kube: KubeObjects,
    pod_namespace: str,
    make_pod: PodFactory,
    make_sgc: SgcFactory,
) -> None:
    other_namespace = f"{pod_namespace}-o"
    succeeded(
        await kube.create(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other_namespace}}
        )
    )
    try:
        gateway = await arrange(case, kube, pod_namespace, other_namespace, make_sgc)
        pod = await make_pod(pod_namespace, "app", gateway, create_object=case.arrange != "no-pod")
        await cni_node.add_main_only(pod)
        before = netns_snapshot(pod.netns)
        conflist = cni_node.conflist()
        config = {
            **conflist["plugins"][1],
            "name": conflist["name"],
            "cniVersion": conflist["cniVersion"],
            "prevResult": pod.result,
        }
        env, stdin = case.mutate(cni_node.env("ADD", pod), config, cni_node)
        run = await cni_node.exec_plugin("kube-egress-cni", env, stdin)

        assert run.code != 0, run.stdout
        error = json.loads(run.stdout)
        assert set(error) <= {"cniVersion", "code", "msg", "details"}
        assert error["code"] == case.code, error
        assert case.message in error["msg"], error

        daemon = pod_wireguard.daemon_name(pod.container_id, pod.ifname)
        assert netns_snapshot(pod.netns) == before
        assert not daemon_processes(daemon)
        assert not (WG_SOCKETS / f"{daemon}.sock").exists()
        assert not list(cni_node.state_dir.glob(f"{pod.container_id}*"))
        assert present(await kube.get(PE_API, PE_KIND, "app", pod_namespace)) is None
    finally:
        if case.arrange == "deleting":
            await kube.patch(
                PE_API, SGC_KIND, "gw", {"metadata": {"finalizers": None}}, pod_namespace
            )
        await kube.delete("v1", "Namespace", other_namespace)


def test_there_are_at_least_twenty_cases() -> None:
    assert len(CASES) >= 20
    assert len({case.id for case in CASES}) == len(CASES)
