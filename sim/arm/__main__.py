"""`python -m sim.arm --state-dir DIR [--port P] [--seed]`: run the ARM emulator standalone."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path

from sim.arm.server import ArmEmulator
from sim.topology import Topology


async def _serve(state_dir: Path, port: int, seed: bool, host: str) -> None:
    emulator = ArmEmulator(state_dir, host=host, port=port)
    if seed:
        emulator.seed(Topology())
    await emulator.start()
    print(f"ARM emulator listening on {emulator.url} (CA: {emulator.ca_path})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await emulator.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sim.arm", description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", action="store_true", help="seed the default Topology")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.state_dir, args.port, args.seed, args.host))


if __name__ == "__main__":
    main()
