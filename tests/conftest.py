"""Shared fixtures and helpers live in tests/fixtures/, one module per stand-in, server or
subject; test modules import helpers from there, never from each other. The modules below
define fixtures or hooks and are registered here."""

pytest_plugins = [
    "tests.fixtures.kube_binaries",
    "tests.fixtures.cluster",
    "tests.fixtures.kube_accounts",
    "tests.fixtures.kube_grants",
    "tests.fixtures.kube_proxy",
    "tests.fixtures.node_runtime",
    "tests.fixtures.arm",
    "tests.fixtures.identity",
    "tests.fixtures.temporal",
    "tests.fixtures.workflow_stack",
    "tests.fixtures.dry_run_agents",
    "tests.fixtures.controller_stack",
    "tests.fixtures.trace_receiver",
    "tests.fixtures.dev_stack",
    "tests.fixtures.netns",
    "tests.fixtures.host_requirements",
    "tests.fixtures.compose_checker",
]
