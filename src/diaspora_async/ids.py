"""Client-side entity ids: UUIDv7 strings, time-ordered so ``sort by id`` is creation order.

Generated at spawn, so a fan-out write needs no round trip to learn its id and the same
entity is found under the same id in every source. Within one millisecond a counter
keeps ids strictly increasing in this process. Random bits come from ``os.urandom`` read
in blocks, since one system call per id would dominate bulk spawning.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["new_id"]

_lock = threading.Lock()
_last_ms = 0
_counter = 0
_pool = b""
_BLOCK = 8 * 512


def new_id() -> str:
    """Return a new UUIDv7 (RFC 9562) as its canonical 36-character string."""
    global _last_ms, _counter, _pool
    with _lock:
        ms = time.time_ns() // 1_000_000
        if len(_pool) < 8:
            _pool = os.urandom(_BLOCK)
        rand, _pool = int.from_bytes(_pool[:8]), _pool[8:]
        if ms > _last_ms:
            _last_ms = ms
            _counter = rand & 0x3FF  # a random start, with room to count upwards
        else:
            _counter += 1
            if _counter > 0xFFF:  # 4096 ids in one ms: borrow the next millisecond
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        counter = _counter
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | (rand >> 2)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
