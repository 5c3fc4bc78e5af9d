"""Kubernetes activities: the gateway key Secret, SGC status, Events and the finalizer.
`catalog.kube_activities(api_client)` lists them for a worker; errors.py is the one place
Kubernetes API errors are classified."""
