"""Changing a pod's network namespace from the plugin process.

The plugin moves itself into the pod's namespace once (`enter`, setns(2) through libc: Python
3.11's os has no setns), so everything it then runs (`ip`, `nft`, wireguard-go) and every sysctl
it writes acts there, and the Unix sockets it talks to (the manager's, wireguard-go's) are
reached by path as before. Reads and changes go through one `ip -batch` each: a plugin run costs
a handful of short processes, no netlink library.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CLONE_NEWNET = 0x40000000
_TOOL_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin")
_TIMEOUT_S = 20.0


class NetnsMissing(Exception):
    """The namespace path does not exist or is not a network namespace."""


class CommandFailed(Exception):
    """A tool exited non-zero; the message is its stderr (never a key: none is passed to one)."""


def enter(path: str) -> None:
    """Move this (single-threaded) process into the network namespace at `path`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NetnsMissing(f"network namespace {path} does not exist") from None
    except OSError as err:
        raise NetnsMissing(f"cannot open network namespace {path}: {err.strerror}") from None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise NetnsMissing(f"{path} is not a network namespace ({os.strerror(errno)})")
    finally:
        os.close(fd)


def find_tool(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The tool's path from PATH and the usual system directories (runtimes run plugins with a
    minimal environment); `name` itself when it is a path."""
    if "/" in name:
        return name
    path = (environ if environ is not None else os.environ).get("PATH", "")
    for directory in (*path.split(":"), *_TOOL_DIRS):
        if not directory:
            continue
        candidate = Path(directory) / name
        if os.access(candidate, os.X_OK) and not candidate.is_dir():
            return str(candidate)
    raise CommandFailed(f"{name} not found (looked in PATH and {', '.join(_TOOL_DIRS)})")


def run(argv: Sequence[str], stdin: str = "") -> str:
    try:
        done = subprocess.run(
            argv,
            input=stdin.encode(),
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise CommandFailed(f"{argv[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise CommandFailed(f"{Path(argv[0]).name} did not finish in {_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().replace("\n", "; ")
        raise CommandFailed(f"{Path(argv[0]).name}: {message or f'exit {done.returncode}'}")
    return done.stdout.decode(errors="replace")


@dataclass(frozen=True)
class Observed:
    """The namespace's links, IPv4 routes (all tables) and IPv4 rules, as `ip -j` prints them."""

    links: tuple[Mapping[str, Any], ...]
    routes: tuple[Mapping[str, Any], ...]
    rules: tuple[Mapping[str, Any], ...]

    def link(self, name: str) -> Mapping[str, Any] | None:
        for link in self.links:
            if link.get("ifname") == name:
                return link
        return None


class NetnsTools:
    """`ip` and `nft` in the current namespace (the pod's, after `enter`)."""

    def __init__(self) -> None:
        self.ip = find_tool("ip")
        self._nft = ""

    def observe(self) -> Observed:
        text = run(
            [self.ip, "-4", "-j", "-batch", "-"], "link show\nroute show table all\nrule show\n"
        )
        documents = [json.loads(line) for line in text.splitlines() if line.strip()]
        if len(documents) != 3 or not all(isinstance(d, list) for d in documents):
            raise CommandFailed("ip -j -batch printed something other than three JSON lists")
        links, routes, rules = documents
        return Observed(tuple(links), tuple(routes), tuple(rules))

    def batch(self, lines: Sequence[str], *, force: bool = False) -> str:
        """Run `ip` commands in one process. With `force`, a failing line does not stop the
        others (undoing: whatever is left of ours goes) and what failed is returned."""
        if not lines:
            return ""
        argv = [self.ip, *(["-force"] if force else []), "-batch", "-"]
        try:
            run(argv, "\n".join(lines) + "\n")
        except CommandFailed as err:
            if not force:
                raise
            return str(err)
        return ""

    def nft(self, script: str) -> None:
        if not self._nft:
            self._nft = find_tool("nft")
        run([self._nft, "-f", "-"], script)

    def nft_table_exists(self, family: str, table: str) -> bool:
        if not self._nft:
            self._nft = find_tool("nft")
        try:
            run([self._nft, "list", "table", family, table])
        except CommandFailed:
            return False
        return True


def write_sysctl(key: str, value: str) -> None:
    """/proc/sys/<key> as this process's namespace sees it (net.* is per namespace)."""
    with open(f"/proc/sys/{key}", "w") as handle:
        handle.write(value)
