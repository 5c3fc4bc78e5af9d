"""The throughput bench's environment (bench/netns_bench_env.py): both measured paths carry a
TCP stream and really are the paths the bench names (the internet sees the gateway's secondary IP,
or the direct tunnel's address), and taking the environment down leaves nothing behind. No
throughput figure is asserted: that is the bench's to print.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pyroute2 import netns

from agent import wireguard_uapi
from bench.netns_bench_env import SECONDARY_IP, Route, throughput_env

pytestmark = pytest.mark.needs_root


def _root_links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout


def _root_nat_rules() -> set[str]:
    saved = subprocess.run(
        ["iptables-save", "-t", "nat"], capture_output=True, text=True, check=True
    ).stdout
    return {line for line in saved.splitlines() if line.startswith(("-A", ":"))}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_both_paths_carry_traffic_and_teardown_leaves_nothing(net_tag: str) -> None:
    nat_before = _root_nat_rules()

    with throughput_env(net_tag) as env:
        via_gateway = env.transfer(Route.VIA_GATEWAY, 0.2)
        direct = env.transfer(Route.DIRECT, 0.2)
        pids = env.process_ids()
        namespaces = set(env.names.namespaces)
        assert namespaces <= set(netns.listnetns())

    assert via_gateway.source == SECONDARY_IP
    assert direct.source == env.expected_source(Route.DIRECT)
    assert via_gateway.byte_count > 0 and direct.byte_count > 0
    assert len(pids) == 5  # the sink and four wireguard-go daemons: gateway, 2 client, internet
    assert not [pid for pid in pids if _alive(pid)]
    assert not namespaces & set(netns.listnetns())
    assert not list(wireguard_uapi.SOCKET_DIR.glob(f"*{net_tag}*"))
    assert net_tag not in _root_links()
    assert _root_nat_rules() == nat_before  # nothing was built in the machine's own namespace


def test_an_interrupted_run_still_leaves_nothing(net_tag: str) -> None:
    with pytest.raises(KeyboardInterrupt), throughput_env(net_tag) as env:
        pids = env.process_ids()
        raise KeyboardInterrupt

    assert not [pid for pid in pids if _alive(pid)]
    assert not [name for name in netns.listnetns() if name.startswith(net_tag)]
    assert not list(wireguard_uapi.SOCKET_DIR.glob(f"*{net_tag}*"))
