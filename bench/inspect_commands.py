"""How long `egressgw status` and `egressgw plan` take, as processes a user starts, with N Ready
configurations (a real controller, Temporal dev server, Kubernetes control plane and the ARM
emulator without added latency: bench/control_plane_stack.py), and how many ARM reads a plan
makes. Figures: wall time per run (median of --runs), the process's start-up (`--help`) for
comparison, and ARM GETs per plan.
    .venv/bin/python bench/inspect_commands.py [--configurations N] [--runs R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from control_plane_stack import SGC_NAMESPACE, BenchStack, bench_stack

from contracts import kube_names


def timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    return time.monotonic() - started, done


def manifest(path: Path, stack: BenchStack, names: list[str]) -> Path:
    path.write_text(
        yaml.safe_dump_all(
            {
                "apiVersion": kube_names.GROUP_VERSION,
                "kind": kube_names.SGC_KIND,
                "metadata": {"name": name, "namespace": SGC_NAMESPACE},
                "spec": stack.vmss_spec(31),
            }
            for name in names
        )
    )
    return path


async def measure(
    stack: BenchStack, label: str, command: list[str], runs: int
) -> tuple[float, Any]:
    times: list[float] = []
    done: subprocess.CompletedProcess[str] | None = None
    for _ in range(runs):
        stack.arm.request_log.clear()
        elapsed, done = await asyncio.to_thread(timed, command)
        assert done.returncode in (0, 1), done.stderr
        times.append(elapsed)
    assert done is not None
    gets = stack.arm.request_log.reads()
    median = statistics.median(times)
    print(f"{label}: {median:.2f} s median of {runs} (min {min(times):.2f} s), {gets} ARM GETs")
    return median, done


async def main(configurations: int, runs: int) -> None:
    async with bench_stack() as stack:
        names = [f"sgc-{i:03d}" for i in range(configurations)]
        for name in names:
            await stack.create_sgc(name, stack.vmss_spec(31))
        started = time.monotonic()
        await stack.wait_ready(set(names), timeout=600)
        print(f"{configurations} configurations Ready in {time.monotonic() - started:.1f} s")
        egressgw = [sys.executable, "-m", "egressgw"]
        admin = str(stack.kube.paths.admin_kubeconfig)
        await measure(stack, "egressgw --help (start-up)", [*egressgw, "--help"], runs)
        status = [*egressgw, "status", "--kubeconfig", admin, "-o", "json"]
        status += ["--temporal-address", stack.temporal.address, "--state-dir", str(stack.root)]
        _, shown = await measure(stack, f"status, {configurations} configurations", status, runs)
        phases = [item["phase"] for item in json.loads(shown.stdout)["items"]]
        assert phases.count("Ready") == configurations, phases
        plan = [*egressgw, "plan", "--kubeconfig", admin, "-o", "json"]
        plan += ["--cloud-config", str(stack.root / "azure.json")]
        plan += ["--azure-ca-file", str(stack.arm.ca_path), "-f"]
        one_new = manifest(stack.root / "new.yaml", stack, ["new-one"])
        await measure(stack, "plan, 1 new configuration", [*plan, str(one_new)], runs)
        existing = manifest(stack.root / "all.yaml", stack, names)
        _, planned = await measure(
            stack, f"plan, {configurations} applied configurations", [*plan, str(existing)], runs
        )
        unchanged = sum(1 for item in json.loads(planned.stdout)["items"] if not item["changes"])
        print(f"  {unchanged} of {configurations} planned with no changes")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configurations", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.configurations, args.runs))
