"""Kubernetes activities: the gateway key Secret, SGC status, Events and the finalizer.
`catalog.kube_activities(api_client)` lists them for a worker; errors.py turns the failures
kubeclient/errors.py classifies into Temporal outcomes."""
