"""The pod side: the CNI plugins a container runtime runs for every pod on a regular node, and the
node-local CNI manager they call (docs/pod-side.md).

Plugin processes (console scripts `kube-egress-cni`, `kube-egress-cni-ipam`) start once per pod
and must start fast, so what they import is the standard library and these small modules only
(docs/pod-side.md has the measured times):

cni_protocol      the CNI spec as a plugin sees it: environment, network config, errors, versions
plugin_config     kube-egress-cni's network config (our conflist entry, prevResult, GC's list)
pod_keys          the pod's WireGuard key pair (X25519 of RFC 7748, standard library only)
pod_routes        which routes, rules and nftables rules a pod gets (pure)
pod_netns         running `ip` / `nft` inside the pod's network namespace, sysctls there
pod_wireguard     the pod's wg0: wireguard-go through its UAPI socket, or the kernel module + `wg`
attachment_state  one small file per attachment (no key in it), for DEL and GC
manager_api       the plugin <-> manager messages: JSON over the manager's Unix socket
manager_client    the plugin's side of that socket
plugin, ipam      the two executables' `main`; plugin decides pass-through and loads
pod_attachment    (only for an annotated pod) wg0, routes and rules: set up, check, clean up

The manager (`egressgw cni-manager`, long-running, may import the Kubernetes client):

manager_settings  what one node's manager is told (flags), and the conflist entry it writes
nic_service       NicAdd / NicDel / NicCheck / PodRetrieve against the Kubernetes API
manager_server    the asyncio Unix-socket server in front of nic_service
conflist          the node's conflist with our entry after the main plugin (pure)
node_install      conflist upkeep, plugin launchers in the CNI bin dir, the not-ready taint,
                  the uninstall switch
"""
