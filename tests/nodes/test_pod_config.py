"""What a pod's process sees: env from the downward API, Secrets and ConfigMaps, ConfigMap and
Secret volumes, and a projected ServiceAccount token that authenticates as the pod's
ServiceAccount (checked with a SelfSubjectReview through the real API server)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.fixtures.cluster import KubeObjects
from tests.fixtures.node_runtime import NodeRuntimes, wait_for
from tests.fixtures.pods import (
    pod_manifest,
    run,
    running_with_ip,
    wait_default_service_account,
    wait_pod,
)

TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def field(path: str) -> dict[str, object]:
    return {"valueFrom": {"fieldRef": {"fieldPath": path}}}


async def test_env_volumes_and_service_account_token(
    node_runtimes: NodeRuntimes, kube: KubeObjects, kube_namespace: str, tmp_path: Path
) -> None:
    node = await node_runtimes.start()
    await wait_default_service_account(kube, kube_namespace)
    ns = kube_namespace
    await kube.create(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app", "namespace": ns}}
    )
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": ns},
            "data": {"greeting": "hello", "MODE": "fast"},
        }
    )
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds", "namespace": ns},
            "data": {"password": base64.b64encode(b"s3cret").decode()},
        }
    )
    out, mnt = tmp_path / "out", tmp_path / "mnt"
    out.mkdir()
    script = (
        f"env > {mnt}/out/env; cat {TOKEN} > {mnt}/out/token; "
        f"cat {mnt}/cfg/greeting > {mnt}/out/greeting; cat {mnt}/creds/password > {mnt}/out/pw; "
        "sleep 3600"
    )
    env = [
        {"name": "MY_POD", **field("metadata.name")},
        {"name": "MY_NAMESPACE", **field("metadata.namespace")},
        {"name": "MY_UID", **field("metadata.uid")},
        {"name": "MY_APP", **field("metadata.labels['app']")},
        {"name": "MY_NOTE", **field("metadata.annotations['note']")},
        {"name": "MY_NODE", **field("spec.nodeName")},
        {"name": "MY_SA", **field("spec.serviceAccountName")},
        {"name": "MY_IP", **field("status.podIP")},
        {"name": "MY_HOST_IP", **field("status.hostIP")},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
        {
            "name": "GREETING",
            "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}},
        },
        {"name": "URL", "value": "http://$(MY_IP):8080"},
    ]
    manifest = pod_manifest(
        "config",
        ns,
        node.name,
        script,
        serviceAccountName="app",
        volumes=[
            {"name": "out", "hostPath": {"path": str(out), "type": "Directory"}},
            {"name": "cfg", "configMap": {"name": "settings"}},
            {"name": "creds", "secret": {"secretName": "creds"}},
        ],
        container={
            "env": env,
            "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
            "volumeMounts": [
                {"name": "out", "mountPath": f"{mnt}/out"},
                {"name": "cfg", "mountPath": f"{mnt}/cfg", "readOnly": True},
                {"name": "creds", "mountPath": f"{mnt}/creds", "readOnly": True},
            ],
        },
    )
    manifest["metadata"]["labels"] = {"app": "shop"}
    manifest["metadata"]["annotations"] = {"note": "hi"}
    await kube.create(manifest)
    pod = await wait_pod(kube, ns, "config", running_with_ip)

    async def written() -> bool:
        return all(
            (out / name).exists() and (out / name).read_text() for name in ("env", "token", "pw")
        )

    await wait_for(written, 30, "the pod to write what it sees")
    seen = dict(
        line.split("=", 1) for line in (out / "env").read_text().splitlines() if "=" in line
    )
    assert seen["MY_POD"] == "config"
    assert seen["MY_NAMESPACE"] == ns
    assert seen["MY_UID"] == pod["metadata"]["uid"]
    assert (seen["MY_APP"], seen["MY_NOTE"]) == ("shop", "hi")
    assert seen["MY_NODE"] == node.name
    assert seen["MY_SA"] == "app"
    assert seen["MY_IP"] == pod["status"]["podIP"]
    assert seen["MY_HOST_IP"] == node.spec.internal_ip
    assert (seen["PASSWORD"], seen["GREETING"], seen["CFG_MODE"]) == ("s3cret", "hello", "fast")
    assert seen["URL"] == f"http://{pod['status']['podIP']}:8080"
    assert seen["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert ".venv/bin" in seen["PATH"].split(":")[0]
    assert (out / "greeting").read_text() == "hello"
    assert (out / "pw").read_text() == "s3cret"

    empty = tmp_path / "empty.kubeconfig"
    empty.write_text("apiVersion: v1\nkind: Config\n")
    cluster = node_runtimes.cluster
    review = json.loads(
        await run(
            str(cluster.kubectl),
            "--kubeconfig",
            str(empty),
            "--server",
            cluster.server,
            "--certificate-authority",
            str(cluster.ca),
            "--token",
            (out / "token").read_text().strip(),
            "auth",
            "whoami",
            "-o",
            "json",
        )
    )
    user = review["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{ns}:app"
    assert user["extra"]["authentication.kubernetes.io/pod-name"] == ["config"]
    assert user["extra"]["authentication.kubernetes.io/node-name"] == [node.name]
