"""Names the product shares with Kubernetes: API group, kinds, labels, annotations, finalizers,
secret layout, event and condition vocabulary, and the node-side names of a gateway.

Values that users or the Go implementation see are kept byte-for-byte as upstream has them
(docs/upstream-compatibility.md lists them), so clusters and manifests move between the two
unchanged.
"""

from __future__ import annotations

from typing import Final

# --- API group and kinds -------------------------------------------------------------------------

API_GROUP: Final = "egressgateway.kubernetes.azure.com"
API_VERSION: Final = "v1alpha1"
GROUP_VERSION: Final = f"{API_GROUP}/{API_VERSION}"

SGC_KIND: Final = "StaticGatewayConfiguration"
SGC_PLURAL: Final = "staticgatewayconfigurations"
SGC_SINGULAR: Final = "staticgatewayconfiguration"
SGC_SHORT_NAME: Final = "sgc"

POD_ENDPOINT_KIND: Final = "PodEndpoint"
POD_ENDPOINT_PLURAL: Final = "podendpoints"
POD_ENDPOINT_SINGULAR: Final = "podendpoint"

GATEWAY_STATUS_KIND: Final = "GatewayStatus"
GATEWAY_STATUS_PLURAL: Final = "gatewaystatuses"
GATEWAY_STATUS_SINGULAR: Final = "gatewaystatus"

# --- Nodes ---------------------------------------------------------------------------------------

# Gateway nodes: the install guide tells users to label and taint them with this key.
GATEWAY_NODE_LABEL: Final = "kubeegressgateway.azure.com/mode"
GATEWAY_NODE_LABEL_VALUE: Final = "true"
GATEWAY_NODE_TAINT_KEY: Final = "kubeegressgateway.azure.com/mode"
GATEWAY_NODE_TAINT_VALUE: Final = "true"
GATEWAY_NODE_TAINT_EFFECT: Final = "NoSchedule"

# AKS labels: the node's pool, and the pool mode AKS sets on managed gateway pools.
AKS_AGENT_POOL_LABEL: Final = "kubernetes.azure.com/agentpool"
AKS_MODE_LABEL: Final = "kubernetes.azure.com/mode"
AKS_MODE_GATEWAY: Final = "gateway"

# --- Finalizers ----------------------------------------------------------------------------------

SGC_FINALIZER: Final = "static-gateway-configuration-controller.microsoft.com"

# --- The gateway WireGuard key secret (named by resource_names.gateway_secret_name) --------------

SECRET_OWNER_NAMESPACE_LABEL: Final = (
    "egressgateway.kubernetes.azure.com/owning-gateway-config-namespace"
)
SECRET_OWNER_NAME_LABEL: Final = "egressgateway.kubernetes.azure.com/owning-gateway-config-name"
# A label value holds at most 63 characters, an object name up to 253: a longer name's label is
# derived (resource_names.owner_name_label_value) and the whole name kept in this annotation.
SECRET_OWNER_NAME_ANNOTATION: Final = SECRET_OWNER_NAME_LABEL
MAX_LABEL_VALUE_LENGTH: Final = 63
SECRET_PRIVATE_KEY: Final = "PrivateKey"
SECRET_PUBLIC_KEY: Final = "PublicKey"

# --- Events (reasons on the SGC) -----------------------------------------------------------------

EVENT_INVALID_SPEC: Final = "InvalidSpec"
EVENT_RECONCILING: Final = "Reconciling"
EVENT_RECONCILED: Final = "Reconciled"
EVENT_RECONCILE_ERROR: Final = "ReconcileError"
EVENT_DELETING: Final = "Deleting"
EVENT_DELETE_ERROR: Final = "DeleteError"
EVENT_TYPE_NORMAL: Final = "Normal"
EVENT_TYPE_WARNING: Final = "Warning"

# --- Conditions on SGC status --------------------------------------------------------------------

CONDITION_READY: Final = "Ready"
CONDITION_PROGRESSING: Final = "Progressing"
CONDITION_DEGRADED: Final = "Degraded"

# Condition reasons are CamelCase as metav1.Condition requires.
REASON_INVALID_SPEC: Final = "InvalidSpec"
REASON_PROVISIONING: Final = "Provisioning"
REASON_PROVISIONED: Final = "Provisioned"
REASON_PROVISIONING_FAILED: Final = "ProvisioningFailed"
# Where a failed pass failed (contracts/failure_types.py maps error types to these): Azure
# answered, the Kubernetes API did, the gateway pool lookup or the bring-your-own prefix check
# refused, or the prefix cannot serve the pool.
REASON_AZURE_ERROR: Final = "AzureError"
REASON_KUBERNETES_ERROR: Final = "KubernetesError"
REASON_GATEWAY_POOL_NOT_FOUND: Final = "GatewayPoolNotFound"
REASON_INVALID_GATEWAY_POOL: Final = "InvalidGatewayPool"
REASON_INVALID_PUBLIC_IP_PREFIX: Final = "InvalidPublicIpPrefix"
REASON_PUBLIC_IP_PREFIX_TOO_SMALL: Final = "PublicIpPrefixTooSmall"
REASON_GATEWAY_NODES_NOT_READY: Final = "GatewayNodesNotReady"
REASON_DELETING: Final = "Deleting"
REASON_AS_EXPECTED: Final = "AsExpected"

# --- Node side (gateway agent) ------------------------------------------------------------------

GATEWAY_NETNS: Final = "ns-static-egress-gateway"
GATEWAY_WIREGUARD_INTERFACE_PREFIX: Final = "wg-"
HOST_VETH: Final = "host-gateway"
NETNS_VETH: Final = "host0"
WIREGUARD_PORT_MIN: Final = 6000  # inclusive
WIREGUARD_PORT_MAX: Final = 7000  # exclusive
PROBE_PORT: Final = 8082
PROBE_PATH_PREFIX: Final = "/gw/"

ENV_POD_NAMESPACE: Final = "MY_POD_NAMESPACE"
ENV_NODE_NAME: Final = "MY_NODE_NAME"

# --- Pod side (CNI plugin and CNI manager, docs/pod-side.md) ----------------------------------

# A pod opts in with this annotation; its value names a configuration in the pod's namespace.
POD_GATEWAY_ANNOTATION: Final = "kubernetes.azure.com/static-gateway-configuration"
# Taint on regular nodes until the CNI manager has installed its conflist entry (it only removes
# it; whoever provisions the node adds it).
CNI_NOT_READY_TAINT_KEY: Final = "egressgateway.kubernetes.azure.com/cni-not-ready"
CNI_PLUGIN_TYPE: Final = "kube-egress-cni"
CNI_IPAM_TYPE: Final = "kube-egress-cni-ipam"
CNI_CONF_DIR: Final = "/etc/cni/net.d"
CNI_CONF_FILE: Final = "01-egressgateway.conflist"
CNI_UNINSTALL_CONFIGMAP: Final = "cni-uninstall"
CNI_UNINSTALL_KEY: Final = "uninstall"
POD_WIREGUARD_INTERFACE: Final = "wg0"
# Connections that enter a pod through its main interface carry this mark (0x2222), and marked
# replies are routed by the table of the same number (the pod's original default route).
POD_INGRESS_MARK: Final = 8738
POD_INGRESS_TABLE: Final = 8738
# Azure's instance metadata service and AKS's node-local DNS never go through the gateway
# (upstream's default exceptionCidrs, PR #1356).
DEFAULT_CNI_EXCEPTION_CIDRS: Final = ("169.254.169.254/32", "169.254.10.11/32")
