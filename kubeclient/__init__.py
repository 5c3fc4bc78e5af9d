"""The Kubernetes API client layer under activities, watchers and the agent.

errors        api_failure / api_error_kind: the one place that reads HTTP statuses (ApiFailure,
              ApiErrorKind), the Status message, Retry-After
patch_types   content types for PATCH requests (MERGE_PATCH)
list_watch    list_then_watch: the list-then-watch core (resume from resourceVersion, bookmarks,
              410 Gone -> relist, backoff), its pure decisions and the ListWatchSource protocol
kube_source   KubeListWatch: a ListWatchSource over one kubernetes_asyncio list function

It imports only contracts and the client libraries (kubernetes_asyncio, aiohttp): what to do with
a classified failure (a Temporal retry, a relist, a log line) is the caller's decision.
"""
