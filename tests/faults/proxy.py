"""A loopback TCP proxy in front of a real service, which can break connections on purpose.

Every connection a client opens to the proxy is forwarded to the service. Faults are
injected at the TCP level, the way a network or a crashed middlebox produces them:

* ``reset_before``: the probability that a client's request chunk is dropped and both
  sides are reset (RST) before the service sees it: the write did not happen.
* ``reset_after``: the probability that a request chunk IS forwarded, and the service's
  reply is then dropped and both sides reset: the write happened, the reply was lost
  (the "unknown outcome" case every retry, replay and compensation must survive).
* ``reset_all()`` resets every open connection now.
* ``blackhole``: while True, the proxy keeps accepting connections and reading what
  clients send, but forwards nothing and answers nothing, and closes nothing: a frozen
  server or a black-holed route, the case only a timeout ends. A new connection is not
  even connected to the service. ``heal()`` ends it and resets every connection that
  swallowed data meanwhile (its byte stream has a hole, so it cannot be resumed).

Decisions are drawn from a seeded ``random.Random``, so a failing run can be replayed
with the same seed (the order of connections still depends on scheduling).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["FaultProxy"]


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST, not FIN: SO_LINGER 0 then close (what a reset looks like)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Link:
    """One proxied connection: the client side and the service side."""

    def __init__(self, client: asyncio.StreamWriter, service: asyncio.StreamWriter) -> None:
        self.client = client
        self.service = service
        self.lose_reply = False
        self.closed = False
        self.swallowed = False  # black-holed data: the stream has a hole

    def reset(self) -> None:
        if not self.closed:
            self.closed = True
            _abort(self.client)
            _abort(self.service)


class FaultProxy:
    """Forwards connections to ``host:port`` and breaks them as configured.

    Attributes:
        accepted: connections accepted so far.
        resets: connections reset by a fault so far.
        blackhole: while True, nothing is forwarded or answered (see the module).
        swallowed: request chunks black-holed so far.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        seed: int = 0,
        reset_before: float = 0.0,
        reset_after: float = 0.0,
    ) -> None:
        self.host, self.port = host, port
        self.reset_before = reset_before
        self.reset_after = reset_after
        self.blackhole = False
        self.accepted = 0
        self.resets = 0
        self.swallowed = 0
        self._random = random.Random(seed)
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def heal(self) -> None:
        """No more faults from now on: open connections stay as they are, except those
        that lost data to the black hole, which are reset."""
        self.reset_before = self.reset_after = 0.0
        self.blackhole = False
        for link in list(self._links):
            if link.swallowed:
                link.reset()
                self.resets += 1

    def reset_all(self) -> None:
        """Reset every open connection now."""
        for link in list(self._links):
            link.reset()
            self.resets += 1

    async def _requests(self, link: _Link, reader: asyncio.StreamReader) -> None:
        try:
            while data := await reader.read(65536):
                if self.blackhole:
                    link.swallowed = True
                    self.swallowed += 1
                    continue
                draw = self._random.random()
                if draw < self.reset_before:
                    self.resets += 1
                    link.reset()
                    return
                link.service.write(data)
                await link.service.drain()
                if draw < self.reset_before + self.reset_after:
                    link.lose_reply = True  # delivered: the reply is what gets lost
        except (ConnectionError, OSError):
            pass
        finally:
            link.reset()

    async def _replies(self, link: _Link, reader: asyncio.StreamReader) -> None:
        try:
            while data := await reader.read(65536):
                if self.blackhole or link.swallowed:
                    link.swallowed = True  # held back: the client never sees it
                    continue
                if link.lose_reply:
                    self.resets += 1
                    link.reset()
                    return
                link.client.write(data)
                await link.client.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            link.reset()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.blackhole:  # accept and read, never connect: the handshake never comes
            await self._swallow(reader, writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            _abort(writer)
            return
        link = _Link(writer, up_writer)
        self._links.add(link)
        pipes = [
            asyncio.ensure_future(self._requests(link, reader)),
            asyncio.ensure_future(self._replies(link, up_reader)),
        ]
        self._tasks.update(pipes)
        try:
            # return_exceptions: pipes cancelled by running()'s exit end this quietly.
            await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            self._tasks.difference_update(pipes)
            self._links.discard(link)

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A connection accepted while black-holed: read and drop until the client gives
        # up (or heal(), which ends it with a reset: it never reached the service).
        link = _Link(writer, writer)
        link.swallowed = True
        self._links.add(link)
        try:
            while await reader.read(65536):
                self.swallowed += 1
        except (ConnectionError, OSError):
            pass
        finally:
            self._links.discard(link)
            link.reset()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[int]:
        """Serve on 127.0.0.1 and yield the port."""
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        try:
            yield server.sockets[0].getsockname()[1]
        finally:
            server.close()
            for link in list(self._links):
                link.reset()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()
