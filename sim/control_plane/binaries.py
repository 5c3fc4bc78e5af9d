"""Where the control plane's binaries are: built from pinned Go modules by scripts/k8s-binaries
into a cache keyed by the pins (the first call on a fresh machine builds them, about 13 minutes on
2 cores; later calls return at once)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

SCRIPT: Final = Path(__file__).resolve().parents[2] / "scripts" / "k8s-binaries"
# A directory holding the binaries, instead of the script's cache (e.g. a CI cache restore).
BIN_DIR_ENV: Final = "EGRESSGW_K8S_BIN"
NAMES: Final = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "helm",
    "bridge",
    "ptp",
    "loopback",
    "host-local",
    "cnitool",
)


class BinariesError(RuntimeError):
    """The binaries are not there and could not be built."""


@dataclass(frozen=True)
class KubeBinaries:
    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def kubectl(self) -> Path:
        return self.path("kubectl")

    @property
    def helm(self) -> Path:
        return self.path("helm")

    def missing(self) -> list[str]:
        return [n for n in NAMES if not os.access(self.path(n), os.X_OK)]


def kube_binaries(*, build: bool = True) -> KubeBinaries:
    """The binaries' directory; builds what is missing unless `build` is False (then a missing
    binary is an error naming the command that builds it)."""
    override = os.environ.get(BIN_DIR_ENV)
    if override:
        found = KubeBinaries(Path(override))
        if found.missing():
            raise BinariesError(f"{BIN_DIR_ENV}={override} lacks {', '.join(found.missing())}")
        return found
    command = [str(SCRIPT)] if build else [str(SCRIPT), "--check"]
    # Progress of a build goes to our stderr; the last line of stdout is the directory.
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise BinariesError(
            "the Kubernetes binaries are not built; run scripts/k8s-binaries"
            if not build
            else f"scripts/k8s-binaries failed (exit {done.returncode})"
        )
    binaries = KubeBinaries(Path(lines[-1]))
    if binaries.missing():
        raise BinariesError(f"{binaries.directory} lacks {', '.join(binaries.missing())}")
    return binaries
