"""Revision-guarded writes for one table: the statements behind ``Adapter.write``.

Sits beside the table plan (``plan.py``), which builds one ``WritePlan`` per model the
first time it writes. A batch is one multi-row INSERT per chunk whose conflict clause
(``Dialect.upsert``) replaces a stored row only where the guard admits the offered one:
no stored revision, or an older one (NULL is the oldest, compared as ''). Tombstones go
through the same statement with every field NULL and ``_del`` set, so they hold no
unique values. Texts are cached by shape (row count, tombstones or not), so the hot path
only lays out parameters.

Expectations (``persist(check=True)``) are per row, so that rare path is one statement
per row, in one transaction: an UPDATE guarded by the expected revision, or an upsert
that replaces only a tombstone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any

from ...rows import building
from ..base import DELETED, REV, Row
from .dialect import Upsert

if TYPE_CHECKING:
    from .plan import TablePlan

__all__ = ["WritePlan"]

Statement = tuple[str, list[Any]]
Spell = Callable[[str], str]


class WritePlan:
    """Upsert texts and row layout for ``Adapter.write`` on one table."""

    def __init__(self, plan: TablePlan, alias: str | None) -> None:
        self.plan = p = plan
        d = p.dialect
        rev, gone = p.columns[REV], p.deleted
        # Bound per row: id, the fields, the revision, then the deletion time. A batch of
        # live rows binds NULL for the last as a literal (one parameter less per row).
        self.width = len(p.rnames) + 1
        marks = [d.param] * len(p.rnames)
        self.live_marks = "(" + ", ".join([*marks, "NULL"]) + ")"
        self.mixed_marks = "(" + ", ".join([*marks, d.param]) + ")"
        self.wnames = [*p.rnames, DELETED]
        self.mixed_encoders = [*p.encoders, (len(p.rnames), d.encode_datetime)]
        cols = ", ".join([*(p.columns[n] for n in p.rnames), gone])
        self.prefix = f"INSERT INTO {p.table} ({cols}) VALUES "
        updated = (*(p.columns[n] for n in p.names[1:]), gone, rev)
        unique = any(spec.unique for spec in p.schema.fields.values())

        def newer(old: Spell, new: Spell) -> str:
            return f"COALESCE({old(rev)}, '') < {new(rev)}"

        def revive(old: Spell, new: Spell) -> str:  # expect None: only over a tombstone
            return f"{old(gone)} IS NOT NULL AND COALESCE({old(rev)}, '') < {new(rev)}"

        self.newer = d.upsert(Upsert(p.table, p.columns["id"], updated, newer, unique, alias))
        self.revive = d.upsert(Upsert(p.table, p.columns["id"], updated, revive, unique, alias))
        sets = ", ".join(f"{c} = {d.param}" for c in (*updated[:-2], rev, gone))
        self.expected = (
            f"UPDATE {p.table} SET {sets} WHERE {p.columns['id']} = {d.param} "
            f"AND {gone} IS NULL AND COALESCE({rev}, '') = {d.param}"
        )
        self.fast = bool(p.schema.fields)  # without fields a tombstone looks like a row
        self._sql: dict[tuple[int, bool, str], str] = {}

    # -- rows --------------------------------------------------------------------------
    def records(self, rows: Sequence[Row]) -> tuple[list[tuple[Any, ...]], bool]:
        """Rows as bound values in column order, and whether a tombstone is among them.

        Full copies are read with one C-level itemgetter each (the deletion time is the
        literal NULL then); a tombstone (or a row lacking a field) fails it, and the
        batch is laid out name by name with the deletion time bound.
        """
        p = self.plan
        if self.fast:
            try:
                return p.encode_columns(list(map(p.rgetter, rows)), p.encoders), False
            except KeyError:
                pass
        names = self.wnames
        records = [tuple([row.get(n) for n in names]) for row in rows]
        return p.encode_columns(records, self.mixed_encoders), True

    def sql(self, n: int, mixed: bool, clause: str) -> str:
        """The upsert of ``n`` rows (cached by shape)."""
        key = (n, mixed, clause)
        sql = self._sql.get(key)
        if sql is None:
            marks = self.mixed_marks if mixed else self.live_marks
            first = self.plan.dialect.first_row(marks)
            sql = self._sql[key] = self.prefix + ", ".join([first, *[marks] * (n - 1)]) + clause
        return sql

    # -- statements --------------------------------------------------------------------
    def write(self, rows: Sequence[Row], max_chars: int | None) -> list[Statement]:
        """The upserts of a batch that fits one chunk (usually one statement)."""
        if len(rows) == 1 and self.fast:  # entity.persist(): ``TablePlan.encode_row``'s way
            p = self.plan
            try:
                values = list(p.rgetter(rows[0]))
            except KeyError:  # a tombstone
                pass
            else:
                for i, enc in p.encoders:
                    if (v := values[i]) is not None:
                        values[i] = enc(v)
                return [(self.sql(1, False, self.newer), values)]
        return list(self.chunks(rows, max_chars, None))

    def chunks(
        self, rows: Sequence[Row], max_chars: int | None, chunk_rows: int | None
    ) -> Iterator[Statement]:
        """The upserts of ``rows``, lazily (as ``TablePlan.insert_chunks``)."""
        p = self.plan
        per = max(1, p.dialect.max_params // self.width)
        if chunk_rows is not None:
            per = min(per, max(1, chunk_rows))
        for lo in range(0, len(rows), per):
            hi = min(len(rows), lo + per)
            with building(hi - lo):  # encoding is synchronous: see rows.building
                values, mixed = self.records(rows[lo:hi])
                bounds = [(0, len(values))]
                if max_chars is not None and len(values) > 1:
                    bounds = p.size_chunks(values, max_chars)
                chunks = [
                    (self.sql(b - a, mixed, self.newer), list(chain.from_iterable(values[a:b])))
                    for a, b in bounds
                ]
            yield from chunks

    def expecting(
        self, rows: Sequence[Row], expect: Sequence[str | None]
    ) -> list[tuple[Statement, bool]]:
        """One statement per row for ``write(..., expect=)``, each with whether it is an
        upsert (True) or an UPDATE (False)."""
        names = self.wnames
        records = [tuple([row.get(n) for n in names]) for row in rows]
        values = self.plan.encode_columns(records, self.mixed_encoders)
        out: list[tuple[Statement, bool]] = []
        for record, wanted in zip(values, expect, strict=True):
            if wanted is None:
                out.append(((self.sql(1, True, self.revive), list(record)), True))
            else:  # SET fields, rev, del; then WHERE id and the expected revision
                out.append(((self.expected, [*record[1:], record[0], wanted]), False))
        return out
