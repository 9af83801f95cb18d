"""The in-memory adapter: the reference implementation every other adapter matches.

Rows live in a dict per collection, copied on the way in and out so no entity shares
mutable state with the store. Queries run through the reference matcher
(``query/match.py``); the conformance suite compares every other adapter with this one.
Instances are independent: two data sources never share data. Pass ``shared=name`` to
share one store between data sources (handy for tests of sync and fan-out).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from ..errors import IntegrityError
from ..query.ast import Node, Query
from ..query.match import compile_predicate, sort_rows
from ..rows import copy_row
from .base import DELETED, REV, Adapter, Capabilities, CollectionSchema, Revision, Row
from .pool_options import pop_timeout

__all__ = ["MemoryAdapter"]

_SHARED: dict[str, dict[str, dict[str, Row]]] = {}


class MemoryAdapter(Adapter):
    """Stores rows in process memory (``create_data_source("mem", "memory")``).

    Options: ``shared`` (a name: data sources with the same one share the rows) and
    ``timeout`` (seconds per operation, default 30, validated like every adapter's; no
    operation here ever waits, so it never fires).
    """

    label = "memory"
    capabilities: ClassVar[Capabilities] = Capabilities(
        native_query=True, transactions=True, unique_indexes=True, write_with=True,
        keyset_paging=True,
    )  # fmt: skip

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        config = dict(config)
        shared = config.pop("shared", None)
        self.timeout = pop_timeout(config)
        super().__init__(name, config)
        self._data: dict[str, dict[str, Row]] = (
            _SHARED.setdefault(str(shared), {}) if shared is not None else {}
        )

    async def connect(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close; the data stays until the adapter is dropped."""

    async def ensure_schema(self, schema: CollectionSchema) -> None:
        """Create the collection's dict."""
        self._data.setdefault(schema.collection, {})

    def _table(self, schema: CollectionSchema) -> dict[str, Row]:
        return self._data.setdefault(schema.collection, {})

    def _live(self, schema: CollectionSchema) -> Any:
        """The live rows of a collection (tombstones hold ``DELETED``)."""
        return (r for r in self._table(schema).values() if DELETED not in r)

    @staticmethod
    def _copy(row: Row) -> Row:
        # Rows hold lists/dicts: a deep copy keeps entity edits from reaching the store.
        return copy_row(row)

    def _check_unique(
        self, schema: CollectionSchema, table: dict[str, Row], rows: Sequence[Row]
    ) -> None:
        unique = [n for n, spec in schema.fields.items() if spec.unique]
        if not unique:
            return
        for name in unique:
            seen: dict[Any, str] = {
                r[name]: i for i, r in table.items() if r.get(name) is not None
            }  # tombstones hold no values: never seen
            for row in rows:
                value = row.get(name)
                if value is None or DELETED in row:
                    continue
                owner = seen.get(value)
                if owner is not None and owner != row["id"]:
                    raise IntegrityError(
                        self.name, f"duplicate value {value!r} for unique field {name!r}"
                    )
                seen[value] = row["id"]

    async def insert(self, schema: CollectionSchema, rows: Sequence[Row]) -> None:
        """Insert all rows or none (a duplicate id raises ``IntegrityError``)."""
        table = self._table(schema)
        ids = [r["id"] for r in rows]
        dup = next((i for i in ids if i in table), None)
        if dup is None and len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
        if dup is not None:
            raise IntegrityError(self.name, f"duplicate id {dup!r} in {schema.collection}")
        self._check_unique(schema, table, rows)
        for row in rows:
            table[row["id"]] = self._stored(schema, row)

    def _stored(self, schema: CollectionSchema, row: Row) -> Row:
        """A copy of ``row`` as this store keeps it: every field and ``REV`` present."""
        if DELETED in row:
            return {"id": row["id"], REV: row[REV], DELETED: row[DELETED]}
        stored = self._copy(row)
        for name in schema.fields:
            stored.setdefault(name, None)
        stored.setdefault(REV, None)
        return stored

    async def write(
        self,
        schema: CollectionSchema,
        rows: Sequence[Row],
        expect: Sequence[str | None] | None = None,
        *,
        fresh: bool = False,
    ) -> list[str]:
        """Apply each row the revision guard admits, all of them at once (no await)."""
        table = self._table(schema)
        applied: list[Row] = []
        skipped: list[str] = []
        for i, row in enumerate(rows):
            held = table.get(row["id"])
            if _admits(held, row[REV], None if expect is None else (expect[i],)):
                applied.append(row)
            elif held is None or held[REV] != row[REV]:  # holding this revision: a replay
                skipped.append(row["id"])
        self._check_unique(schema, table, [r for r in applied if DELETED not in r])
        for row in applied:
            table[row["id"]] = self._stored(schema, row)
        return skipped

    async def write_with(
        self,
        schema: CollectionSchema,
        rows: Sequence[Row],
        inserts: Sequence[tuple[CollectionSchema, Sequence[Row]]],
        *,
        fresh: bool = False,
    ) -> list[str]:
        """Both at once: nothing awaits in between, so nothing sees one without the other."""
        for other, extra in inserts:  # checked first: a duplicate id fails before the write
            table = self._table(other)
            if any(r["id"] in table for r in extra):
                raise IntegrityError(self.name, f"duplicate id in {other.collection}")
        refused = await MemoryAdapter.write(self, schema, rows) if rows else []
        for other, extra in inserts:
            await MemoryAdapter.insert(self, other, extra)
        return refused

    async def revisions(self, schema: CollectionSchema, ids: Sequence[str]) -> dict[str, Revision]:
        """Stored revisions, tombstones included."""
        table = self._table(schema)
        return {i: (table[i][REV], DELETED in table[i]) for i in ids if i in table}

    async def purge(self, schema: CollectionSchema, before: datetime) -> int:
        """Drop tombstones deleted before ``before``."""
        table = self._table(schema)
        old = [i for i, r in table.items() if DELETED in r and r[DELETED] < before]
        for i in old:
            del table[i]
        return len(old)

    async def drop(self, schema: CollectionSchema) -> None:
        """Forget the collection, tombstones included."""
        self._data.pop(schema.collection, None)

    async def get(self, schema: CollectionSchema, ids: Sequence[str]) -> list[Row]:
        """Rows by id."""
        table = self._table(schema)
        return [self._copy(r) for i in ids if (r := table.get(i)) is not None and DELETED not in r]

    async def find(self, schema: CollectionSchema, query: Query) -> list[Row]:
        """Filter with the reference matcher, sort canonically, slice."""
        pred = compile_predicate(query.where)
        rows = sort_rows((r for r in self._live(schema) if pred(r)), query.sort)
        end = None if query.limit is None else query.skip + query.limit
        return [self._copy(r) for r in rows[query.skip : end]]

    async def count(self, schema: CollectionSchema, where: Node | None) -> int:
        """Count matching rows."""
        pred = compile_predicate(where)
        return sum(1 for r in self._live(schema) if pred(r))

    async def update(self, schema: CollectionSchema, changes: Sequence[tuple[str, Row]]) -> int:
        """Apply each change to an existing row; all or nothing."""
        table = self._table(schema)
        present = [(i, c) for i, c in changes if i in table and DELETED not in table[i]]
        merged = [{**table[i], **c} for i, c in present]
        self._check_unique(schema, table, merged)
        for (i, _), row in zip(present, merged, strict=True):
            table[i] = self._copy(row)
        return len(present)

    async def delete(self, schema: CollectionSchema, ids: Sequence[str]) -> int:
        """Delete by id."""
        table = self._table(schema)
        gone = [table.pop(i, None) for i in dict.fromkeys(ids)]
        return sum(1 for r in gone if r is not None and DELETED not in r)


def _admits(held: Row | None, rev: str, expect: tuple[str | None] | None) -> bool:
    """The revision guard of ``Adapter.write`` for one row (``expect``: (wanted,) or None)."""
    if expect is not None:
        (wanted,) = expect
        if wanted is None:
            return held is None or (DELETED in held and (held[REV] or "") < rev)
        return held is not None and DELETED not in held and (held[REV] or "") == wanted
    return held is None or (held[REV] or "") < rev
