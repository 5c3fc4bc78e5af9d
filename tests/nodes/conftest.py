"""Node runtime tests: a real control plane (tests/fixtures/cluster.py), node runtimes in
throwaway network namespaces (tests/fixtures/node_runtime.py). They need root; without it the
`node_runtimes` fixture skips them."""
