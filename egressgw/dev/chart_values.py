"""Values for installing the Helm chart (deploy/helm/egressgw) into a running dev stack started
with `--no-egressgw`: the stack's Temporal and ARM emulator as its nodes reach them
(endpoints.json `from_nodes`), the cloud config `dev up` wrote pointed at that ARM address, the
stack's CA for it, and the node network's cluster CIDRs. `egressgw dev chart-values` prints them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from egressgw.dev.layout import DevStackError, StatePaths
from sim.control_plane.pki import SERVICE_CLUSTER_IP_RANGE


def chart_values(
    endpoints: Mapping[str, Any],
    cloud_config: Mapping[str, Any],
    ca_pem: str,
    pod_cidr: str,
    vnet_cidr: str,
) -> dict[str, Any]:
    from_nodes = endpoints.get("from_nodes") or {}
    if not from_nodes:
        raise DevStackError(
            "the stack has no node network (root and --network on are needed for the chart)"
        )
    return {
        "temporal": {"address": from_nodes["temporal_address"]},
        "config": {
            "azureCloudConfig": {
                **cloud_config,
                "resourceManagerEndpoint": from_nodes["arm_url"],
            },
            "azureCaBundle": ca_pem,
        },
        "gatewayDaemonManager": {
            # dev up made each gateway node's namespace under the default name.
            "createGatewayNetns": False,
            # The dev load balancer probes every 5 s; nothing waits on a long drain here.
            "probeDrain": "1s",
        },
        "gatewayCNIManager": {
            # The nodes run the plugin launchers with the stack's own Python.
            "installRuntime": False,
            "clusterCidrs": [pod_cidr, SERVICE_CLUSTER_IP_RANGE, vnet_cidr],
        },
    }


def stack_chart_values(state_dir: Path) -> dict[str, Any]:
    """The values for the stack running from `state_dir`."""
    from sim.topology import Topology

    paths = StatePaths(state_dir)
    try:
        endpoints = json.loads(paths.endpoints.read_text())
        network = json.loads(paths.network_file.read_text())
        cloud_config = json.loads(paths.azure_config.read_text())
        ca_pem = paths.ca.read_text()
    except (OSError, ValueError) as err:
        raise DevStackError(f"no running dev stack in {state_dir}: {err}") from err
    if not network.get("built"):
        raise DevStackError(f"the dev stack in {state_dir} has no node network")
    return chart_values(
        endpoints, cloud_config, ca_pem, str(network["pod_cidr"]), Topology().vnet_cidr
    )
