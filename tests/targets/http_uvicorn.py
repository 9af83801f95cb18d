"""The http target over a real socket: the ``http`` adapter -> uvicorn on loopback -> memory.

The same server as the in-process ``http`` target, run by ``uvicorn.Server`` on a socket
bound to a free port of 127.0.0.1, so real HTTP/1.1 (keep-alive, percent-encoding, content
lengths) is on the path. The socket is bound and listening before uvicorn starts, so the
first request cannot race the startup.

Starting uvicorn costs tens of milliseconds, which over the conformance suite added up to
half of its run time; so the target shares one server for the whole session. It runs in a
thread of its own with its own event loop (each test has a fresh loop of its own), and
before each test the server's registry is put back in its just-connected state: every
served collection dropped and ensured again, on the server's loop. The client side (the
``http`` adapter, its connection pool) is still new for each test.
"""

from __future__ import annotations

import asyncio
import atexit
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import uvicorn

import diaspora_async as da

from . import Target
from .http import server_app, server_orm


@asynccontextmanager
async def serve(app: Any, lifespan: str = "off") -> AsyncIterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1 (a free port); yields the base URL.

    ``lifespan="on"`` runs the app's lifespan (startup before the first request).
    """
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says
    # TCP, and without it Nagle + delayed ACKs add 40 ms to every response.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan=lifespan, log_level="warning", http="h11", ws="none",
        timeout_graceful_shutdown=5,
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:  # the socket already accepts; this catches a failed start
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.005)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        try:
            await task
        finally:
            sock.close()


class SessionServer:
    """One uvicorn server over the standard models, in a thread with its own event loop."""

    def __init__(self) -> None:
        self.url = ""
        self._orm: da.Diaspora | None = None
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="http_uvicorn", daemon=True)

    def start(self) -> None:
        """Start the server and wait until it listens (or raise why it could not)."""
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError("the session's uvicorn server did not start within 30 s")
        if self._error is not None:
            raise RuntimeError("the session's uvicorn server failed to start") from self._error

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with server_orm() as orm, serve(server_app(orm)) as url:
                self._orm, self.url = orm, url
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:
            self._error = exc
            raise
        finally:
            self._ready.set()

    async def _reset_here(self) -> None:
        assert self._orm is not None
        for model in self._orm.models.values():
            meta = model.__meta__
            for source in meta.source_names:
                ds = self._orm.data_sources[source]
                schema = meta.schema_for(source)
                await ds.adapter.drop(schema)
                # The base drop deletes what find sees, which leaves tombstones behind.
                await ds.adapter.purge(schema, datetime.max.replace(tzinfo=UTC))
                ds.forget_schema(meta.name)
                await ds.ensure(schema)

    async def reset(self) -> None:
        """Back to the just-connected state: every collection empty (run on the server's loop)."""
        future = asyncio.run_coroutine_threadsafe(self._reset_here(), self._loop)
        await asyncio.wrap_future(future)

    def stop(self) -> None:
        """Stop uvicorn and close the server's registry (at interpreter exit)."""
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=10)


_server: SessionServer | None = None


def session_server() -> SessionServer:
    """The session's server, started on first use and stopped when the process exits."""
    global _server
    if _server is None:
        server = SessionServer()
        server.start()
        atexit.register(server.stop)
        _server = server
    return _server


@asynccontextmanager
async def _open() -> AsyncIterator[dict[str, Any]]:
    server = session_server()
    await server.reset()
    yield {"base_url": server.url + "/api", "max_size": 4}


TARGET = Target(id="http_uvicorn", label="http", open=_open)
