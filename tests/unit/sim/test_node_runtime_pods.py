"""The node runtime's pod decisions: phase and conditions, restarts and back-off, the CNI
protocol, list-then-watch bookkeeping, recovery after a restart, start-up cleanup, log reads."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from sim.node_runtime.cni_config import (
    CniConfigError,
    bridge_conflist,
    cni_args,
    first_ip,
    parse_network_list,
    pick_config_file,
    plugin_error,
    plugin_stdin,
    port_mappings,
)
from sim.node_runtime.container_logs import cap, read_run, tail_lines
from sim.node_runtime.container_states import ContainerRecord, Running, Terminated, Waiting
from sim.node_runtime.node_reconcile import orphan_pods, stale_netns
from sim.node_runtime.pod_feed import PodFeed
from sim.node_runtime.pod_recovery import UNKNOWN_REASON, recover_records
from sim.node_runtime.pod_state_dir import ProcessRecord
from sim.node_runtime.pod_status import PodView, phase, pod_status
from sim.node_runtime.probes import Probe, ProbeCounter
from sim.node_runtime.restart import (
    backoff_delay,
    init_should_restart,
    next_backoff_steps,
    should_restart,
)
from sim.node_runtime.sandbox import sandbox_netns_name

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def record(
    name: str, state: Running | Terminated | Waiting, last: Terminated | None = None
) -> ContainerRecord:
    r = ContainerRecord(name=name, image="img", state=state, last_state=last)
    r.ready = isinstance(state, Running)
    return r


def view(
    policy: str,
    containers: list[ContainerRecord],
    init: list[ContainerRecord] | None = None,
    **kw: bool,
) -> PodView:
    return PodView(
        restart_policy=policy,
        sandbox_ready=True,
        pod_ip="10.244.1.2",
        host_ip="10.224.0.4",
        start_time=NOW,
        init_containers=init or [],
        containers=containers,
        init_failed=kw.get("init_failed", False),
        terminal=kw.get("terminal", False),
    )


def done(code: int) -> Terminated:
    return Terminated(code, "Completed" if code == 0 else "Error", NOW, NOW)


def test_phase_follows_the_kubelet() -> None:
    assert phase(view("Always", [record("a", Waiting("ContainerCreating"))])) == "Pending"
    assert phase(view("Always", [record("a", Running(NOW))])) == "Running"
    crash = record("a", Waiting("CrashLoopBackOff"), last=done(1))
    assert phase(view("Always", [crash])) == "Running"
    assert phase(view("Never", [record("a", done(0))])) == "Succeeded"
    assert phase(view("Never", [record("a", done(0)), record("b", done(2))])) == "Failed"
    assert phase(view("OnFailure", [record("a", done(0))])) == "Succeeded"
    init = [record("i", Running(NOW))]
    assert phase(view("Always", [record("a", Waiting("PodInitializing"))], init)) == "Pending"
    assert (
        phase(
            view(
                "Never",
                [record("a", Waiting("PodInitializing"))],
                [record("i", done(1))],
                init_failed=True,
            )
        )
        == "Failed"
    )
    assert phase(view("Always", [record("a", done(0))], terminal=True)) == "Succeeded"


def test_status_conditions_and_container_states() -> None:
    scheduled = {
        "type": "PodScheduled",
        "status": "True",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    status = pod_status(
        view(
            "Always",
            [record("a", Running(NOW)), record("b", Waiting("CreateContainerError", "exec: nope"))],
        ),
        [scheduled],
        NOW,
    )
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["PodScheduled"] == scheduled
    assert conditions["Initialized"]["status"] == "True"
    assert conditions["ContainersReady"]["status"] == "False"
    assert conditions["ContainersReady"]["message"] == "containers with unready status: [b]"
    assert status["podIP"] == "10.244.1.2"
    assert status["podIPs"] == [{"ip": "10.244.1.2"}]
    a, b = status["containerStatuses"]
    assert a["state"] == {"running": {"startedAt": "2026-01-02T03:04:05Z"}}
    assert a["ready"] and a["started"]
    assert b["state"] == {"waiting": {"reason": "CreateContainerError", "message": "exec: nope"}}
    later = pod_status(
        view("Always", [record("a", Running(NOW)), record("b", Running(NOW))]),
        status["conditions"],
        NOW + datetime.timedelta(seconds=9),
    )
    ready = next(c for c in later["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["lastTransitionTime"] == "2026-01-02T03:04:14Z"
    initialized = next(c for c in later["conditions"] if c["type"] == "Initialized")
    assert initialized["lastTransitionTime"] == "2026-01-02T03:04:05Z"


def test_restart_policy_and_back_off() -> None:
    assert should_restart("Always", 0) and should_restart("Always", 1)
    assert should_restart("OnFailure", 1) and not should_restart("OnFailure", 0)
    assert not should_restart("Never", 1)
    assert init_should_restart("Always", 1) and not init_should_restart("Always", 0)
    assert not init_should_restart("Never", 1)
    delays = []
    steps = 0
    for _ in range(8):
        steps = next_backoff_steps(steps, ran_for=1.0, maximum=300.0)
        delays.append(backoff_delay(steps, 10.0, 300.0))
    assert delays == [0.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]
    assert next_backoff_steps(7, ran_for=600.0, maximum=300.0) == 1


def test_cni_config_choice_and_stdin() -> None:
    assert (
        pick_config_file(["99-x.conf", "10-a.conflist", "README", "20-b.json"]) == "10-a.conflist"
    )
    assert pick_config_file(["README"]) is None
    network = parse_network_list(
        json.dumps(bridge_conflist("net", "cni0", "10.244.1.0/24", "/ipam")), "10-a.conflist"
    )
    assert network.name == "net" and network.plugins[0]["type"] == "bridge"
    single = parse_network_list('{"cniVersion": "0.4.0", "name": "n", "type": "ptp"}', "x.conf")
    assert single.plugins == ({"type": "ptp"},) and single.cni_version == "0.4.0"
    for text, name in (
        ("{", "a.conflist"),
        ('{"name": "n", "plugins": []}', "a.conflist"),
        ('{"plugins": [{"type": "x"}]}', "a.conflist"),
    ):
        with pytest.raises(CniConfigError):
            parse_network_list(text, name)
    plugin = {"type": "portmap", "capabilities": {"portMappings": True}}
    conf = json.loads(
        plugin_stdin(
            network, plugin, {"ips": []}, {"portMappings": [{"hostPort": 1}], "bandwidth": {}}
        )
    )
    assert conf["name"] == "net" and conf["cniVersion"] == "1.0.0"
    assert conf["prevResult"] == {"ips": []}
    assert conf["runtimeConfig"] == {"portMappings": [{"hostPort": 1}]}
    assert "runtimeConfig" not in json.loads(
        plugin_stdin(network, {"type": "bridge"}, None, {"portMappings": []})
    )
    assert (
        cni_args("ns", "p", "abc", "u") == "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;"
        "K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u"
    )
    assert first_ip({"ips": [{"address": "10.244.1.7/24"}]}) == "10.244.1.7"
    assert first_ip({}) is None
    assert port_mappings(
        {"spec": {"containers": [{"ports": [{"containerPort": 80, "hostPort": 8080}]}]}}
    ) == [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""}]


def test_plugin_errors_read_as_the_spec_prints_them() -> None:
    error = json.dumps(
        {"cniVersion": "1.0.0", "code": 11, "msg": "no IP", "details": "range full"}
    ).encode()
    assert (
        plugin_error("host-local", 1, error, b"")
        == "plugin type='host-local' failed (code 11): no IP: range full"
    )
    assert "exit 2" in plugin_error("x", 2, b"", b"boom")


def test_netns_names_and_cleanup_choices() -> None:
    name = sandbox_netns_name("tab12p0", "1b2c3d4e-aaaa-bbbb-cccc-000000000000")
    assert name == "tab12p0-1b2c3d4e"
    assert stale_netns(
        ["tab12p0-1b2c3d4e", "tab12p0-ffffffff", "tab12p0-node", "other"],
        "tab12p0",
        {"tab12p0-1b2c3d4e"},
        {"tab12p0-node"},
    ) == ["tab12p0-ffffffff"]
    assert orphan_pods(["a", "b"], {"b"}) == ["a"]


def pod_obj(uid: str, rv: str) -> dict[str, object]:
    return {"metadata": {"uid": uid, "resourceVersion": rv, "name": uid}}


def test_list_then_watch_bookkeeping() -> None:
    feed = PodFeed()
    changes = feed.relist([pod_obj("a", "1"), pod_obj("b", "2")], "2")
    assert [(c.kind, c.uid) for c in changes] == [("upsert", "a"), ("upsert", "b")]
    assert feed.apply({"type": "MODIFIED", "object": pod_obj("a", "3")})[0].kind == "upsert"
    assert feed.apply({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "5"}}}) == []
    assert feed.resource_version == "5"
    changes = feed.relist([pod_obj("a", "3"), pod_obj("c", "6")], "6")
    assert sorted((c.kind, c.uid) for c in changes) == [("gone", "b"), ("upsert", "c")]
    assert [c.kind for c in feed.apply({"type": "DELETED", "object": pod_obj("c", "7")})] == [
        "gone"
    ]
    assert set(feed.pods) == {"a"}


def test_recovery_after_a_runtime_restart() -> None:
    pod = {
        "spec": {
            "initContainers": [{"name": "init", "image": "i"}],
            "containers": [
                {"name": "web", "image": "w"},
                {"name": "side", "image": "s"},
                {"name": "new", "image": "n"},
            ],
        },
        "status": {
            "initContainerStatuses": [
                {
                    "name": "init",
                    "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                }
            ],
            "containerStatuses": [
                {
                    "name": "web",
                    "restartCount": 2,
                    "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                },
                {
                    "name": "side",
                    "restartCount": 1,
                    "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                },
            ],
        },
    }
    alive = {
        "web": ProcessRecord(
            pid=10, start_ticks=5, restart_count=2, started_at="2026-01-01T00:00:00Z", init=False
        )
    }
    init, main = recover_records(pod, alive, NOW)
    assert isinstance(init[0].state, Terminated) and init[0].state.exit_code == 0
    web, side, new = main
    assert isinstance(web.state, Running) and web.restart_count == 2 and web.ready
    assert (
        isinstance(side.state, Terminated)
        and side.state.reason == UNKNOWN_REASON
        and side.restart_count == 1
    )
    assert isinstance(new.state, Waiting) and new.restart_count == 0


def test_log_reads_and_caps(tmp_path: Path) -> None:
    assert tail_lines(b"a\nb\nc\n", 2) == b"b\nc\n"
    assert tail_lines(b"a\nb\nc", 2) == b"b\nc"
    assert tail_lines(b"a\n", 5) == b"a\n"
    assert tail_lines(b"a\nb\n", 0) == b""
    assert tail_lines(b"a\nb\n", None) == b"a\nb\n"
    log = tmp_path / "0.log"
    log.write_bytes(b"x" * 100)
    assert not cap(log, 200)
    assert cap(log, 50)
    with log.open("ab") as f:
        f.write(b"tail\n")
    assert read_run(log) == (b"x" * 100 + b"tail\n", 5)


def test_probes_read_and_count_as_the_kubelet() -> None:
    container = {"ports": [{"name": "http", "containerPort": 8080}]}
    probe = Probe.from_json(
        {"httpGet": {"port": "http", "path": "/ready"}, "periodSeconds": 2}, container
    )
    assert probe is not None
    assert (probe.kind, probe.port, probe.path, probe.period, probe.failure_threshold) == (
        "httpGet",
        8080,
        "/ready",
        2.0,
        3,
    )
    assert Probe.from_json({"grpc": {"port": 1}}, container) is None
    readiness = ProbeCounter(success_threshold=1, failure_threshold=3, healthy=False)
    assert readiness.record(True) and readiness.healthy
    assert not readiness.record(False) and not readiness.record(False)
    assert readiness.record(False) and not readiness.healthy
    liveness = ProbeCounter(success_threshold=1, failure_threshold=2, healthy=True)
    assert not liveness.record(False)
    assert not liveness.record(True)
    assert not liveness.record(False)
    assert liveness.record(False) and not liveness.healthy
