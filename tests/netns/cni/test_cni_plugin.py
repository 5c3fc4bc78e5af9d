"""kube-egress-cni chained after the reference bridge + host-local plugins, against the running
CNI manager: pass-through for pods without the annotation, wg0 with the gateway peer and the
routes of each defaultRoute for annotated pods, the PodEndpoint, CHECK, DEL, GC and STATUS."""

from __future__ import annotations

import base64
import json
from typing import Any

from agent.cni import pod_wireguard
from agent.wireguard_keys import public_key_of
from contracts import kube_names
from tests.fixtures.cluster import KubeObjects
from tests.netns.cni.cni_env import (
    NODE_GATEWAY,
    PE_API,
    PE_KIND,
    WG_SOCKETS,
    CniNode,
    Pod,
    daemon_processes,
    in_netns,
    netns_snapshot,
    pod_object,
    present,
    route_get,
    succeeded,
)
from tests.netns.cni.conftest import GatewayKeys, PodFactory, SgcFactory

WG = kube_names.POD_WIREGUARD_INTERFACE


def daemon_of(pod: Pod) -> str:
    return pod_wireguard.daemon_name(pod.container_id, pod.ifname)


def wg_dump(pod: Pod) -> list[list[str]]:
    """`wg show <daemon> dump` (wireguard-tools reading wireguard-go's socket): an observer
    independent of the plugin's own UAPI code."""
    text = in_netns(pod.netns, "wg", "show", daemon_of(pod), "dump")
    return [line.split("\t") for line in text.splitlines()]


def device_private_key(pod: Pod) -> bytes:
    return base64.b64decode(wg_dump(pod)[0][0])


def assert_no_secret(private_key: bytes, *texts: str) -> None:
    encodings = (private_key.hex(), base64.b64encode(private_key).decode())
    for text in texts:
        for encoded in encodings:
            assert encoded not in text


async def test_a_pod_without_the_annotation_passes_through_untouched(
    cni_node: CniNode, kube: KubeObjects, pod_namespace: str, make_pod: PodFactory
) -> None:
    pod = await make_pod(pod_namespace, "plain", None)
    runs = await cni_node.run_chain("ADD", pod)
    assert [run.code for run in runs] == [0, 0], runs[-1].stdout
    bridge, ours = runs
    assert ours.document == bridge.document  # prevResult returned as it came
    assert WG not in netns_snapshot(pod.netns)["links"]
    assert present(await kube.get(PE_API, PE_KIND, "plain", pod_namespace)) is None
    assert not list(cni_node.state_dir.glob("*.json")) if cni_node.state_dir.exists() else True

    check = await cni_node.run_chain("CHECK", pod, prev_result=pod.result)
    assert [run.code for run in check] == [0, 0], check[-1].stdout
    deleted = await cni_node.run_chain("DEL", pod, prev_result=pod.result)
    assert [run.code for run in deleted] == [0, 0], deleted[0].stdout


async def test_an_annotated_pod_gets_wg0_to_its_gateway_and_a_default_route_through_it(
    cni_node: CniNode,
    kube: KubeObjects,
    pod_namespace: str,
    make_pod: PodFactory,
    make_sgc: SgcFactory,
    gateway_keys: GatewayKeys,
) -> None:
    sgc = await make_sgc(pod_namespace, "egress", excludeCidrs=["198.51.100.128/25"])
    created = succeeded(await kube.create(pod_object(pod_namespace, "app", "egress")))
    pod = await make_pod(pod_namespace, "app", "egress", create_object=False)
    runs = await cni_node.run_chain("ADD", pod)
    assert [run.code for run in runs] == [0, 0], runs[-1].stdout + runs[-1].stderr
    result = runs[-1].document
    assert result is not None
    assert {"name": WG, "sandbox": pod.netns_path} in result["interfaces"]

    # wg0: up, one peer: the gateway's key at the frontend IP and port, for everything.
    link = json.loads(in_netns(pod.netns, "ip", "-j", "link", "show", WG))[0]
    assert "UP" in link["flags"]
    _device, *peers = wg_dump(pod)
    assert len(peers) == 1
    peer_key, _psk, endpoint, allowed = peers[0][:4]
    assert peer_key == gateway_keys.public_key
    assert endpoint == "192.0.2.10:6001"
    assert allowed == "0.0.0.0/0"

    # The PodEndpoint: the pod's IP and the device's public key, owned by the Pod.
    endpoint_object = present(await kube.get(PE_API, PE_KIND, "app", pod_namespace))
    assert endpoint_object is not None
    private_key = device_private_key(pod)
    assert endpoint_object["spec"] == {
        "staticGatewayConfiguration": "egress",
        "podIpAddress": f"{pod.ip}/32",
        "podPublicKey": base64.b64encode(public_key_of(private_key)).decode(),
    }
    (owner,) = endpoint_object["metadata"]["ownerReferences"]
    assert owner["kind"] == "Pod" and owner["uid"] == created["metadata"]["uid"]
    assert owner["controller"] is True and owner["blockOwnerDeletion"] is True

    # Routes (staticEgressGateway): default via wg0; the frontend, cluster CIDRs, excludeCidrs
    # and exception CIDRs via the original gateway on eth0.
    assert route_get(pod.netns, "198.51.100.7")["dev"] == WG
    assert route_get(pod.netns, "8.8.8.8")["dev"] == WG
    for bypass in (
        "192.0.2.10",
        "10.96.0.10",
        "10.244.7.7",
        "198.51.100.200",
        "169.254.169.254",
        "169.254.10.11",
    ):
        route = route_get(pod.netns, bypass)
        assert (route["dev"], route.get("gateway")) == ("eth0", NODE_GATEWAY), bypass
    assert route_get(pod.netns, "10.244.1.1")["dev"] == "eth0"  # the pod subnet stays on-link
    # Replies of connections that came in by eth0 (mark 0x2222) leave by eth0.
    marked = route_get(pod.netns, "8.8.8.8", mark=kube_names.POD_INGRESS_MARK)
    assert (marked["dev"], marked.get("gateway")) == ("eth0", NODE_GATEWAY)

    check = await cni_node.run_chain("CHECK", pod, prev_result=pod.result)
    assert [run.code for run in check] == [0, 0], check[-1].stdout

    # No private key in the API objects, the logs, the state files or the conflist.
    sgc_now = present(await kube.get(PE_API, kube_names.SGC_KIND, "egress", pod_namespace))
    state_texts = [p.read_text() for p in cni_node.state_dir.glob("*")]
    assert_no_secret(
        private_key,
        json.dumps(endpoint_object),
        json.dumps(sgc_now),
        json.dumps(sgc),
        cni_node.manager_log.read_text(),
        cni_node.plugin_log.read_text(),
        cni_node.conflist_path.read_text(),
        *state_texts,
    )

    # DEL through the chain (ours first, then bridge's, which takes eth0 away): everything of
    # ours goes (test_del_restores_the_namespace_exactly compares the namespace itself).
    daemon = daemon_of(pod)
    assert daemon_processes(daemon)
    deleted = await cni_node.run_chain("DEL", pod, prev_result=pod.result)
    assert [run.code for run in deleted] == [0, 0], deleted[0].stdout
    after = netns_snapshot(pod.netns)
    assert WG not in after["links"] and daemon not in after["links"]
    assert not any('"protocol": "34"' in route for route in after["routes"])
    assert not any("8738" in rule for rule in after["rules"])
    assert "kube_egress_cni" not in after["nft"]
    assert not daemon_processes(daemon)
    assert not (WG_SOCKETS / f"{daemon}.sock").exists()
    assert present(await kube.get(PE_API, PE_KIND, "app", pod_namespace)) is None
    assert not list(cni_node.state_dir.glob("*.json"))

    # DEL again: nothing left to remove, still a success.
    again = await cni_node.run_chain("DEL", pod, prev_result=pod.result)
    assert [run.code for run in again] == [0, 0]
    pod.result = None


async def test_del_restores_the_namespace_exactly_and_add_twice_does_not_double(
    cni_node: CniNode, pod_namespace: str, make_pod: PodFactory, make_sgc: SgcFactory
) -> None:
    await make_sgc(pod_namespace, "egress")
    pod = await make_pod(pod_namespace, "exact", "egress")
    await cni_node.add_main_only(pod)
    before = netns_snapshot(pod.netns)
    conflist = cni_node.conflist()
    ours = conflist["plugins"][1]
    config = {**ours, "name": conflist["name"], "cniVersion": conflist["cniVersion"]}
    added = await cni_node.exec_plugin(
        "kube-egress-cni",
        cni_node.env("ADD", pod),
        json.dumps({**config, "prevResult": pod.result}).encode(),
    )
    assert added.code == 0, added.stdout
    assert netns_snapshot(pod.netns) != before
    # ADD again without DEL (a runtime retrying): the earlier attachment is replaced, not doubled.
    first_daemon = daemon_processes(daemon_of(pod))
    again = await cni_node.exec_plugin(
        "kube-egress-cni",
        cni_node.env("ADD", pod),
        json.dumps({**config, "prevResult": pod.result}).encode(),
    )
    assert again.code == 0, again.stdout
    assert len(daemon_processes(daemon_of(pod))) == 1
    assert daemon_processes(daemon_of(pod)) != first_daemon
    assert sum("8738" in rule for rule in netns_snapshot(pod.netns)["rules"]) == 1
    deleted = await cni_node.exec_plugin(
        "kube-egress-cni",
        cni_node.env("DEL", pod),
        json.dumps({**config, "prevResult": added.document}).encode(),
    )
    assert deleted.code == 0, deleted.stdout
    assert netns_snapshot(pod.netns) == before


async def test_azure_networking_sends_only_the_configured_prefixes_through_wg0(
    cni_node: CniNode,
    kube: KubeObjects,
    pod_namespace: str,
    make_pod: PodFactory,
    make_sgc: SgcFactory,
) -> None:
    await make_sgc(
        pod_namespace,
        "azure",
        defaultRoute="azureNetworking",
        # Also covers the frontend itself (192.0.2.10) and an exception CIDR (169.254.0.0/16):
        # neither may go through the tunnel.
        excludeCidrs=["198.51.100.0/24", "192.0.2.0/24", "169.254.0.0/16"],
    )
    pod = await make_pod(pod_namespace, "azpod", "azure")
    runs = await cni_node.run_chain("ADD", pod)
    assert [run.code for run in runs] == [0, 0], runs[-1].stdout + runs[-1].stderr

    for tunnelled in ("198.51.100.7", "192.0.2.77", "169.254.1.1"):
        assert route_get(pod.netns, tunnelled)["dev"] == WG, tunnelled
    for direct in ("8.8.8.8", "192.0.2.10", "169.254.169.254", "169.254.10.11", "10.96.0.10"):
        route = route_get(pod.netns, direct)
        assert (route["dev"], route.get("gateway")) == ("eth0", NODE_GATEWAY), direct
    check = await cni_node.run_chain("CHECK", pod, prev_result=pod.result)
    assert [run.code for run in check] == [0, 0], check[-1].stdout
    assert present(await kube.get(PE_API, PE_KIND, "azpod", pod_namespace)) is not None


async def test_check_reports_a_changed_pod(
    cni_node: CniNode,
    pod_namespace: str,
    make_pod: PodFactory,
    make_sgc: SgcFactory,
    gateway_keys: GatewayKeys,
) -> None:
    await make_sgc(pod_namespace, "egress")
    pod = await make_pod(pod_namespace, "drift", "egress")
    runs = await cni_node.run_chain("ADD", pod)
    assert runs[-1].code == 0, runs[-1].stdout

    # Something else in the pod removed the ingress return path's rule and wg0's peer.
    in_netns(pod.netns, "ip", "rule", "del", "fwmark", "0x2222", "lookup", "8738")
    in_netns(pod.netns, "wg", "set", daemon_of(pod), "peer", gateway_keys.public_key, "remove")
    check = await cni_node.run_chain("CHECK", pod, prev_result=pod.result)
    assert [run.code for run in check] == [0, 1], check[0].stdout
    error: dict[str, Any] = json.loads(check[-1].stdout)
    assert error["code"] == 107
    assert "rule fwmark 0x2222 lookup 8738 is missing" in error["msg"]
    assert f"only peer should be the gateway key {gateway_keys.public_key}" in error["msg"]


async def test_gc_removes_attachments_the_runtime_no_longer_lists(
    cni_node: CniNode,
    kube: KubeObjects,
    pod_namespace: str,
    make_pod: PodFactory,
    make_sgc: SgcFactory,
) -> None:
    await make_sgc(pod_namespace, "egress")
    kept = await make_pod(pod_namespace, "kept", "egress")
    gone = await make_pod(pod_namespace, "gone", "egress")
    for pod in (kept, gone):
        runs = await cni_node.run_chain("ADD", pod)
        assert runs[-1].code == 0, runs[-1].stdout

    conflist = cni_node.conflist()
    config = {
        **conflist["plugins"][1],
        "name": conflist["name"],
        "cniVersion": "1.1.0",
        "cni.dev/valid-attachments": [{"containerID": kept.container_id, "ifname": "eth0"}],
    }
    env = {
        k: v
        for k, v in cni_node.env("GC", kept).items()
        if k in ("CNI_COMMAND", "CNI_PATH", "PATH")
    }
    collected = await cni_node.exec_plugin("kube-egress-cni", env, json.dumps(config).encode())
    assert collected.code == 0, collected.stdout

    assert WG not in netns_snapshot(gone.netns)["links"]
    assert not daemon_processes(daemon_of(gone))
    assert present(await kube.get(PE_API, PE_KIND, "gone", pod_namespace)) is None
    assert WG in netns_snapshot(kept.netns)["links"]
    assert present(await kube.get(PE_API, PE_KIND, "kept", pod_namespace)) is not None

    status_config = {**config}
    del status_config["cni.dev/valid-attachments"]
    status = await cni_node.exec_plugin(
        "kube-egress-cni", {**env, "CNI_COMMAND": "STATUS"}, json.dumps(status_config).encode()
    )
    assert (status.code, status.stdout.strip()) == (0, "")


async def test_the_ipam_plugin_reports_the_main_interfaces_addresses(
    cni_node: CniNode, pod_namespace: str, make_pod: PodFactory
) -> None:
    pod = await make_pod(pod_namespace, "ipam", None)
    await cni_node.add_main_only(pod)
    config = {"cniVersion": "1.0.0", "name": "podnet", "type": "kube-egress-cni-ipam"}
    added = await cni_node.exec_plugin(
        "kube-egress-cni-ipam", cni_node.env("ADD", pod), json.dumps(config).encode()
    )
    assert added.code == 0, added.stdout
    document = added.document
    assert document is not None
    addresses = [ip["address"] for ip in document["ips"]]
    assert addresses[0] == f"{pod.ip}/24"
    assert all(a.startswith("fe80:") for a in addresses[1:])
    deleted = await cni_node.exec_plugin(
        "kube-egress-cni-ipam", cni_node.env("DEL", pod), json.dumps(config).encode()
    )
    assert (deleted.code, deleted.stdout) == (0, "")
