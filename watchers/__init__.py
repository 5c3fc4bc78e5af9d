"""Kubernetes list+watch loops that turn object changes into workflow messages.

`supervisor.Watchers(api_client, temporal_client, settings)` runs them in the controller. The
list-then-watch core and its kubernetes_asyncio source are kubeclient/list_watch.py and
kubeclient/kube_source.py; the watchers here only turn its events into workflow messages.
"""
