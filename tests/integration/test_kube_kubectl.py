"""kubectl (the pinned build, tests/fixtures/kube_binaries.py) against the emulator: apply, get
(tables), describe, edit, explain, delete."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sim.kube.server import KubeEmulator
from tests.fixtures.kube import widget_crd

pytestmark = pytest.mark.kubectl

WIDGET = """\
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w1
spec:
  size: {size}
{extra}"""


class Kubectl:
    def __init__(self, program: Path, kubeconfig: Path, workdir: Path) -> None:
        self.program = program
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.env = {**os.environ, "HOME": str(workdir), "KUBECACHEDIR": str(workdir / "cache")}

    def run(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.program), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**self.env, **(env or {})},
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def apply(
        self, text: str, name: str = "obj.yaml", check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        path = self.workdir / name
        path.write_text(text)
        return self.run("apply", "-f", str(path), check=check)


@pytest.fixture
def kubectl(
    kube_emulator: KubeEmulator, kubectl_path: Path, kubeconfig_path: Path, tmp_path: Path
) -> Kubectl:
    workdir = tmp_path / "kubectl"
    workdir.mkdir()
    tool = Kubectl(kubectl_path, kubeconfig_path, workdir)
    crds = workdir / "crds"
    crds.mkdir()
    (crds / "widgets.yaml").write_text(yaml.safe_dump(widget_crd()))
    applied = tool.run("apply", "-f", str(crds))
    assert "customresourcedefinition.apiextensions.k8s.io/widgets.example.com" in applied.stdout
    return tool


def test_apply_get_and_printer_columns(kubectl: Kubectl) -> None:
    assert "widget.example.com/w1 created" in kubectl.apply(WIDGET.format(size=3, extra="")).stdout
    table = kubectl.run("get", "widgets").stdout.splitlines()
    assert table[0].split() == ["NAME", "SIZE", "READY", "AGE"]
    name, size, age = table[1].split()  # READY is blank until status has a Ready condition
    assert (name, size) == ("w1", "3") and age.endswith("s")
    assert "configured" in kubectl.apply(WIDGET.format(size=4, extra="")).stdout
    assert (
        kubectl.run("get", "wd", "w1", "-o", "jsonpath={.spec.size}/{.metadata.generation}").stdout
        == "4/2"
    )
    unchanged = kubectl.apply(WIDGET.format(size=4, extra=""))
    assert "unchanged" in unchanged.stdout


def test_apply_rejects_unknown_fields_and_rule_violations(kubectl: Kubectl) -> None:
    unknown = kubectl.apply(WIDGET.format(size=1, extra="  bogus: 1\n"), check=False)
    assert unknown.returncode != 0 and 'unknown field "spec.bogus"' in unknown.stderr
    too_big = kubectl.apply(WIDGET.format(size=101, extra=""), check=False)
    assert too_big.returncode != 0
    assert (
        'The Widget "w1" is invalid: spec: Invalid value: "object": size 101 > 100'
        in too_big.stderr
    )
    bad_cidr = kubectl.apply(WIDGET.format(size=1, extra="  cidr: 10.0.0.0/33\n"), check=False)
    assert 'spec.cidr: Invalid value: "object": bad CIDR' in bad_cidr.stderr


def test_describe_shows_events(kubectl: Kubectl, kube_emulator: KubeEmulator) -> None:
    kubectl.apply(WIDGET.format(size=1, extra=""))
    uid = kubectl.run("get", "widget", "w1", "-o", "jsonpath={.metadata.uid}").stdout
    kube_emulator.create_sync(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "w1.1", "namespace": "default"},
            "involvedObject": {
                "apiVersion": "example.com/v1",
                "kind": "Widget",
                "name": "w1",
                "namespace": "default",
                "uid": uid,
            },
            "reason": "Provisioned",
            "message": "egress ready",
            "type": "Normal",
            "count": 1,
        }
    )
    described = kubectl.run("describe", "widget", "w1").stdout
    assert "Provisioned" in described and "egress ready" in described
    assert re.search(r"Size:\s+1\n", described)


def test_edit_through_an_editor(kubectl: Kubectl) -> None:
    kubectl.apply(WIDGET.format(size=1, extra=""))
    editor = kubectl.workdir / "editor.py"
    editor.write_text(
        "import sys, pathlib\n"
        "p = pathlib.Path(sys.argv[1])\n"
        "p.write_text(p.read_text().replace('size: 1', 'size: 6'))\n"
    )
    edited = kubectl.run("edit", "widget", "w1", env={"EDITOR": f"{sys.executable} {editor}"})
    assert "widget.example.com/w1 edited" in edited.stdout
    assert kubectl.run("get", "widget", "w1", "-o", "jsonpath={.spec.size}").stdout == "6"


def test_explain_uses_the_crd_schema(kubectl: Kubectl) -> None:
    explained = kubectl.run("explain", "widgets.spec").stdout
    assert "KIND:       Widget" in explained
    assert "size\t<integer> -required-" in explained
    assert "enum: fast, slow" in explained


def test_delete_and_core_tables(kubectl: Kubectl) -> None:
    kubectl.apply(WIDGET.format(size=1, extra=""))
    deleted = kubectl.run("delete", "widget", "w1")
    assert 'widget.example.com "w1" deleted' in deleted.stdout
    assert "No resources found" in kubectl.run("get", "widgets").stderr
    namespaces = kubectl.run("get", "namespaces").stdout.splitlines()
    assert namespaces[0].split() == ["NAME", "STATUS", "AGE"]
    assert any(line.split()[:2] == ["default", "Active"] for line in namespaces[1:])
    node = (
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n"
        "  labels:\n    node-role.kubernetes.io/gateway: ''\n"
    )
    kubectl.apply(node, name="node.yaml")
    nodes = kubectl.run("get", "nodes").stdout.splitlines()
    assert nodes[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert nodes[1].split()[:3] == ["n1", "Unknown", "gateway"]


def test_typed_create_commands_send_protobuf(kubectl: Kubectl) -> None:
    kubectl.run("create", "namespace", "team-a")
    kubectl.run("create", "configmap", "cm1", "-n", "team-a", "--from-literal=a=b")
    kubectl.run("create", "secret", "generic", "s1", "-n", "team-a", "--from-literal=k=v")
    data = kubectl.run("get", "secret", "s1", "-n", "team-a", "-o", "jsonpath={.data.k}").stdout
    assert base64.b64decode(data) == b"v"
    configmaps = kubectl.run("get", "configmaps", "-n", "team-a").stdout.splitlines()
    assert configmaps[0].split() == ["NAME", "DATA", "AGE"] and configmaps[1].split()[:2] == [
        "cm1",
        "1",
    ]
    kubectl.run("delete", "namespace", "team-a")
    assert "No resources found" in kubectl.run("get", "configmaps", "-n", "team-a").stderr
