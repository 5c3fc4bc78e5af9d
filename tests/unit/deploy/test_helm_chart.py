"""The Helm chart as an operator installs it: `helm lint` is clean, the defaults and
representative values render the components the way the install guide describes (gateway agents
on the labelled and tainted gateway nodes, CNI managers on the others, two controllers), the
rendered processes' flags are ones `egressgw` accepts, the Temporal TLS / API key settings reach
the processes as files and environment (never as argument values), the cloud config Secret is
one the controller can load, and RBAC and CRDs are deploy/'s own.

RBAC has one source of truth, deploy/rbac/*.yaml: it is what the dev stack and the tests run the
components with, so a missing permission fails a test there. The chart cannot read files outside
its directory once packaged, so its templates write the rules out and this test holds them equal.
The CRDs are copies of deploy/crds/ for the same reason, held byte-equal here.
"""

from __future__ import annotations

import base64
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts import kube_names
from egressgw.cli import _parser
from egressgw.cloud_config import parse_cloud_config
from tests.fixtures.helm_chart import CHART, REPO, Rendered, helm, render

CONTROLLER, AGENT, CNI_MANAGER = "egressgw-controller", "egressgw-agent", "egressgw-cni-manager"
GATEWAY_LABEL = "kubeegressgateway.azure.com/mode"


def pod_spec(rendered: Rendered, kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = rendered.get(kind, name)["spec"]["template"]["spec"]
    return spec


def project_version() -> str:
    with (REPO / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def test_helm_lint_is_clean(helm_path: Path) -> None:
    done = helm(helm_path, "lint", "--strict", str(CHART))

    assert done.returncode == 0, done.stdout + done.stderr
    assert "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout, done.stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


def test_the_defaults_render_every_component(helm_path: Path, tmp_path: Path) -> None:
    rendered = render(helm_path, tmp_path)

    assert rendered.stderr == ""
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in rendered.objects)
    assert kinds == sorted(
        [
            ("ServiceAccount", CONTROLLER),
            ("ServiceAccount", AGENT),
            ("ServiceAccount", CNI_MANAGER),
            ("ClusterRole", CONTROLLER),
            ("ClusterRole", AGENT),
            ("ClusterRole", CNI_MANAGER),
            ("ClusterRoleBinding", CONTROLLER),
            ("ClusterRoleBinding", AGENT),
            ("ClusterRoleBinding", CNI_MANAGER),
            ("Role", CONTROLLER),
            ("Role", AGENT),
            ("Role", CNI_MANAGER),
            ("RoleBinding", CONTROLLER),
            ("RoleBinding", AGENT),
            ("RoleBinding", CNI_MANAGER),
            ("Secret", "egressgw-azure-cloud-config"),
            ("ConfigMap", "cni-uninstall"),
            ("Deployment", CONTROLLER),
            ("PodDisruptionBudget", CONTROLLER),
            ("DaemonSet", AGENT),
            ("DaemonSet", CNI_MANAGER),
        ]
    )
    namespaced = [o for o in rendered.objects if "Cluster" not in o["kind"]]
    assert {o["metadata"].get("namespace") for o in namespaced} == {"egressgw-system"}


def test_two_controllers_without_leader_election(helm_path: Path, tmp_path: Path) -> None:
    rendered = render(helm_path, tmp_path)
    deployment = rendered.get("Deployment", CONTROLLER)
    controller = rendered.container("Deployment", CONTROLLER)
    pod = pod_spec(rendered, "Deployment", CONTROLLER)

    assert deployment["spec"]["replicas"] == 2
    assert not any("leader" in arg for arg in controller["args"])
    assert controller["command"] == ["egressgw", "controller"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert controller["securityContext"]["readOnlyRootFilesystem"] is True
    assert controller["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert controller["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert rendered.get("PodDisruptionBudget", CONTROLLER)["spec"]["maxUnavailable"] == 1


def test_gateway_agents_run_on_gateway_nodes_with_the_network_capabilities(
    helm_path: Path, tmp_path: Path
) -> None:
    rendered = render(helm_path, tmp_path)
    daemonset = rendered.get("DaemonSet", AGENT)
    pod = pod_spec(rendered, "DaemonSet", AGENT)
    agent = rendered.container("DaemonSet", AGENT)

    assert pod["nodeSelector"] == {GATEWAY_LABEL: "true"}
    assert {
        "key": GATEWAY_LABEL,
        "operator": "Equal",
        "value": "true",
        "effect": "NoSchedule",
    } in pod["tolerations"]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"  # Temporal's service name resolves
    assert daemonset["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] == 1
    assert "NET_ADMIN" in agent["securityContext"]["capabilities"]["add"]
    assert agent["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert agent.get("securityContext", {}).get("privileged") is not True
    assert agent["command"] == ["egressgw", "agent"]
    assert "--probe-port=8082" in agent["args"]
    assert {"name": "lb-probe", "containerPort": 8082, "protocol": "TCP"} in agent["ports"]
    init = pod["initContainers"][0]
    assert init["volumeMounts"][0]["mountPropagation"] == "Bidirectional"
    assert init["command"][-1] == "ns-static-egress-gateway"
    # wireguard-go's UAPI sockets are the pod's own, never another agent's on the same node.
    assert {"name": "wireguard-run", "mountPath": "/var/run/wireguard"} in agent["volumeMounts"]
    assert {"name": "wireguard-run", "emptyDir": {}} in pod["volumes"]


def test_cni_managers_run_on_the_other_nodes_and_own_the_cni_dirs(
    helm_path: Path, tmp_path: Path
) -> None:
    rendered = render(helm_path, tmp_path)
    pod = pod_spec(rendered, "DaemonSet", CNI_MANAGER)
    manager = rendered.container("DaemonSet", CNI_MANAGER)

    # Only the taint it removes itself: the gateway taint keeps it off gateway nodes.
    assert pod["tolerations"] == [
        {"key": kube_names.CNI_NOT_READY_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
    ]
    (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert term["matchExpressions"] == [
        {"key": GATEWAY_LABEL, "operator": "NotIn", "values": ["true"]}
    ]
    assert pod["hostNetwork"] is True
    host_paths = {v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert {"/etc/cni/net.d", "/opt/cni/bin", "/opt/egressgw"} <= host_paths
    assert manager["command"] == ["egressgw", "cni-manager"]
    assert "--cni-conf-file=01-egressgateway.conflist" in manager["args"]
    assert "--exception-cidrs=169.254.169.254/32,169.254.10.11/32" in manager["args"]
    config_map = rendered.get("ConfigMap", "cni-uninstall")
    assert config_map["data"] == {"uninstall": "false"}


def test_every_rendered_command_is_one_egressgw_accepts(helm_path: Path, tmp_path: Path) -> None:
    """The flags in the templates are parsed by the CLI itself, so a renamed or misspelt flag
    fails here instead of in a crash-looping pod."""
    rendered = render(helm_path, tmp_path, representative_values(tmp_path))
    parser = _parser()
    workloads = (("Deployment", CONTROLLER), ("DaemonSet", AGENT), ("DaemonSet", CNI_MANAGER))
    for kind, name in workloads:
        container = rendered.container(kind, name)
        assert container["command"][0] == "egressgw"
        parsed = parser.parse_args([*container["command"][1:], *container["args"]])
        assert parsed.command == container["command"][1]


def test_images_are_the_dockerfiles_under_the_configured_repository(
    helm_path: Path, tmp_path: Path
) -> None:
    default = render(helm_path, tmp_path)
    custom = render(
        helm_path,
        tmp_path,
        {
            "common": {"imageRepository": "myregistry.azurecr.io/egress", "imageTag": "0.1.0-rc1"},
            "gatewayCNIManager": {"imageRepository": "other.example:5000/x", "imageTag": "t"},
        },
    )
    dockerfile = (REPO / "Dockerfile").read_text()

    images = {
        c["image"]
        for kind in ("Deployment", "DaemonSet")
        for o in default.of_kind(kind)
        for c in o["spec"]["template"]["spec"]["containers"]
        + o["spec"]["template"]["spec"].get("initContainers", [])
    }
    assert images == {f"local/egressgw:{project_version()}"}
    assert 'ENTRYPOINT ["egressgw"]' in dockerfile
    assert "docker build -t <registry>/egressgw:" in dockerfile
    assert custom.container("Deployment", CONTROLLER)["image"] == (
        "myregistry.azurecr.io/egress/egressgw:0.1.0-rc1"
    )
    assert custom.container("DaemonSet", CNI_MANAGER)["image"] == "other.example:5000/x/egressgw:t"


@pytest.mark.parametrize(
    ("component", "rbac_file"),
    [(CONTROLLER, "controller.yaml"), (AGENT, "agent.yaml"), (CNI_MANAGER, "cni-manager.yaml")],
)
def test_rbac_rules_are_deploy_rbacs(
    helm_path: Path, tmp_path: Path, component: str, rbac_file: str
) -> None:
    rendered = render(helm_path, tmp_path)
    source = {
        d["kind"]: d["rules"]
        for d in yaml.safe_load_all((REPO / "deploy" / "rbac" / rbac_file).read_text())
        if d
    }

    assert rendered.get("ClusterRole", component)["rules"] == source["ClusterRole"]
    assert rendered.get("Role", component)["rules"] == source["Role"]
    for binding_kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        binding = rendered.get(binding_kind, component)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role_kind,
            "name": component,
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": component, "namespace": "egressgw-system"}
        ]
    kind = "Deployment" if component == CONTROLLER else "DaemonSet"
    assert pod_spec(rendered, kind, component)["serviceAccountName"] == component


def test_the_charts_crds_are_deploy_crds() -> None:
    source = {p.name: p.read_bytes() for p in (REPO / "deploy" / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}

    assert chart == source, "copy deploy/crds/*.yaml into deploy/helm/egressgw/crds/"


def representative_values(tmp_path: Path) -> dict[str, Any]:
    """An AKS install with a service principal, a self-hosted Temporal with mTLS and an API key."""
    return {
        "common": {"imageRepository": "myregistry.azurecr.io", "imageTag": "0.1.0"},
        "temporal": {
            "address": "temporal-frontend.temporal.svc:7233",
            "namespace": "egress",
            "tls": {
                "serverName": "frontend.temporal",
                "caSecret": {"name": "temporal-ca"},
                "clientSecret": {"name": "egressgw-temporal-client"},
            },
            "apiKeySecret": {"name": "temporal-api-key", "key": "key"},
        },
        "config": {
            "azureCloudConfig": {
                "cloud": "AzurePublicCloud",
                "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "subscriptionId": "9e2f1a3c-4b5d-4e6f-8a7b-1c2d3e4f5a6b",
                "useManagedIdentityExtension": False,
                "aadClientId": "00000000-0000-0000-0000-00000000c11e",
                "aadClientSecret": "sp-secret-value",
                "resourceGroup": "MC_rg_cluster_westeurope",
                "location": "westeurope",
                "vnetName": "aks-vnet",
                "subnetName": "gateway-subnet",
            }
        },
        "gatewayCNIManager": {
            "clusterCidrs": ["10.244.0.0/16", "10.0.0.0/16"],
            "exceptionCidrs": ["169.254.169.254/32"],
            "cniUninstall": True,
        },
        "gatewayDaemonManager": {"wireguardBackend": "wireguard-go"},
    }


def test_the_cloud_config_secret_is_one_the_controller_loads(
    helm_path: Path, tmp_path: Path
) -> None:
    rendered = render(helm_path, tmp_path, representative_values(tmp_path))
    secret = rendered.get("Secret", "egressgw-azure-cloud-config")
    text = base64.b64decode(secret["data"]["azure-cloud-config.json"]).decode()

    loaded = parse_cloud_config(text, "azure-cloud-config.json", {})

    assert loaded.config.subscription_id == "9e2f1a3c-4b5d-4e6f-8a7b-1c2d3e4f5a6b"
    assert loaded.config.location == "westeurope"
    assert loaded.config.aad_client_secret.reveal() == "sp-secret-value"
    assert loaded.config.load_balancer_name == "kubeegressgateway-ilb"
    controller = rendered.container("Deployment", CONTROLLER)
    assert "--cloud-config=/etc/egressgw/azure/azure-cloud-config.json" in controller["args"]
    volume = next(
        v
        for v in pod_spec(rendered, "Deployment", CONTROLLER)["volumes"]
        if v["name"] == "azure-cloud-config"
    )
    assert volume["secret"]["secretName"] == "egressgw-azure-cloud-config"
    assert "sp-secret-value" not in json.dumps(rendered.get("Deployment", CONTROLLER))


def test_an_existing_cloud_config_secret_replaces_the_values(
    helm_path: Path, tmp_path: Path
) -> None:
    rendered = render(helm_path, tmp_path, {"config": {"existingSecret": "my-azure-json"}})

    assert rendered.of_kind("Secret") == []
    volume = next(
        v
        for v in pod_spec(rendered, "Deployment", CONTROLLER)["volumes"]
        if v["name"] == "azure-cloud-config"
    )
    assert volume["secret"]["secretName"] == "my-azure-json"


def test_temporal_tls_and_api_key_reach_the_workers_as_files_and_environment(
    helm_path: Path, tmp_path: Path
) -> None:
    rendered = render(helm_path, tmp_path, representative_values(tmp_path))

    for kind, name in (("Deployment", CONTROLLER), ("DaemonSet", AGENT)):
        container = rendered.container(kind, name)
        pod = pod_spec(rendered, kind, name)
        assert {
            "--temporal-address=temporal-frontend.temporal.svc:7233",
            "--temporal-namespace=egress",
            "--temporal-tls",
            "--temporal-tls-server-name=frontend.temporal",
            "--temporal-tls-ca-file=/etc/egressgw/temporal/ca.crt",
            "--temporal-tls-cert-file=/etc/egressgw/temporal/tls.crt",
            "--temporal-tls-key-file=/etc/egressgw/temporal/tls.key",
        } <= set(container["args"]), name
        assert {
            "name": "TEMPORAL_API_KEY",
            "valueFrom": {"secretKeyRef": {"name": "temporal-api-key", "key": "key"}},
        } in container["env"]
        mount = next(m for m in container["volumeMounts"] if m["name"] == "temporal-tls")
        assert mount == {
            "name": "temporal-tls",
            "mountPath": "/etc/egressgw/temporal",
            "readOnly": True,
        }
        volume = next(v for v in pod["volumes"] if v["name"] == "temporal-tls")
        assert [s["secret"] for s in volume["projected"]["sources"]] == [
            {"name": "temporal-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]},
            {
                "name": "egressgw-temporal-client",
                "items": [
                    {"key": "tls.crt", "path": "tls.crt"},
                    {"key": "tls.key", "path": "tls.key"},
                ],
            },
        ]
    manager = rendered.container("DaemonSet", CNI_MANAGER)
    assert not any("temporal" in arg for arg in manager["args"])  # it needs no Temporal


def test_plaintext_temporal_by_default(helm_path: Path, tmp_path: Path) -> None:
    rendered = render(helm_path, tmp_path)

    for kind, name in (("Deployment", CONTROLLER), ("DaemonSet", AGENT)):
        container = rendered.container(kind, name)
        assert [a for a in container["args"] if a.startswith("--temporal")] == [
            "--temporal-address=temporal-frontend.temporal.svc:7233",
            "--temporal-namespace=default",
        ]
        assert all(e["name"] != "TEMPORAL_API_KEY" for e in container["env"])


def test_representative_values_change_what_they_name(helm_path: Path, tmp_path: Path) -> None:
    rendered = render(helm_path, tmp_path, representative_values(tmp_path))
    manager = rendered.container("DaemonSet", CNI_MANAGER)
    agent_pod = pod_spec(rendered, "DaemonSet", AGENT)

    assert "--cluster-cidrs=10.244.0.0/16,10.0.0.0/16" in manager["args"]
    assert "--exception-cidrs=169.254.169.254/32" in manager["args"]
    assert rendered.get("ConfigMap", "cni-uninstall")["data"] == {"uninstall": "true"}
    assert {"name": "tun", "hostPath": {"path": "/dev/net/tun", "type": "CharDevice"}} in (
        agent_pod["volumes"]
    )


def test_a_dev_cluster_can_run_the_commands_on_its_hosts(helm_path: Path, tmp_path: Path) -> None:
    """What a node runtime that runs commands on the host needs: no init container that copies
    files or makes a namespace, node directories from values, extra flags per component."""
    rendered = render(
        helm_path,
        tmp_path,
        {
            "temporal": {"address": "10.0.0.1:7233"},
            "config": {
                "azureCloudConfig": {"cloud": "AzureStackCloud"},
                "azureCaBundle": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            },
            "gatewayDaemonManager": {
                "createGatewayNetns": False,
                "extraArgs": ["--socket-tag=n1"],
            },
            "gatewayCNIManager": {
                "installRuntime": False,
                "cniConfDir": "/state/nodes/n1/cni/net.d",
                "cniBinDir": "/state/nodes/n1/cni/bin",
            },
        },
    )

    assert "initContainers" not in pod_spec(rendered, "DaemonSet", AGENT)
    assert "initContainers" not in pod_spec(rendered, "DaemonSet", CNI_MANAGER)
    assert "--socket-tag=n1" in rendered.container("DaemonSet", AGENT)["args"]
    manager = rendered.container("DaemonSet", CNI_MANAGER)
    assert "--cni-conf-dir=/state/nodes/n1/cni/net.d" in manager["args"]
    assert {"name": "cni-bin", "mountPath": "/state/nodes/n1/cni/bin"} in manager["volumeMounts"]
    assert (
        "--azure-ca-file=/etc/egressgw/azure-ca/ca.pem"
        in (rendered.container("Deployment", CONTROLLER)["args"])
    )
    assert rendered.get("ConfigMap", "egressgw-azure-ca")["data"]["ca.pem"].startswith("-----")


def test_a_kube_egress_gateway_values_file_carries_over(helm_path: Path, tmp_path: Path) -> None:
    """Keys of the upstream chart that egressgw has no use for are accepted, not refused."""
    rendered = render(
        helm_path,
        tmp_path,
        {
            "common": {"imageRepository": "mcr.microsoft.com/aks", "imageTag": "v0.1.0"},
            "gatewayControllerManager": {"leaderElect": "true", "metricsBindPort": 8080},
            "gatewayCNIManager": {"grpcServerPort": 50051, "cniUninstall": False},
            "gatewayDaemonManager": {"metricsBindPort": 8080, "healthProbeBindPort": 8081},
            "gatewayDaemonManagerInit": {"imageName": "kube-egress-gateway-daemon-init"},
            "gatewayCNI": {"imageName": "kube-egress-gateway-cni"},
            "gatewayCNIIpam": {"imageName": "kube-egress-gateway-cni-ipam"},
        },
    )

    assert rendered.get("Deployment", CONTROLLER)["spec"]["replicas"] == 2


def test_components_can_be_switched_off(helm_path: Path, tmp_path: Path) -> None:
    rendered = render(
        helm_path,
        tmp_path,
        {"gatewayCNIManager": {"enabled": False}, "gatewayDaemonManager": {"enabled": False}},
    )

    assert {o["kind"] for o in rendered.objects if "cni" in o["metadata"]["name"]} == set()
    assert rendered.of_kind("DaemonSet") == []
    assert len(rendered.of_kind("Deployment")) == 1


def test_every_component_serves_metrics_where_its_scrape_annotations_say(
    helm_path: Path, tmp_path: Path
) -> None:
    values = {"gatewayDaemonManager": {"metricsBindPort": 9464, "podAnnotations": {"team": "net"}}}
    rendered = render(helm_path, tmp_path, values)
    for kind, name, port in (
        ("Deployment", CONTROLLER, 8080),
        ("DaemonSet", AGENT, 9464),
        ("DaemonSet", CNI_MANAGER, 8080),
    ):
        annotations = rendered.get(kind, name)["spec"]["template"]["metadata"]["annotations"]
        container = rendered.container(kind, name)
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/port"] == str(port), name
        assert annotations["prometheus.io/path"] == "/metrics", name
        assert f"--metrics-address=:{port}" in container["args"], name
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == port, name
    agent_pod = rendered.get("DaemonSet", AGENT)["spec"]["template"]["metadata"]
    assert agent_pod["annotations"]["team"] == "net"


def test_metrics_can_be_switched_off(helm_path: Path, tmp_path: Path) -> None:
    rendered = render(helm_path, tmp_path, {"metrics": {"enabled": False}})
    for kind, name in (
        ("Deployment", CONTROLLER),
        ("DaemonSet", AGENT),
        ("DaemonSet", CNI_MANAGER),
    ):
        metadata = rendered.get(kind, name)["spec"]["template"]["metadata"]
        container = rendered.container(kind, name)
        assert "prometheus.io/scrape" not in (metadata.get("annotations") or {}), name
        assert "--metrics-address=off" in container["args"], name
        assert "metrics" not in {p["name"] for p in container.get("ports", [])}, name


def test_a_users_pod_annotation_overrides_the_scrape_annotation_it_repeats(
    helm_path: Path, tmp_path: Path
) -> None:
    # A key written twice in one mapping is a manifest the API server refuses.
    values = {
        "gatewayControllerManager": {"podAnnotations": {"prometheus.io/scrape": "false"}},
        "gatewayDaemonManager": {"podAnnotations": {"prometheus.io/port": "9999"}},
    }
    rendered = render(helm_path, tmp_path, values)

    controller = rendered.get("Deployment", CONTROLLER)["spec"]["template"]["metadata"]
    assert controller["annotations"]["prometheus.io/scrape"] == "false"
    assert controller["annotations"]["checksum/azure-cloud-config"]
    agent = rendered.get("DaemonSet", AGENT)["spec"]["template"]["metadata"]
    assert agent["annotations"]["prometheus.io/port"] == "9999"
    assert agent["annotations"]["prometheus.io/scrape"] == "true"
