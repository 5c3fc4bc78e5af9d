"""The plugin launchers and atomic file writes of the CNI manager (agent/cni/node_install.py),
and its flags (egressgw/cni_manager_flags.py)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cni.node_install import launcher_script, source_root, write_if_changed
from egressgw.cni_manager_flags import add_cni_manager_parser, cni_manager_options


def test_a_launcher_runs_the_plugin_module_isolated(tmp_path: Path) -> None:
    launcher = tmp_path / "kube-egress-cni"
    launcher.write_text(
        launcher_script(
            "kube-egress-cni", "agent.cni.plugin", python=sys.executable, root=source_root()
        )
    )
    launcher.chmod(0o755)
    assert launcher.read_text().startswith(f"#!{sys.executable} -IS\n")
    done = subprocess.run(
        [str(launcher)],
        input=b"",
        env={"CNI_COMMAND": "VERSION", "PYTHONPATH": "/nonexistent"},
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert b'"supportedVersions"' in done.stdout
    with pytest.raises(ValueError, match="cannot be used"):
        launcher_script("x", "m", python="/path with space/python", root="/r")


def test_write_if_changed_is_atomic_and_idempotent(tmp_path: Path) -> None:
    target = tmp_path / "f"
    assert write_if_changed(target, "a\n", 0o644)
    assert not write_if_changed(target, "a\n", 0o644)
    assert write_if_changed(target, "a\n", 0o755)  # the mode counts too
    assert write_if_changed(target, "b\n", 0o755)
    assert target.read_text() == "b\n" and sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_cni_manager_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["cni-manager", *argv])


def test_flags() -> None:
    options = cni_manager_options(
        parse("--node-name", "n1", "--cluster-cidrs", "10.244.0.0/16, 10.96.0.1/16"),
        {"MY_POD_NAMESPACE": "kube-system"},
    )
    settings = options.settings
    assert (settings.node_name, settings.namespace) == ("n1", "kube-system")
    assert settings.cluster_cidrs == ("10.244.0.0/16", "10.96.0.0/16")
    assert settings.exception_cidrs == ("169.254.169.254/32", "169.254.10.11/32")
    assert settings.conf_file == "01-egressgateway.conflist"
    assert settings.uninstall_configmap == "cni-uninstall"
    assert str(settings.socket_path) == "/var/run/egressgw/cni-manager.sock"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--node-name", ""], "--node-name is empty"),
        (["--node-name", "N_1"], "is not a Kubernetes node name"),
        (["--node-name", "n", "--exception-cidrs", "1.2.3.4/40"], "is not a CIDR"),
        (["--node-name", "n", "--cluster-cidrs", "fd00::/8"], "is not IPv4"),
        (["--node-name", "n", "--socket-path", "run/x.sock"], "not an absolute path"),
        (["--node-name", "n", "--cni-conf-file", "x.conf"], "must be a file name ending"),
        (["--node-name", "n", "--poll-interval", "0s"], "longer than zero"),
    ],
)
def test_bad_flags(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cni_manager_options(parse(*argv), {"MY_POD_NAMESPACE": "kube-system"})
