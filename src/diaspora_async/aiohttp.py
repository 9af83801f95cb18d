"""aiohttp integration: the ORM opened with the app, our errors as HTTP answers, and the
REST app served under a path of the aiohttp application (DESIGN.md 9).

::

    from diaspora_async.aiohttp import error_middleware, mount, orm_context

    app = web.Application(middlewares=[error_middleware])
    app.cleanup_ctx.append(orm_context(orm))
    mount(app, orm, "/api")

aiohttp does not host ASGI apps itself, so ``mount`` bridges its requests to the REST
app (one ASGI call per request; the app answers in one body, never a stream).
Needs the ``aiohttp`` package.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import DiasporaError
from .server import create_app
from .server.errors import error_body

if TYPE_CHECKING:
    from .registry import Diaspora

__all__ = ["error_middleware", "error_response", "mount", "orm_context"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def orm_context(orm: Diaspora) -> Callable[[web.Application], AsyncIterator[None]]:
    """For ``app.cleanup_ctx``: connects ``orm`` when the app starts, closes it at exit."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        async with orm:
            yield

    return context


def error_response(exc: BaseException) -> web.Response:
    """The JSON response for one of our errors (the body shape of DESIGN.md 8)."""
    status, body = error_body(exc)
    return web.json_response(body, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer ``DiasporaError``s raised by handlers as HTTP errors (QueryError 400,
    ValidationError 422, EntityStateError 404, ConflictError 409, store failures 503)."""
    try:
        return await handler(request)
    except DiasporaError as exc:
        return error_response(exc)


def mount(app: web.Application, orm: Diaspora, path: str = "/api", **options: Any) -> Any:
    """Serve ``create_app(orm, **options)`` under ``path`` of ``app``.

    Returns:
        The REST (ASGI) app.
    """
    path = "/" + path.strip("/") if path.strip("/") else ""
    rest = create_app(orm, **options)

    async def bridge(request: web.Request) -> web.Response:
        body = await request.read()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": request.scheme,
            "path": request.path[len(path) :] or "/",
            "raw_path": request.raw_path[len(path) :].split("?", 1)[0].encode(),
            "root_path": path,
            "query_string": request.query_string.encode(),
            "headers": [(k.lower().encode(), v.encode()) for k, v in request.headers.items()],
            "client": None,
            "server": None,
        }
        sent = False
        answer: dict[str, Any] = {"status": 500, "headers": [], "body": b""}

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")

        await rest(scope, receive, send)
        headers = {k.decode(): v.decode() for k, v in answer["headers"]}
        headers.pop("content-length", None)
        return web.Response(status=answer["status"], body=answer["body"], headers=headers)

    app.router.add_route("*", path + "/{tail:.*}", bridge)
    return rest
