"""The node runtime: a kubelet stand-in for machines without a container runtime.

One process per node (`python -m sim.node_runtime`, options in config.py) registers the Node and
renews its Lease (node_registration.py), runs the pods the scheduler binds to it as host processes
(pod_worker.py), each in a pod network namespace made by the node's CNI chain (sandbox.py,
cni_exec.py) or in the node's namespace for hostNetwork pods, with its volumes bind-mounted in a
private mount namespace (container_launcher.py), writes pod status back (pod_status.py) and serves
`kubectl logs` through the API server (kubelet_server.py). Decisions are pure functions in their
own modules; the I/O lives at the edges.
"""
