"""Shared fixtures live in tests/fixtures/, one module per stand-in or server."""

pytest_plugins = [
    "tests.fixtures.kube",
    "tests.fixtures.cluster",
    "tests.fixtures.node_runtime",
    "tests.fixtures.arm",
    "tests.fixtures.identity",
    "tests.fixtures.temporal",
]
