"""The log of our aiohttp servers (probe, health, metrics): a malformed request, which anyone who
reaches the port can send (a TLS client, a port scanner), is one WARNING line naming the peer and
what was wrong, not aiohttp's ERROR with a parser traceback."""

from __future__ import annotations

import logging
import re
from typing import Any, Final

from aiohttp.http_exceptions import HttpProcessingError

MAX_REASON_CHARS: Final = 200
# The bytes aiohttp quotes from the request (a header line may carry a credential) stay out.
_QUOTED_BYTES: Final = re.compile(r"""(bytearray\()?b(['"]).*?(?<!\\)\2\)?""")


def malformed_reason(error: HttpProcessingError) -> str:
    """aiohttp's message on one line: its lines joined, the parser's caret line and the quoted
    request bytes left out."""
    lines = [_QUOTED_BYTES.sub("", line).strip() for line in str(error.message).splitlines()]
    text = " ".join(line for line in lines if line and set(line) != {"^"})
    return (text.rstrip(" :.") or type(error).__name__)[:MAX_REASON_CHARS]


class ServerLog(logging.LoggerAdapter[logging.Logger]):
    """Give as `logger=` to an aiohttp AppRunner; everything else passes through unchanged."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        error = kwargs.get("exc_info")
        if isinstance(error, HttpProcessingError):
            # aiohttp's handle_error logs "Error handling request from %s" with the peer.
            peer = args[0] if args else "an unknown peer"
            self.logger.warning("malformed request from %s: %s", peer, malformed_reason(error))
            return
        super().log(level, msg, *args, **kwargs)


def server_log(name: str) -> ServerLog:
    return ServerLog(logging.getLogger(name), {})
