"""What `egressgw status` says about a configuration, from what it read (egressgw/status/report.py):
which problem shows as the last error, how nodes count, the Web UI link."""

from __future__ import annotations

import json
from typing import Any

from contracts.gateway_config import StaticGatewayConfiguration
from contracts.workflow_io import NodeProblem
from egressgw.client_endpoints import resolve_target
from egressgw.status.report import (
    WorkflowFacts,
    configured_nodes,
    render_json,
    render_table,
    status_row,
    workflow_url,
)

WORKFLOW_ID = "egressgw/sgc/team-a/egress"


def sgc(degraded: str = "", egress: str = "20.1.2.0/31") -> StaticGatewayConfiguration:
    conditions: list[dict[str, Any]] = []
    if degraded:
        conditions.append(
            {
                "type": "Degraded",
                "status": "True",
                "reason": "AzureError",
                "message": degraded,
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        )
    return StaticGatewayConfiguration.from_object(
        {
            "metadata": {"namespace": "team-a", "name": "egress", "uid": "u-1"},
            "spec": {"gatewayNodepoolName": "gwpool"},
            "status": {"egressIpPrefix": egress, "conditions": conditions},
        }
    )


def facts(**fields: Any) -> WorkflowFacts:
    return WorkflowFacts(
        **{"workflow_id": WORKFLOW_ID, "found": True, "execution_status": "Running", **fields}
    )


def row(configuration: StaticGatewayConfiguration, workflow: WorkflowFacts, **nodes: Any) -> Any:
    return status_row(configuration, workflow, nodes or {}, "http://ui:8080/", "default")


def test_the_link_opens_the_workflows_latest_run_with_its_id_as_one_segment() -> None:
    assert workflow_url("http://ui:8080/", "default", WORKFLOW_ID) == (
        "http://ui:8080/namespaces/default/workflows/egressgw%2Fsgc%2Fteam-a%2Fegress"
    )


def test_a_ready_configuration_shows_its_egress_ip_nodes_and_no_error() -> None:
    shown = status_row(
        sgc(),
        facts(phase="Ready", nodes=("gw-0", "gw-1")),
        {"team-a/egress": ("gw-1",)},
        "http://ui:8080",
        "default",
    )

    assert (shown.phase, shown.egress_ip, shown.nodes, shown.last_error) == (
        "Ready",
        "20.1.2.0/31",
        "1/2",
        "",
    )


def test_which_problem_shows_first() -> None:
    problems = [
        (facts(found=False, execution_status=""), "NoWorkflow", "no controller"),
        (facts(unreadable="connection refused"), "Unknown", "connection refused"),
        (facts(execution_status="Terminated", phase="Ready"), "Ready", "terminated"),
        (facts(phase="Degraded", message="pool not found"), "Degraded", "pool not found"),
        # Without an answer to the query, the object's Degraded condition says why.
        (facts(phase="Degraded", unanswered="timed out"), "Degraded", "quota exceeded"),
        (
            facts(phase="Provisioning", retrying="ensure_gateway_key (attempt 4): 403"),
            "Provisioning",
            "403",
        ),
    ]
    for workflow, phase, error in problems:
        shown = row(sgc(degraded="quota exceeded"), workflow)
        assert shown.phase == phase, workflow
        assert error in shown.last_error, (workflow, shown.last_error)


def test_nodes_are_counted_from_the_agents_reports_and_unknown_without_an_answer() -> None:
    statuses = [
        {
            "metadata": {"name": "gw-0"},
            "spec": {
                "readyGatewayConfigurations": [
                    {"staticGatewayConfiguration": "team-a/egress", "interfaceName": "wg-6000"},
                    {"staticGatewayConfiguration": "team-b/other", "interfaceName": "wg-6001"},
                ]
            },
        },
        {"metadata": {"name": "gw-1"}, "spec": {}},
    ]
    configured = configured_nodes(statuses)

    assert configured == {"team-a/egress": ("gw-0",), "team-b/other": ("gw-0",)}
    shown = status_row(sgc(), facts(phase="Ready"), configured, "http://ui", "default")
    assert shown.nodes == "1/?"


def test_table_and_json_carry_the_same_rows() -> None:
    problems = (NodeProblem("gw-1", "agent did not answer"),)
    shown = row(
        sgc(degraded="1 of 2 gateway nodes not configured"),
        facts(phase="Degraded", nodes=("gw-0", "gw-1"), node_problems=problems),
    )

    table = render_table([shown]).splitlines()
    document = json.loads(render_json([shown]))

    assert table[0].split() == [
        "NAMESPACE",
        "NAME",
        "PHASE",
        "EGRESS-IP",
        "NODES",
        "LAST-ERROR",
        "WORKFLOW-URL",
    ]
    assert table[1].split()[:5] == ["team-a", "egress", "Degraded", "20.1.2.0/31", "0/2"]
    assert table[1].endswith(shown.workflow_url)
    item = document["items"][0]
    assert item["nodes"] == {
        "configured": [],
        "total": 2,
        "problems": [{"node": "gw-1", "reason": "agent did not answer"}],
    }
    assert item["lastError"] == "1 of 2 gateway nodes not configured"
    assert item["workflow"]["url"] == shown.workflow_url


def test_temporal_is_found_by_flag_then_environment_then_dev_stack_then_compose_ports() -> None:
    dev = {"temporal_address": "127.0.0.1:17233", "temporal_ui_url": "http://127.0.0.1:18233"}

    flagged = resolve_target(
        address="t:1", namespace="ns", ui_url="http://u/", environ={}, dev_endpoints=dev
    )
    from_env = resolve_target(
        address=None,
        namespace=None,
        ui_url=None,
        environ={"TEMPORAL_ADDRESS": "e:2", "EGRESSGW_UI_URL": "http://e"},
        dev_endpoints=dev,
    )
    from_dev = resolve_target(
        address=None, namespace=None, ui_url=None, environ={}, dev_endpoints=dev
    )
    nothing = resolve_target(
        address=None, namespace=None, ui_url=None, environ={}, dev_endpoints={}
    )

    assert (flagged.address, flagged.namespace, flagged.ui_url) == ("t:1", "ns", "http://u")
    assert (from_env.address, from_env.ui_url) == ("e:2", "http://e")
    assert (from_dev.address, from_dev.ui_url) == ("127.0.0.1:17233", "http://127.0.0.1:18233")
    assert (nothing.address, nothing.namespace, nothing.ui_url) == (
        "localhost:7233",
        "default",
        "http://localhost:8080",
    )


def test_a_headless_dev_stack_gives_no_web_ui_link_unless_one_is_named() -> None:
    headless = {"temporal_address": "127.0.0.1:17233", "temporal_ui_url": None}

    target = resolve_target(
        address=None, namespace=None, ui_url=None, environ={}, dev_endpoints=headless
    )
    named = resolve_target(
        address=None, namespace=None, ui_url="http://u", environ={}, dev_endpoints=headless
    )
    shown = status_row(sgc(), facts(phase="Ready"), {}, target.ui_url, "default")

    assert target.address == "127.0.0.1:17233" and target.ui_url is None
    assert named.ui_url == "http://u"
    assert json.loads(render_json([shown]))["items"][0]["workflow"]["url"] is None
    assert render_table([shown]).splitlines()[1].rstrip().endswith(" -")


def test_nodes_that_could_not_be_read_are_not_counted_as_none() -> None:
    shown = status_row(sgc(), facts(phase="Ready", nodes=("a", "b")), None, "http://ui", "default")

    assert shown.nodes == "?/2"
    assert json.loads(render_json([shown]))["items"][0]["nodes"]["configured"] is None
