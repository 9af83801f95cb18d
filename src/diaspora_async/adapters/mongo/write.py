"""Reading the outcome of one conditional ``bulk_write`` (``MongoAdapter.write``).

Sits between the adapter's ``write`` and the driver's bulk result: the batch is one
unordered ``bulk_write`` of guarded ``ReplaceOne`` ops and, for creates, ``InsertOne``
ops (``collection.write_ops``), whose result (or ``BulkWriteError.details``, the same
document) says which ops failed and how many matched. This module turns that into
per-row verdicts:

* nothing failed and every op inserted, matched or upserted: the common path, nothing
  refused, no further round trip;
* a duplicate ``_id`` on an upsert: its guard refused the row (the filter missed the
  stored document, so the upsert tried to insert); on an insert (a create): the id is
  stored, live (refused) or as a tombstone (refused, or to be replaced if older);
* a duplicate on another (declared unique) index: either a live row breaking the index,
  or a refused row whose insert attempt happened to hit that index before ``_id``
  (SecantusDB checks the unique index first);
* fewer matches than ops: some plain replace (a row expecting a revision) missed, and
  the count does not say which.

Only the last three cases read the stored revisions (``Adapter.revisions``), once, to
tell a stale row from a replay (the store holds the row's own revision: not reported),
a lost race (the guard admits the row now: written again) and a unique violation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..base import REV, Revision, Row

__all__ = ["DUPLICATE", "Outcome", "admits", "read_outcome", "same_revision"]

DUPLICATE = frozenset({11000, 11001, 12582})


@dataclass(slots=True)
class Outcome:
    """What a bulk result tells, by row index.

    Attributes:
        refused: ops whose insert or upsert hit a duplicate ``_id`` (stored already).
        clashes: ops that hit another unique index, with the server's message.
        unsure: plain replaces that may have missed (the matched count fell short).
        other: the first write error that is not a duplicate key, if any.
    """

    refused: list[int] = field(default_factory=list)
    clashes: dict[int, str] = field(default_factory=dict)
    unsure: list[int] = field(default_factory=list)
    other: str | None = None

    @property
    def clean(self) -> bool:
        """True on the common path: every row applied (nothing to look up)."""
        return not (self.refused or self.clashes or self.unsure or self.other)

    def suspects(self) -> list[int]:
        """Every row index the stored revisions must decide, in row order."""
        return sorted({*self.refused, *self.clashes, *self.unsure})


def _on_id(error: Mapping[str, Any]) -> bool:
    """Whether a duplicate-key error is on ``_id`` (``keyPattern`` when the server gives
    it, as MongoDB >= 4.2 and SecantusDB do; the message otherwise)."""
    pattern = error.get("keyPattern")
    if isinstance(pattern, Mapping):
        return list(pattern) == ["_id"]
    return " index: _id_ " in str(error.get("errmsg", ""))


def read_outcome(details: Mapping[str, Any], ops: int, plain: Sequence[int]) -> Outcome:
    """Classify a bulk result of ``ops`` ops, ``plain`` being the indexes of the plain
    replaces (no upsert).

    Every insert or upsert op inserted, matched, upserted or failed, so ``ops`` minus
    those is the number of plain replaces that matched nothing.
    """
    out = Outcome()
    errors = details.get("writeErrors") or []
    for error in errors:
        index = int(error["index"])
        if error.get("code") not in DUPLICATE:
            out.other = out.other or str(error.get("errmsg", error))
        elif _on_id(error):
            out.refused.append(index)
        else:
            out.clashes[index] = str(error.get("errmsg", ""))
    if details.get("writeConcernErrors"):
        out.other = out.other or str(details["writeConcernErrors"][0].get("errmsg", ""))
    if plain:
        done = len(errors) + sum(
            int(details.get(n, 0)) for n in ("nInserted", "nMatched", "nUpserted")
        )
        if done < ops:
            failed = {int(e["index"]) for e in errors}
            out.unsure = [i for i in plain if i not in failed]
    return out


def admits(held: Revision | None, rev: str, expect: Sequence[str | None] | None, i: int) -> bool:
    """The revision guard of ``Adapter.write`` for row ``i``, on a stored revision read
    back (``held``: (revision, is tombstone), None when absent)."""
    if expect is not None:
        wanted = expect[i]
        if wanted is None:
            return held is None or (held[1] and (held[0] or "") < rev)
        return held is not None and not held[1] and (held[0] or "") == wanted
    return held is None or (held[0] or "") < rev


def same_revision(held: Revision | None, row: Row) -> bool:
    """Whether the store holds this row's exact revision: a replay, counted as applied."""
    return held is not None and held[0] == row[REV]
