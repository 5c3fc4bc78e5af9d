"""Time from `helm install` of deploy/helm/egressgw into a dev stack started with
`--no-egressgw` to every chart pod Running and Ready, and to the sample configuration
(deploy/samples/sgc-public.yaml, applied right after the install) Ready. Needs root (the node
network and node runtimes run the chart's pods) and the cached Kubernetes binaries (helm,
kubectl). Prints one line per run and the medians.
    .venv/bin/python bench/helm_install.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from egressgw.dev.kube_seed import SYSTEM_NAMESPACE
from egressgw.dev.layout import DevPorts
from sim.control_plane.binaries import kube_binaries
from sim.ports import free_port_block

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "deploy" / "helm" / "egressgw"
SGC = REPO / "deploy" / "samples" / "sgc-public.yaml"
EGRESSGW = [sys.executable, "-m", "egressgw"]
RELEASE = "egw"
TIMEOUT = 600.0


def tool(binary: Path, kubeconfig: Path, *args: str) -> str:
    done = subprocess.run(
        [str(binary), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return done.stdout


def pods_ready(kubectl: Path, kubeconfig: Path, expected: int) -> bool:
    listed = json.loads(
        tool(
            kubectl,
            kubeconfig,
            "get",
            "pods",
            "-n",
            SYSTEM_NAMESPACE,
            "-l",
            f"app.kubernetes.io/instance={RELEASE}",
            "-o",
            "json",
        )
    )
    items: list[dict[str, Any]] = listed["items"]
    ready = [
        p
        for p in items
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
    ]
    return len(items) == expected and len(ready) == expected


def sgc_ready(kubectl: Path, kubeconfig: Path) -> bool:
    found = json.loads(
        tool(
            kubectl,
            kubeconfig,
            "get",
            "staticgatewayconfigurations",
            "-n",
            "egressgw-demo",
            "public-egress",
            "-o",
            "json",
        )
    )
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (found.get("status") or {}).get("conditions", [])
    )


def one_run(state_dir: Path) -> tuple[float, float]:
    binaries = kube_binaries()
    kubectl, helm = binaries.directory / "kubectl", binaries.directory / "helm"
    base = free_port_block(len(DevPorts().named()), start=31500)
    prefix = "b" + uuid.uuid4().hex[:5]
    subprocess.run(
        [
            *EGRESSGW,
            "dev",
            "up",
            "--detach",
            "--headless",
            "--no-egressgw",
            "--state-dir",
            str(state_dir),
            "--port-base",
            str(base),
            "--net-prefix",
            prefix,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        kubeconfig = state_dir / "kubeconfig"
        network = json.loads((state_dir / "network.json").read_text())
        expected = 2 + len(network["nodes"])  # controller replicas + one per node
        values = state_dir / "chart-values.json"
        values.write_text(
            subprocess.run(
                [*EGRESSGW, "dev", "chart-values", "--state-dir", str(state_dir)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        started = time.perf_counter()
        tool(
            helm,
            kubeconfig,
            "-n",
            SYSTEM_NAMESPACE,
            "install",
            RELEASE,
            str(CHART),
            "-f",
            str(values),
        )
        tool(kubectl, kubeconfig, "apply", "-f", str(SGC))
        pods_at = sgc_at = None
        while pods_at is None or sgc_at is None:
            now = time.perf_counter() - started
            if now > TIMEOUT:
                raise SystemExit(f"not ready after {TIMEOUT:.0f} s; logs in {state_dir}/logs")
            if pods_at is None and pods_ready(kubectl, kubeconfig, expected):
                pods_at = time.perf_counter() - started
            if sgc_at is None and sgc_ready(kubectl, kubeconfig):
                sgc_at = time.perf_counter() - started
            time.sleep(0.2)
        tool(kubectl, kubeconfig, "delete", "-f", str(SGC), "--wait=true")
        tool(helm, kubeconfig, "-n", SYSTEM_NAMESPACE, "uninstall", RELEASE, "--wait")
        return pods_at, sgc_at
    finally:
        subprocess.run([*EGRESSGW, "dev", "down", "--state-dir", str(state_dir)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    pods, sgcs = [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="egw-helm-") as tmp:
            pods_at, sgc_at = one_run(Path(tmp) / "state")
        pods.append(pods_at)
        sgcs.append(sgc_at)
        print(
            f"run {run + 1}: helm install -> every chart pod Running and Ready {pods_at:.1f} s, "
            f"sample configuration Ready {sgc_at:.1f} s",
            flush=True,
        )
    print(
        f"median of {args.runs}: pods {statistics.median(pods):.1f} s, "
        f"configuration {statistics.median(sgcs):.1f} s"
    )


if __name__ == "__main__":
    main()
