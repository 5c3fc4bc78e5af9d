"""Content types for PATCH requests.

kubernetes_asyncio sends a dict body as `application/json-patch+json` unless told otherwise,
which the API server rejects for a merge-style body; every patch names its type from here. Its
type stubs omit `_content_type`, hence a keyword mapping rather than a literal keyword argument.
"""

from __future__ import annotations

from typing import Any, Final

MERGE_PATCH: Final[dict[str, Any]] = {"_content_type": "application/merge-patch+json"}
