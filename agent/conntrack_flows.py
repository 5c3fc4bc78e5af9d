"""UDP flows the kernel tracks in the calling thread's network namespace (the agent's host
namespace on the dataplane thread), read with pyroute2's conntrack client.

The kernel tracks flows in a namespace only once some rule there uses conntrack: each gateway's
egressgw_reply_<port> table has one (agent/reply_source.py).
"""

from __future__ import annotations

import socket
from collections.abc import Collection
from contextlib import closing

from pyroute2 import Conntrack

from agent.session_handover import UdpFlow


def udp_flows_to(destinations: Collection[tuple[str, int]]) -> list[UdpFlow]:
    """Flows whose original direction goes to one of `destinations` (ip, port). Empty when
    nothing is asked for, without opening a socket."""
    if not destinations:
        return []
    wanted = set(destinations)
    found: list[UdpFlow] = []
    with closing(Conntrack()) as conntrack:
        for entry in conntrack.dump_entries():
            tuple_orig = entry.tuple_orig
            if tuple_orig.proto != socket.IPPROTO_UDP:
                continue
            if (tuple_orig.daddr, tuple_orig.dport) not in wanted:
                continue
            found.append(
                UdpFlow(
                    source_ip=str(tuple_orig.saddr),
                    source_port=int(tuple_orig.sport),
                    dest_ip=str(tuple_orig.daddr),
                    dest_port=int(tuple_orig.dport),
                )
            )
    return found
