"""Client-side entity ids: UUIDv7 strings, time-ordered so ``sort by id`` is creation order.

Generated at spawn, so a fan-out write needs no round trip to learn its id and the same
entity is found under the same id in every source. Within one millisecond a counter
keeps ids strictly increasing in this process. Spawning is on the bulk hot path, so
``new_ids(n)`` takes the lock, the clock and the random bits once per batch, and the
timestamp part of the string is formatted once per millisecond.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["new_id", "new_ids"]

_lock = threading.Lock()
_last_ms = -1
_counter = 0


def _reserve(n: int, rand: bytes) -> list[tuple[int, int]]:
    """Reserve ``n`` strictly increasing (millisecond, counter) pairs."""
    global _last_ms, _counter
    out = []
    with _lock:
        ms = time.time_ns() // 1_000_000
        for i in range(n):
            if ms > _last_ms:
                _last_ms = ms
                _counter = rand[8 * i] >> 6  # a random start below 4, room to count upwards
            else:
                _counter += 1
                if _counter > 0xFFF:  # 4096 ids in one ms: borrow the next millisecond
                    _last_ms += 1
                    _counter = 0
            out.append((_last_ms, _counter))
    return out


_HEX3 = [f"{i:03x}" for i in range(4096)]
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}  # RFC 9562 variant 10


_buffer = b""
_offset = 0
_BUFFER = 8 * 512


def _random(n: int) -> bytes:
    """``8 * n`` random bytes; small requests come from a buffer (one syscall per 512)."""
    global _buffer, _offset
    size = 8 * n
    if size > _BUFFER:
        return os.urandom(size)
    with _lock:
        if _offset + size > len(_buffer):
            _buffer, _offset = os.urandom(_BUFFER), 0
        out = _buffer[_offset : _offset + size]
        _offset += size
    return out


def new_ids(n: int) -> list[str]:
    """Return ``n`` new UUIDv7 strings (RFC 9562), in increasing order."""
    rand = _random(n)
    digits = rand.hex()  # 16 random hex digits per id, formatted in one C call
    prefixes: dict[int, str] = {}
    ids = []
    for i, (ms, counter) in enumerate(_reserve(n, rand)):
        prefix = prefixes.get(ms)
        if prefix is None:
            stamp = f"{ms:012x}"
            prefix = prefixes[ms] = f"{stamp[:8]}-{stamp[8:]}-7"
        r = digits[16 * i : 16 * i + 16]
        # version 7 | 12-bit counter | variant + 62 random bits (one digit spent on it)
        ids.append(f"{prefix}{_HEX3[counter]}-{_VARIANT[r[0]]}{r[1:4]}-{r[4:]}")
    return ids


def new_id() -> str:
    """Return a new UUIDv7 (RFC 9562) as its canonical 36-character string."""
    rand = _random(1)
    ((ms, counter),) = _reserve(1, rand)
    stamp = f"{ms:012x}"
    r = rand.hex()
    return f"{stamp[:8]}-{stamp[8:]}-7{_HEX3[counter]}-{_VARIANT[r[0]]}{r[1:4]}-{r[4:]}"
