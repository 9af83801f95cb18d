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
_MASK = 0x3FFF_FFFF_FFFF_FFFF  # 62 random bits after the variant bits


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


def new_ids(n: int) -> list[str]:
    """Return ``n`` new UUIDv7 strings (RFC 9562), in increasing order."""
    rand = os.urandom(8 * n)
    prefixes: dict[int, str] = {}
    ids = []
    for i, (ms, counter) in enumerate(_reserve(n, rand)):
        prefix = prefixes.get(ms)
        if prefix is None:
            stamp = f"{ms:012x}"
            prefix = prefixes[ms] = f"{stamp[:8]}-{stamp[8:]}-7"
        bits = int.from_bytes(rand[8 * i : 8 * i + 8]) & _MASK
        # 80 bits after the version nibble: 4 zero bits, the counter, variant 10, random.
        # bytes.hex() is several times faster than int formatting here.
        tail = ((counter << 64) | (1 << 63) | bits).to_bytes(10).hex()
        ids.append(f"{prefix}{tail[1:4]}-{tail[4:8]}-{tail[8:]}")
    return ids


def new_id() -> str:
    """Return a new UUIDv7 (RFC 9562) as its canonical 36-character string."""
    return new_ids(1)[0]
