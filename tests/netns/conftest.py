"""Network tests: real namespaces, veth, wireguard-go, iptables. They need root and the tools
scripts/system-packages.sh installs; without them every test here is skipped with the reason.

Every name a test creates starts with its `net_tag` (unique per test), so tests never touch
each other's or the machine's own links, namespaces or WireGuard sockets.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_TOOLS = ("ip", "iptables-restore", "wireguard-go")


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "network namespace tests need root"
    absent = [
        tool for tool in _TOOLS if shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin") is None
    ]
    if absent:
        return f"missing {', '.join(absent)} (scripts/system-packages.sh installs them)"
    if not Path("/dev/net/tun").exists():
        return "no /dev/net/tun for wireguard-go"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _missing()
    if reason is None:
        return
    for item in items:
        if "tests/netns/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def net_tag() -> Iterator[str]:
    """A short unique prefix for this test's namespaces and links (interface names are at most
    15 characters, so keep what follows it short)."""
    yield "t" + uuid.uuid4().hex[:5]
