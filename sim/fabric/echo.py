"""The "internet" echo: answers every UDP datagram and TCP connection with the source IP it saw,
and appends one JSON line per packet or connection to a record file.

Run in the internet namespace as its own process, so that whoever started it stops it by PID:
    ip netns exec <ns> python -m sim.fabric.echo --host 198.18.0.2 --port 7777 --records FILE
It prints "ready" once both sockets listen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast


@dataclass(frozen=True)
class EchoRecord:
    time: float
    proto: str  # "udp" or "tcp"
    src_ip: str
    src_port: int


def read_records(path: Path) -> list[EchoRecord]:
    """The records so far; a line still being written is left for the next read."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            raw = json.loads(line)
        except ValueError:
            continue
        out.append(
            EchoRecord(float(raw["time"]), raw["proto"], raw["src_ip"], int(raw["src_port"]))
        )
    return out


class _Recorder:
    def __init__(self, sink: IO[str]) -> None:
        self._sink = sink

    def record(self, proto: str, src: tuple[str, int]) -> bytes:
        line = {"time": time.time(), "proto": proto, "src_ip": src[0], "src_port": src[1]}
        self._sink.write(json.dumps(line) + "\n")
        self._sink.flush()
        return f"{src[0]}\n".encode()


class _UdpEcho(asyncio.DatagramProtocol):
    def __init__(self, recorder: _Recorder) -> None:
        self._recorder = recorder
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self._transport is not None
        self._transport.sendto(self._recorder.record("udp", addr), addr)


async def serve(host: str, port: int, records: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with records.open("a") as sink:
        recorder = _Recorder(sink)

        async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("peername")
            writer.write(recorder.record("tcp", (str(peer[0]), int(peer[1]))))
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        udp, _ = await loop.create_datagram_endpoint(
            lambda: _UdpEcho(recorder), local_addr=(host, port)
        )
        tcp = await asyncio.start_server(on_connection, host, port)
        print("ready", flush=True)
        try:
            await stop.wait()
        finally:
            tcp.close()
            await tcp.wait_closed()
            udp.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sim.fabric.echo")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=7777)
    parser.add_argument("--records", type=Path, required=True, help="JSON-lines file to append")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.records))


if __name__ == "__main__":
    main()
