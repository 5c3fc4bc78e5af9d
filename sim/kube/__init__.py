"""A Kubernetes API server emulator for the dev stack and tests.

The real clients (kubernetes, kubernetes_asyncio, kubectl) talk to it over HTTPS with a bearer
token. Modules, from the edge inwards:

- server: `KubeEmulator` (start/stop, kubeconfig, direct create/get for seeding); __main__ runs it.
- routes, paths: the aiohttp handler, URL parsing, watch streaming, Table/JSON encoding.
- discovery, openapi, tables: documents kubectl reads (discovery, OpenAPI v2/v3, Tables).
- cluster: the apiserver semantics (admission, resourceVersion, generation, finalizers, garbage
  collection, namespaces, pagination snapshots, watch history).
- resources, builtins, coreschemas, crds: the served kinds and their kind-specific rules.
- schema, cel: structural-schema pruning/defaulting/validation and x-kubernetes-validations.
- selectors, patching, protobuf, objectmeta, errors: the smaller rules and wire formats.
- storage: snapshot + journal persistence in the state directory.
"""
