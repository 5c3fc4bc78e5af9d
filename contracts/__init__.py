"""Pure data and names shared by every layer: no I/O, no client libraries, nothing of ours.

kube_names        API group, kinds, labels, annotation, finalizer, events, conditions, node names
resource_names    workflow IDs, task queues, search attributes, Azure names, ARM IDs (with parsers)
gateway_config    StaticGatewayConfiguration models;  pod_endpoint, gateway_status: the others
spec_validation   validate_spec: the CRD's rules; controller_errors: only the controller's
failure_types     ApplicationError types of activities, and the condition reason of each source
conditions        metav1.Condition-shaped conditions and set_condition
"""
