"""Kubernetes list+watch loops that turn object changes into workflow messages.

`supervisor.Watchers(api_client, temporal_client, settings)` runs them in the controller;
list_watch.py is the generic list-then-watch core, kube_source.py its kubernetes_asyncio source.
"""
