"""`python -m sim.node_runtime --node-name N --kubeconfig K --state-dir D ...`: run one node's
runtime until SIGTERM or SIGINT (options: config.py, or --help)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from sim.node_runtime.config import ConfigError, parse_args
from sim.node_runtime.runtime import NodeRuntime


async def _serve(runtime: NodeRuntime) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await runtime.run(stop)


def main(argv: list[str] | None = None) -> None:
    try:
        config = parse_args(sys.argv[1:] if argv is None else argv)
    except ConfigError as err:
        print(f"node runtime: {err}", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {config.node_name} %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("sim").setLevel(config.log_level)
    asyncio.run(_serve(NodeRuntime(config)))


if __name__ == "__main__":
    main()
