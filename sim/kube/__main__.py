"""`python -m sim.kube --state-dir DIR [--port P] [--crd-dir D]`: run the emulator standalone."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from sim.kube.server import KubeEmulator


async def _serve(args: argparse.Namespace) -> None:
    emulator = KubeEmulator(args.state_dir, host=args.host, port=args.port, crd_dir=args.crd_dir)
    await emulator.start()
    kubeconfig = args.state_dir / "kubeconfig"
    emulator.write_kubeconfig(kubeconfig)
    print(emulator.url, flush=True)
    print(f"kubeconfig: {kubeconfig}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await emulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sim.kube", description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--crd-dir", type=Path, default=None)
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
