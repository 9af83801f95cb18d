"""How our errors answer over HTTP in a host framework's own routes (FastAPI, aiohttp).

The REST app maps errors itself (``wire.encode_error``); the integrations reuse that
mapping for the user's handlers, so a ``QueryError`` from a bad sort key is a 400 with
the section 8 body, not a 500: QueryError 400, ValidationError 422, EntityStateError
404, ConflictError/IntegrityError 409, store failures 503 naming the source.
"""

from __future__ import annotations

from typing import Any

from .. import wire
from ..errors import DataSourceError, EntityStateError

__all__ = ["error_body"]


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The HTTP status and ``{"error": {"type", "message", "details"}}`` body for ``exc``."""
    if isinstance(exc, EntityStateError):
        return 404, {"error": {"type": "NotFound", "message": str(exc), "details": None}}
    status, body = wire.encode_error(exc)
    if isinstance(exc, DataSourceError) and status == 503:
        # The source's name is safe to tell (its URL is not): the operator knows where to look.
        body["error"]["details"] = {"source": exc.source}
    return status, body
