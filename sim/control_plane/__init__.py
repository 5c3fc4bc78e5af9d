"""A real Kubernetes control plane for the dev stack and the tests: etcd, kube-apiserver,
kube-controller-manager and kube-scheduler built from pinned Go modules (tools/k8s, tools/etcd,
scripts/k8s-binaries) and run as local processes."""
