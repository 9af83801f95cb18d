"""Entity revisions: a hybrid logical clock, formatted so every store orders it alike.

A revision is a 24-character lowercase hex string: 12 digits of milliseconds since the
epoch, 4 of a logical counter, 8 of a per-process random node. Fixed width and one case
mean plain string comparison orders revisions in SQL (binary collation), Mongo, Lua and
Python alike, with no integer-width worries (Lua numbers are doubles). The node part
makes two processes' revisions distinct even in the same millisecond and count.

``next_revision(after)`` never goes backwards in this process and is always greater than
``after`` (the revision an entity was loaded or last written with), so a write based on
a read supersedes what it read, whatever the clocks of the machines involved say.
Revisions stored before revisions existed are absent (``None``): the oldest of all.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["LENGTH", "next_revision", "newest"]

LENGTH = 24
"""The length of every revision string."""

_lock = threading.Lock()
_last = 0  # (milliseconds << 16) | counter of the last revision issued here
_node = ""


def _reseed() -> None:
    global _node
    _node = os.urandom(4).hex()


_reseed()
if hasattr(os, "register_at_fork"):  # a forked child must not share its parent's node
    os.register_at_fork(after_in_child=_reseed)


def _clock(revision: str | None) -> int:
    """The (ms << 16 | counter) part of a revision; 0 for None or a foreign string."""
    if not revision:
        return 0
    try:
        return int(revision[:16], 16)
    except ValueError:
        return 0


def next_revision(after: str | None = None) -> str:
    """A new revision, greater than ``after`` and than every one issued here before."""
    global _last
    now = (time.time_ns() // 1_000_000) << 16
    with _lock:
        clock = max(now, _last + 1, _clock(after) + 1)
        _last = clock
    return f"{clock:016x}{_node}"


def newest(revisions: list[str | None]) -> str | None:
    """The greatest of ``revisions`` (None counts as the oldest)."""
    best: str | None = None
    for r in revisions:
        if r is not None and (best is None or r > best):
            best = r
    return best
