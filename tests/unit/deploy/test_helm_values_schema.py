"""Bad chart values are refused by values.schema.json before anything is rendered or applied,
each with a message that names the value's path and says what is wrong with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.helm_chart import refusal

CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "a probe port the controller's load balancer does not probe",
        {"common": {"gatewayLbProbePort": 9000}},
        ["/common/gatewayLbProbePort", "value must be 8082"],
    ),
    (
        "Temporal address without a port",
        {"temporal": {"address": "temporal-frontend"}},
        ["/temporal/address", "'temporal-frontend' does not match"],
    ),
    (
        "Temporal address with a scheme",
        {"temporal": {"address": "https://temporal:7233"}},
        ["/temporal/address", "'https://temporal:7233'"],
    ),
    (
        "subscription ID that is not a GUID",
        {"config": {"azureCloudConfig": {"subscriptionId": "my-subscription"}}},
        ["/config/azureCloudConfig/subscriptionId", "'my-subscription'"],
    ),
    (
        "a boolean given as a string",
        {"config": {"azureCloudConfig": {"useManagedIdentityExtension": "yes"}}},
        ["/config/azureCloudConfig/useManagedIdentityExtension", "want boolean"],
    ),
    (
        "exception CIDR that is not a CIDR",
        {"gatewayCNIManager": {"exceptionCidrs": ["169.254.169.254"]}},
        ["/gatewayCNIManager/exceptionCidrs/0", "'169.254.169.254'"],
    ),
    (
        "conflist name without .conflist",
        {"gatewayCNIManager": {"cniConfigFileName": "01-egressgateway.conf"}},
        ["/gatewayCNIManager/cniConfigFileName", "'01-egressgateway.conf'"],
    ),
    (
        "uninstall switch as a string",
        {"gatewayCNIManager": {"cniUninstall": "true"}},
        ["/gatewayCNIManager/cniUninstall", "want boolean"],
    ),
    (
        "a misspelt key",
        {"gatewayControllerManager": {"replica": 3}},
        ["/gatewayControllerManager", "'replica' not allowed"],
    ),
    (
        "negative replicas",
        {"gatewayControllerManager": {"replicas": -1}},
        ["/gatewayControllerManager/replicas", "minimum"],
    ),
    (
        "unknown WireGuard backend",
        {"gatewayDaemonManager": {"wireguardBackend": "boringtun"}},
        ["/gatewayDaemonManager/wireguardBackend", "one of 'auto', 'kernel', 'wireguard-go'"],
    ),
    (
        "a relative CNI directory",
        {"gatewayCNIManager": {"cniBinDir": "opt/cni/bin"}},
        ["/gatewayCNIManager/cniBinDir", "'opt/cni/bin'"],
    ),
    (
        "a duration Go cannot read",
        {"gatewayControllerManager": {"driftCheckInterval": "5 minutes"}},
        ["/gatewayControllerManager/driftCheckInterval", "'5 minutes'"],
    ),
    (
        "an image tag that is a number",
        {"common": {"imageTag": 1.0}},
        ["/common/imageTag", "want string"],
    ),
    (
        "a Secret name that is no Kubernetes name",
        {"temporal": {"apiKeySecret": {"name": "Temporal_Key"}}},
        ["/temporal/apiKeySecret/name", "'Temporal_Key'"],
    ),
    (
        "an unknown pull policy",
        {"gatewayCNIManager": {"imagePullPolicy": "Sometimes"}},
        ["/gatewayCNIManager/imagePullPolicy", "one of 'Always', 'IfNotPresent', 'Never'"],
    ),
]


@pytest.mark.parametrize(("values", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_values_are_refused_naming_the_value(
    helm_path: Path, tmp_path: Path, values: dict[str, Any], says: list[str]
) -> None:
    message = refusal(helm_path, tmp_path, values)

    assert "values don't meet the specifications of the schema" in message
    for part in says:
        assert part in message, message


def test_each_bad_value_is_reported_when_there_are_several(helm_path: Path, tmp_path: Path) -> None:
    message = refusal(
        helm_path,
        tmp_path,
        {
            "common": {"gatewayLbProbePort": 0},
            "temporal": {"namespace": ""},
            "gatewayCNIManager": {"clusterCidrs": ["10.0.0.0/33"]},
        },
    )

    for path in ("/common/gatewayLbProbePort", "/temporal/namespace", "/clusterCidrs/0"):
        assert path in message, message
