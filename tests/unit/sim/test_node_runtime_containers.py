"""How the node runtime configures a container: environment, command, volumes, mounts."""

from __future__ import annotations

import base64
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from sim.node_runtime.container_env import (
    ContainerConfigError,
    ContainerCreateError,
    PodFacts,
    command_line,
    container_environment,
    expand,
)
from sim.node_runtime.launch_spec import Mount, host_view, launch_spec, resolve_command
from sim.node_runtime.pod_objects import ObjectRef, ObjectStore, referenced_objects
from sim.node_runtime.pod_volumes import (
    FileEntry,
    check_volumes,
    container_mounts,
    token_sources,
    volume_files,
)
from sim.node_runtime.quantity import QuantityError, parse_quantity, resource_field_value
from sim.node_runtime.volume_files import write_volume

FACTS = PodFacts(
    node_name="node-a", host_ip="10.224.0.4", pod_ip="10.244.1.5", allocatable={"cpu": "2"}
)


def pod(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "u-1",
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"note": 'say "hi"'},
        },
        "spec": {"nodeName": "node-a", "serviceAccountName": "sa", **spec},
    }


def store() -> ObjectStore:
    s = ObjectStore()
    s.add(ObjectRef("ConfigMap", "cfg"), {"data": {"MODE": "fast", "bad key": "x"}})
    s.add(
        ObjectRef("Secret", "creds"),
        {"data": {"PASSWORD": base64.b64encode(b"s3cret").decode()}},
    )
    return s


def test_expansion_follows_kubernetes() -> None:
    env = {"A": "1", "B": "two"}
    assert expand("$(A)-$(B)", env) == "1-two"
    assert expand("$(MISSING)", env) == "$(MISSING)"
    assert expand("$$(A)", env) == "$(A)"
    assert expand("$(A", env) == "$(A"
    assert expand("cost: $5", env) == "cost: $5"


def test_environment_from_every_source() -> None:
    container = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "env": [
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "PASSWORD"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "MODE"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "URL", "value": "http://$(IP):8080"},
        ],
    }
    env = container_environment(
        pod(containers=[container]), container, store(), FACTS, {"PATH": "/bin"}
    )
    assert env["CFG_MODE"] == "fast"
    assert "CFG_bad key" not in env
    assert (env["POD"], env["NS"], env["APP"], env["NODE"], env["SA"]) == (
        "web",
        "shop",
        "web",
        "node-a",
        "sa",
    )
    assert (env["IP"], env["HOST"], env["PW"], env["MODE"]) == (
        "10.244.1.5",
        "10.224.0.4",
        "s3cret",
        "fast",
    )
    assert env["CPU"] == "2"  # no limit: the node's allocatable
    assert env["URL"] == "http://10.244.1.5:8080"
    assert env["PATH"] == "/bin"


def test_missing_references_are_config_errors_unless_optional() -> None:
    missing = {"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}
    with pytest.raises(ContainerConfigError, match='secret "nope" not found'):
        container_environment(pod(), {"name": "c", "env": [missing]}, store(), FACTS, {})
    optional = {
        "name": "X",
        "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}},
    }
    assert "X" not in container_environment(
        pod(), {"name": "c", "env": [optional]}, store(), FACTS, {}
    )
    no_key = {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nokey"}}}
    with pytest.raises(ContainerConfigError, match="nokey"):
        container_environment(pod(), {"name": "c", "env": [no_key]}, store(), FACTS, {})
    field = {"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}
    with pytest.raises(ContainerConfigError, match=r"spec\.bogus"):
        container_environment(pod(), {"name": "c", "env": [field]}, store(), FACTS, {})


def test_command_and_args() -> None:
    env = {"WHO": "world"}
    assert command_line({"command": ["echo"], "args": ["hi $(WHO)"]}, env) == ["echo", "hi world"]
    assert command_line({"args": ["sleep", "5"]}, env) == ["sleep", "5"]
    with pytest.raises(ContainerCreateError, match="no command"):
        command_line({"name": "c"}, env)


def test_quantities() -> None:
    assert parse_quantity("500m") == Fraction(1, 2)
    assert parse_quantity("1Gi") == 2**30
    assert parse_quantity("1.5k") == 1500
    assert parse_quantity("2e3") == 2000
    with pytest.raises(QuantityError):
        parse_quantity("12xb")
    assert resource_field_value("limits.memory", {}, {"memory": "1Gi"}, {}, "1Mi") == "1024"
    assert resource_field_value("requests.cpu", {"cpu": "250m"}, {}, {}, "1m") == "250"
    assert resource_field_value("requests.cpu", {"cpu": "250m"}, {}, {}, None) == "1"


def test_referenced_objects_cover_env_and_volumes() -> None:
    p = pod(
        containers=[{"name": "c", "envFrom": [{"secretRef": {"name": "s1"}}]}],
        volumes=[
            {"name": "v", "configMap": {"name": "cm1"}},
            {"name": "p", "projected": {"sources": [{"secret": {"name": "s2"}}]}},
        ],
    )
    assert referenced_objects(p) == [
        ObjectRef("ConfigMap", "cm1"),
        ObjectRef("Secret", "s1"),
        ObjectRef("Secret", "s2"),
    ]


def test_unsupported_volume_types_are_named() -> None:
    with pytest.raises(ContainerConfigError, match='unsupported volume type "nfs"'):
        check_volumes(pod(volumes=[{"name": "data", "nfs": {"server": "s", "path": "/"}}]))
    with pytest.raises(ContainerConfigError, match="clusterTrustBundle"):
        check_volumes(
            pod(volumes=[{"name": "b", "projected": {"sources": [{"clusterTrustBundle": {}}]}}])
        )
    check_volumes(
        pod(volumes=[{"name": "e", "emptyDir": {}}, {"name": "h", "hostPath": {"path": "/tmp"}}])
    )


def test_projected_volume_files() -> None:
    volume = {
        "name": "kube-api-access",
        "projected": {
            "defaultMode": 0o444,
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                {"configMap": {"name": "cfg", "items": [{"key": "MODE", "path": "mode"}]}},
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}},
                            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                        ]
                    }
                },
            ],
        },
    }
    p = pod(volumes=[volume])
    [source] = token_sources(p)
    assert (source.key, source.expiration_seconds, source.path) == (
        "kube-api-access/0",
        3607,
        "token",
    )
    files = volume_files(p, volume, store(), {source.key: "TOKEN"}, FACTS)
    assert files == [
        FileEntry("token", b"TOKEN", 0o444),
        FileEntry("mode", b"fast", 0o444),
        FileEntry("namespace", b"shop", 0o444),
        FileEntry("labels", b'app="web"\ntier="front"\n', 0o444),
    ]


def test_secret_volume_and_escaping_paths() -> None:
    volume = {"name": "s", "secret": {"secretName": "creds"}}
    assert volume_files(pod(), volume, store(), {}, FACTS) == [
        FileEntry("PASSWORD", b"s3cret", 0o644)
    ]
    with pytest.raises(ContainerConfigError, match='secret "gone" not found'):
        volume_files(pod(), {"name": "s", "secret": {"secretName": "gone"}}, store(), {}, FACTS)
    assert (
        volume_files(
            pod(),
            {"name": "s", "secret": {"secretName": "gone", "optional": True}},
            store(),
            {},
            FACTS,
        )
        == []
    )
    escape = {"name": "c", "configMap": {"name": "cfg", "items": [{"key": "MODE", "path": "../x"}]}}
    with pytest.raises(ContainerConfigError, match="invalid path"):
        volume_files(pod(), escape, store(), {}, FACTS)


def test_mounts_name_existing_volumes() -> None:
    p = pod(volumes=[{"name": "cfg", "configMap": {"name": "cfg"}}])
    mounts = container_mounts(
        p, {"volumeMounts": [{"name": "cfg", "mountPath": "/etc/app/", "readOnly": True}]}
    )
    assert [(m.volume, m.target, m.read_only) for m in mounts] == [("cfg", "/etc/app", True)]
    with pytest.raises(ContainerConfigError, match='volume "other" not found'):
        container_mounts(p, {"volumeMounts": [{"name": "other", "mountPath": "/x"}]})


def test_commands_are_found_through_the_containers_mounts(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    mounts = [Mount(str(tmp_path), "/scripts", True)]
    assert host_view("/scripts/run.sh", mounts) == str(script)
    assert resolve_command("/scripts/run.sh", "", "/", mounts) == str(script)
    assert resolve_command("run.sh", "/scripts", "/", mounts) == str(script)
    assert resolve_command("sh", os.environ.get("PATH", "/bin"), "/", []) is not None
    assert resolve_command("no-such-command-xyz", "/bin:/usr/bin", "/", []) is None


def test_launch_spec_refuses_a_missing_command(tmp_path: Path) -> None:
    container = {"name": "c", "command": ["no-such-command-xyz"]}
    with pytest.raises(ContainerCreateError, match="executable file not found"):
        launch_spec(pod(), container, store(), FACTS, {"PATH": "/bin"}, {}, None)
    ok = launch_spec(
        pod(volumes=[{"name": "d", "emptyDir": {}}]),
        {
            "name": "c",
            "command": ["sh", "-c", "true"],
            "volumeMounts": [{"name": "d", "mountPath": "/data"}],
        },
        store(),
        FACTS,
        {"PATH": "/usr/bin:/bin"},
        {"d": tmp_path},
        "/var/run/netns/x",
    )
    assert ok.mounts == [Mount(str(tmp_path), "/data", False)]
    assert ok.netns == "/var/run/netns/x"


def test_volume_files_swap_atomically(tmp_path: Path) -> None:
    assert write_volume(
        tmp_path, [FileEntry("token", b"one", 0o600), FileEntry("a/b", b"x", 0o644)]
    )
    assert (tmp_path / "token").read_bytes() == b"one"
    assert (tmp_path / "a" / "b").read_bytes() == b"x"
    assert (tmp_path / "token").is_symlink()
    assert not write_volume(
        tmp_path, [FileEntry("token", b"one", 0o600), FileEntry("a/b", b"x", 0o644)]
    )
    assert write_volume(tmp_path, [FileEntry("token", b"two", 0o600)])
    assert (tmp_path / "token").read_bytes() == b"two"
    assert not (tmp_path / "a").exists()
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("..2")]) == 1
