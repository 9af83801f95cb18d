"""The Redis wire protocol (RESP2/RESP3) for the adapter's own request/reply exchanges.

Sits between ``adapter.py`` and a redis-py connection's socket streams: redis-py
opens the connection and performs the handshake (AUTH, SELECT, HELLO); after that the
adapter packs its commands with ``pack`` and reads exactly the replies it expects with
``read_replies``. Both exist for speed: redis-py's pure-Python parser awaits once per
element (an ``HGETALL`` of four fields is nine awaits), while this parser reads whatever
the socket has and decodes it synchronously, resuming where it stopped when a reply
spans several reads, so a 10,000-entity fetch costs one parse pass. Error replies come
back as exception objects in their place, so the caller reads every reply before
raising and the connection stays in step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.exceptions as rexc

__all__ = ["pack", "read_replies"]

_CHUNK = 65536


def pack(args: Sequence[Any]) -> bytes:
    """One command in RESP: bytes as is, str as UTF-8, int/float as ``repr``.

    The codec never hands over a bool, so ``True`` cannot turn into ``"True"`` here.
    """
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if type(arg) is str:
            data = arg.encode()
        elif type(arg) is bytes:
            data = arg
        else:
            data = repr(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _error(message: bytes) -> rexc.ResponseError:
    text = message.decode(errors="replace")
    if text.startswith("NOSCRIPT"):
        return rexc.NoScriptError(text)
    return rexc.ResponseError(text)


_AGGREGATES = frozenset(b"*%~")  # array, map, set
_BLOBS = frozenset(b"$=!")  # bulk string, verbatim string, bulk error


class _Parser:
    """Resumable RESP decoder: ``feed`` bytes until ``want`` replies are complete."""

    __slots__ = ("buf", "need", "pos", "replies", "stack", "want")

    def __init__(self, want: int) -> None:
        self.want = want
        self.buf = b""
        self.pos = 0
        self.need = 0  # bytes still missing for the bulk string being read, if known
        self.stack: list[list[Any]] = []  # open aggregates: [kind, items left, items]
        self.replies: list[Any] = []

    def feed(self, data: bytes) -> bool:
        """Add bytes; return True once every expected reply is complete."""
        self.buf = self.buf[self.pos :] + data if self.pos else self.buf + data
        self.pos = 0
        return self._parse()

    def _parse(self) -> bool:
        buf, pos, stack, replies = self.buf, self.pos, self.stack, self.replies
        size = len(buf)
        self.need = 0
        while len(replies) < self.want:
            end = buf.find(b"\r\n", pos)
            if end < 0:
                break
            kind = buf[pos]
            value: Any
            if kind in _BLOBS:
                length = int(buf[pos + 1 : end])
                if length < 0:
                    value, pos = None, end + 2
                else:
                    stop = end + 2 + length
                    if stop + 2 > size:
                        self.need = stop + 2 - size
                        break
                    value, pos = buf[end + 2 : stop], stop + 2
                    if kind == 61:  # '=' verbatim: "txt:" + text
                        value = value[4:]
                    elif kind == 33:  # '!' bulk error
                        value = _error(value)
            elif kind in _AGGREGATES:
                count = int(buf[pos + 1 : end])
                pos = end + 2
                if count < 0:
                    value = None
                elif count == 0:
                    value = {} if kind == 37 else []
                else:
                    stack.append([kind, count * 2 if kind == 37 else count, []])
                    continue
            elif kind == 58 or kind == 40:  # ':' integer, '(' big number
                value, pos = int(buf[pos + 1 : end]), end + 2
            elif kind == 43:  # '+' simple string
                value, pos = buf[pos + 1 : end], end + 2
            elif kind == 45:  # '-' error
                value, pos = _error(buf[pos + 1 : end]), end + 2
            elif kind == 95:  # '_' null
                value, pos = None, end + 2
            elif kind == 44:  # ',' double
                value, pos = float(buf[pos + 1 : end]), end + 2
            elif kind == 35:  # '#' boolean
                value, pos = buf[pos + 1 : end] == b"t", end + 2
            else:  # push/attribute frames are never requested: the stream is out of step
                raise rexc.InvalidResponse(f"unexpected RESP frame {buf[pos:end][:20]!r}")
            while stack:
                top = stack[-1]
                top[2].append(value)
                top[1] -= 1
                if top[1]:
                    break
                stack.pop()
                items = top[2]
                value = dict(zip(items[::2], items[1::2], strict=True)) if top[0] == 37 else items
            else:
                replies.append(value)
        self.pos = pos
        return len(replies) == self.want


async def read_replies(reader: asyncio.StreamReader | None, want: int) -> list[Any]:
    """Read exactly ``want`` replies from ``reader``.

    Raises:
        redis.exceptions.ConnectionError: the server closed the connection, or sent
            more than was asked for (the connection is out of step and must go).
    """
    if reader is None:
        raise rexc.ConnectionError("connection is not open")
    parser = _Parser(want)
    while True:
        if parser.need > _CHUNK:  # a large value: take it in one piece
            try:
                data = await reader.readexactly(parser.need)
            except asyncio.IncompleteReadError:
                data = b""
        else:
            data = await reader.read(_CHUNK)
        if not data:
            raise rexc.ConnectionError("Connection closed by server.")
        if parser.feed(data):
            if parser.pos != len(parser.buf):
                raise rexc.ConnectionError("unexpected data after the last reply")
            return parser.replies
