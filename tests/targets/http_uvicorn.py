"""The http target over a real socket: the ``http`` adapter -> uvicorn on loopback -> memory.

The same server as the in-process ``http`` target, run by ``uvicorn.Server`` as a task
of the test's event loop on a socket bound to a free port of 127.0.0.1, so real HTTP/1.1
(keep-alive, percent-encoding, content lengths) is on the path. The socket is bound and
listening before uvicorn starts, so the first request cannot race the startup.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

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


@asynccontextmanager
async def _open() -> AsyncIterator[dict[str, Any]]:
    async with server_orm() as orm, serve(server_app(orm)) as url:
        yield {"base_url": url + "/api", "max_size": 4}


TARGET = Target(id="http_uvicorn", label="http", open=_open)
