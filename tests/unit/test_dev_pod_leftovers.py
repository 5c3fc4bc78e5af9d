"""What `dev down` recognises as the leftovers of its pods (egressgw/dev/pod_leftovers.py): the
stack's pod namespaces by name, the processes in a namespace, the pods' wireguard-go sockets
from the plugin's records."""

from __future__ import annotations

import os
from pathlib import Path

from agent.cni import attachment_state
from agent.cni.attachment_state import AttachmentRecord
from egressgw.dev.pod_leftovers import pod_daemon_sockets, pod_namespaces, processes_in


def test_only_the_stacks_pod_namespaces_are_its_pod_namespaces() -> None:
    names = [
        "dab12p0-0123abcd",  # a pod of node 0
        "dab12p11-89abcdef",  # a pod of node 11
        "dab12-nodepool1-0",  # a node
        "dab12-gwpool-0-gw",  # a gateway namespace
        "dab12p0-0123abcd-x",
        "dab12p0-0123ABCD",
        "dab123p0-0123abcd",  # another stack whose prefix starts the same
        "xdab12p0-0123abcd",
    ]
    assert pod_namespaces(names, "dab12") == ["dab12p0-0123abcd", "dab12p11-89abcdef"]


def test_processes_in_a_namespace_are_found_by_the_namespace_file() -> None:
    assert os.getpid() in processes_in(Path("/proc/self/ns/net"))
    assert processes_in(Path("/nonexistent/netns")) == []


def test_the_pods_daemon_sockets_come_from_the_plugins_records(tmp_path: Path) -> None:
    def record(container: str, daemon: str) -> AttachmentRecord:
        return AttachmentRecord(
            container_id=container,
            ifname="eth0",
            netns=f"/var/run/netns/{container}",
            pod_namespace="ns",
            pod_name=container,
            gateway_name="gw",
            backend="wireguard-go" if daemon else "kernel",
            daemon=daemon,
            public_key="k",
            pod_ip="10.244.16.2",
            default_gateway="10.244.16.1",
        )

    first, second = tmp_path / "node0", tmp_path / "node1"
    attachment_state.write(str(first), record("a", "wgc000000000001"))
    attachment_state.write(str(second), record("b", "wgc000000000002"))
    attachment_state.write(str(second), record("c", ""))  # the kernel module: no daemon
    (second / "broken.eth0.json").write_text("{")

    sockets = pod_daemon_sockets([first, second, tmp_path / "absent"], Path("/run/wg"))

    assert sockets == [Path("/run/wg/wgc000000000001.sock"), Path("/run/wg/wgc000000000002.sock")]
