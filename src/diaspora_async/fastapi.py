"""FastAPI integration: the ORM's lifespan, exception handlers, and the REST app mounted
with its routes in the host app's OpenAPI document (DESIGN.md 9).

::

    from diaspora_async.fastapi import install_exception_handlers, lifespan, mount

    app = FastAPI(lifespan=lifespan(orm))
    install_exception_handlers(app)
    mount(app, orm, "/api")          # /api/{collection}... listed in /docs too

Model classes are pydantic types, so ``response_model=Article``, ``list[Article]`` and
request bodies from ``Article.schema_for("create" | "patch")`` work as they are.
Needs the ``fastapi`` package (``pip install diaspora_async[server] fastapi``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.applications import Starlette

from .errors import DiasporaError
from .server import create_app
from .server.errors import error_body
from .server.openapi import build_openapi

if TYPE_CHECKING:
    from .registry import Diaspora

__all__ = ["error_response", "install_exception_handlers", "lifespan", "mount"]


def lifespan(orm: Diaspora) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """A FastAPI ``lifespan=``: connects ``orm`` at startup, closes it at shutdown."""

    @asynccontextmanager
    async def run(app: Any) -> AsyncIterator[None]:
        async with orm:
            yield

    return run


def error_response(exc: BaseException) -> JSONResponse:
    """The JSON response for one of our errors (the body shape of DESIGN.md 8)."""
    status, body = error_body(exc)
    return JSONResponse(body, status)


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    return error_response(exc)


def install_exception_handlers(app: FastAPI) -> None:
    """Answer ``DiasporaError``s raised in the app's own routes as HTTP errors:
    QueryError 400, ValidationError 422, EntityStateError 404, ConflictError 409, store
    failures 503 naming the source (never a traceback)."""
    app.add_exception_handler(DiasporaError, _handle)


def mount(app: FastAPI, orm: Diaspora, path: str = "/api", **options: Any) -> Starlette:
    """Mount ``create_app(orm, **options)`` at ``path`` and list its routes in the host
    app's OpenAPI document (``/docs``), as the REST app's own document describes them.

    Returns:
        The mounted REST app.
    """
    path = "/" + path.strip("/") if path.strip("/") else ""
    rest = create_app(orm, **options)
    app.mount(path or "/", rest)
    host_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = host_openapi()
        served = {m.__meta__.collection: m for m in _served(orm, options.get("models"))}
        extra = build_openapi(
            served,
            title="",
            prefix=path + _prefix(options.get("prefix", "")),
            max_limit=options.get("max_limit", 1000),
        )
        doc.setdefault("paths", {}).update(extra["paths"])
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in extra["components"]["schemas"].items():
            schemas.setdefault(name, schema)  # the host's own (pydantic's) come first
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
    return rest


def _prefix(prefix: str) -> str:
    return "/" + prefix.strip("/") if prefix.strip("/") else ""


def _served(orm: Diaspora, models: Any) -> list[Any]:
    if models is None:
        return list(orm.models.values())
    return [orm.models[m] if isinstance(m, str) else m for m in models]
