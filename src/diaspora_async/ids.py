"""Client-side entity ids: UUIDv7 strings, time-ordered so ``sort by id`` is creation order.

Generated at spawn, so a fan-out write needs no round trip to learn its id and the same
entity is found under the same id in every source. Within one millisecond a counter
keeps ids strictly increasing in this process. Spawning is on the bulk hot path, so the
random bits are read from ``os.urandom`` in blocks and the timestamp part of the string
is formatted once per millisecond.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["new_id"]

_lock = threading.Lock()
_last_ms = -1
_counter = 0
_prefix = ""
_pool = b""
_offset = 0
_BLOCK = 8 * 512


def new_id() -> str:
    """Return a new UUIDv7 (RFC 9562) as its canonical 36-character string."""
    global _last_ms, _counter, _prefix, _pool, _offset
    with _lock:
        if _offset >= len(_pool):
            _pool, _offset = os.urandom(_BLOCK), 0
        rand = int.from_bytes(_pool[_offset : _offset + 8])
        _offset += 8
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _counter = rand >> 54  # a random start below 1024, with room to count upwards
            stamp = f"{ms:012x}"
            _prefix = f"{stamp[:8]}-{stamp[8:]}-7"
        else:
            _counter += 1
            if _counter > 0xFFF:  # 4096 ids in one ms: borrow the next millisecond
                _last_ms += 1
                _counter = 0
                stamp = f"{_last_ms:012x}"
                _prefix = f"{stamp[:8]}-{stamp[8:]}-7"
        counter, prefix = _counter, _prefix
    # 80 bits after the version nibble: 4 zero bits, the 12-bit counter, variant bits 10,
    # 62 random bits. bytes.hex() is several times faster than int formatting here.
    tail = ((counter << 64) | (1 << 63) | (rand & 0x3FFF_FFFF_FFFF_FFFF)).to_bytes(10).hex()
    return f"{prefix}{tail[1:4]}-{tail[4:8]}-{tail[8:]}"
