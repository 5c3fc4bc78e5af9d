"""How activities exchange raw ARM JSON with the SDK: responses read as the JSON Azure sent
(`cls=raw_json`), request bodies sent as exactly the JSON the planners built."""

from __future__ import annotations

import io
import json
from typing import IO, Any, cast


def raw_json(pipeline_response: Any, _deserialized: Any, _headers: Any) -> Any:
    """`cls=` callback for get/begin_* calls: the response body as parsed JSON."""
    return pipeline_response.http_response.json()


def raw_json_list(items: Any) -> Any:
    """`cls=` callback for list calls: the page's models as plain JSON dicts."""
    return [item.as_dict() for item in items]


def json_body(document: object) -> IO[bytes]:
    """A request body; the SDK sends the stream's bytes unchanged as application/json."""
    return io.BytesIO(json.dumps(document, separators=(",", ":")).encode())


def as_object(value: Any) -> dict[str, Any]:
    """A JSON object from a response (an empty one for anything else)."""
    return cast(dict[str, Any], value) if isinstance(value, dict) else {}
