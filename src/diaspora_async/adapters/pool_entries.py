"""The two records ``pool.Pool`` keeps: an open connection with its ages, and a slot;
and the verdicts of its checkout check (``Pool._fitness``).

Plain data with no behaviour, kept apart so the pool module holds only the pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["FIT", "PING", "UNFIT", "Entry", "Slot"]

C = TypeVar("C")


@dataclass(eq=False, slots=True)
class Entry(Generic[C]):
    """An open connection and its ages (``Pool._clock`` seconds); hashed by identity."""

    conn: C
    created: float
    last_used: float


class Slot:
    """A place under ``max_size`` reserved for a connection that is still to be opened."""

    __slots__ = ()


# ``Pool._fitness``: use as it is; ping first (idle past the health-check interval); discard.
FIT, PING, UNFIT = 0, 1, 2
