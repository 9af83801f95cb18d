"""The adapter logic both SQL adapters share: plans in, statements out, rows back.

Sits between the adapter contract (``base.py``) and the two engine adapters
(``sqlite.py``, ``mysql.py``). Every contract method here only asks the model's
``TablePlan`` for statement texts and parameters and hands them to a few small driver
primitives the subclasses implement: ``_fetch`` (one SELECT), ``_run`` (statements that
must apply together, in one transaction when there is more than one), ``_script``
(DDL), and the two that say whether a guarded write left a row out (``_upsert``,
``_run_each``; the defaults read rowcounts, which MySQL cannot use). Plans are cached
per ``CollectionSchema`` object, so each model's SQL is built once per connection of the
registry.

``write`` sends each chunk of a batch as one guarded upsert (``upsert.py``) and asks the
engine only whether some row was not applied (``_upsert``: SQLite counts changes, MySQL
reads a flag the statement leaves in its OK packet); only then does it read the stored
revisions to tell refused rows from replays.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from ...errors import DataSourceError, IntegrityError
from ...query.ast import Node, Query
from ..base import REV, Adapter, CollectionSchema, Revision, Row
from ..pool import Pool
from .dialect import Dialect
from .plan import TablePlan
from .upsert import WritePlan

__all__ = ["SQLAdapter", "Statement"]

Statement = tuple[str, Sequence[Any]]
T = TypeVar("T")


async def _done(value: T) -> T:
    return value


class SQLAdapter(Adapter):
    """Base of the SQL adapters; subclasses supply the dialect and the driver primitives."""

    dialect: ClassVar[Dialect]
    #: Rows per INSERT of a pipelined bulk insert; a batch up to this size is one statement.
    chunk_rows: ClassVar[int] = 1000
    _pool: Pool[Any]  # set by the subclass's __init__

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        # id(schema) -> plan; the plan holds its schema, so an id is never reused meanwhile.
        self._plans: dict[int, TablePlan] = {}
        self._writes: dict[int, WritePlan] = {}  # built on a table's first write
        self._max_chars: int | None = None  # bound on one INSERT's text (MySQL packets)

    async def close(self) -> None:
        """Close every connection (waiting up to ``close_timeout`` for borrowed ones)."""
        await self._pool.close()

    def stats(self) -> dict[str, int]:
        """The pool's counters."""
        return self._pool.stats()

    async def ping(self) -> None:
        """Run ``SELECT 1``."""
        await self._fetch("SELECT 1", ())

    # -- driver primitives (subclasses) ------------------------------------------------
    @abstractmethod
    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        """Run one SELECT; return its records in column order."""

    @abstractmethod
    async def _run(self, statements: Sequence[Statement], counted: int | None = None) -> int:
        """Run writes atomically (a transaction if several); return the summed rowcount
        of the first ``counted`` statements (None: of all)."""

    async def _run_chunks(self, statements: Iterator[Statement]) -> int:
        """Like ``_run`` for lazily built statements; engines overlap building and writing."""
        return await self._run(list(statements))

    async def _upsert(self, statements: Sequence[Statement] | Iterator[Statement], n: int) -> bool:
        """Run ``write``'s upserts of ``n`` rows (pipelined when given an iterator); True
        when some row may not have applied. Here: rowcounts (SQLite's changes() leave
        out the rows a DO UPDATE ... WHERE refused)."""
        if isinstance(statements, Iterator):
            return await self._run_chunks(statements) < n
        return await self._run(statements) < n

    async def _run_each(self, statements: Sequence[tuple[Statement, bool]]) -> bool:
        """Run ``write(expect=)``'s one-row statements (each tagged: an upsert, or an
        UPDATE) in one transaction; True when some row did not apply."""
        return await self._run([s for s, _ in statements]) < len(statements)

    @abstractmethod
    async def _script(self, statements: list[str]) -> None:
        """Run DDL statements in order (no parameters)."""

    @abstractmethod
    def _types(self) -> tuple[Mapping[str, str], str, bool]:
        """Column types by kind, the CREATE TABLE suffix, and whether indexes are inline."""

    # -- plans -------------------------------------------------------------------------
    def plan(self, schema: CollectionSchema) -> TablePlan:
        """The cached ``TablePlan`` of ``schema`` (built on first use)."""
        plan = self._plans.get(id(schema))
        if plan is not None and plan.schema is schema:
            return plan
        if len(self._plans) > 1024:  # schemas are per (model, connect); keep it bounded
            self._plans.clear()
            self._writes.clear()
        types, suffix, inline = self._types()
        plan = self._plans[id(schema)] = TablePlan(schema, self.dialect, types, suffix, inline)
        return plan

    # -- contract ----------------------------------------------------------------------
    def _write_plan(self, schema: CollectionSchema) -> WritePlan:
        """The revision-guarded upserts of ``schema``'s table (built on first use)."""
        writes = self._writes.get(id(schema))
        if writes is None:
            plan = self.plan(schema)
            writes = self._writes[id(schema)] = WritePlan(plan, plan.alias)
        return writes

    async def ensure_schema(self, schema: CollectionSchema) -> None:
        """CREATE TABLE IF NOT EXISTS with typed columns and the declared indexes; a table
        created before revisions existed gets the revision columns added (its rows then
        have NULL revisions, the oldest, and are live)."""
        plan = self.plan(schema)
        await self._script(plan.ddl)
        for attempt in range(2):
            have = {str(name) for (name,) in await self._table_columns(schema.collection)}
            missing = [sql for name, sql in plan.added.items() if name not in have]
            if not missing:
                return
            try:
                await self._script(missing)
            except DataSourceError:
                if attempt:  # another process may have added them meanwhile: look again
                    raise

    def _table_columns(self, table: str) -> Coroutine[Any, Any, list[Sequence[Any]]]:
        return self._fetch(self.dialect.table_columns(), (table,))

    async def drop(self, schema: CollectionSchema) -> None:
        """DROP TABLE IF EXISTS (indexes go with it)."""
        await self._script([self.plan(schema).drop()])
        self._plans.pop(id(schema), None)
        self._writes.pop(id(schema), None)

    # insert/update/delete are plain functions returning the driver call's coroutine:
    # one coroutine less on every write (they only build statements before it).
    def insert(self, schema: CollectionSchema, rows: Sequence[Row]) -> Coroutine[Any, Any, Any]:
        """Multi-row INSERT (chunked under the engine's limits, one transaction).

        A batch of more than ``chunk_rows`` rows goes in chunks of that many, pipelined:
        the next chunk is encoded while the engine writes the previous one.
        """
        if not rows:
            return _done(None)
        plan = self.plan(schema)
        if len(rows) <= self.chunk_rows:
            return self._run(plan.insert(rows, self._max_chars))
        return self._run_chunks(plan.insert_chunks(rows, self._max_chars, self.chunk_rows))

    async def write(
        self,
        schema: CollectionSchema,
        rows: Sequence[Row],
        expect: Sequence[str | None] | None = None,
        *,
        fresh: bool = False,
    ) -> list[str]:
        """Guarded multi-row upserts, chunked like ``insert`` (one statement per chunk,
        one transaction); ``expect``: one statement per row, one transaction."""
        if not rows:
            return []
        if fresh and expect is None:
            # Entities spawned here: a plain multi-row INSERT (an insert's cost) nearly
            # always does. A stored id (or a taken unique value) fails it as a whole,
            # rolled back, and the guarded upsert below decides instead.
            try:
                await self.insert(schema, rows)
            except IntegrityError:
                pass
            else:
                return []
        writes = self._write_plan(schema)
        if expect is not None:
            missed = await self._run_each(writes.expecting(rows, expect))
        elif len(rows) <= self.chunk_rows:
            missed = await self._upsert(writes.write(rows, self._max_chars), len(rows))
        else:
            chunks = writes.chunks(rows, self._max_chars, self.chunk_rows)
            missed = await self._upsert(chunks, len(rows))
        if not missed:
            return []
        # The slow path: a row the store holds at its own revision landed (now or
        # before: a replay); any other was refused.
        return await self._not_holding(schema, rows)

    async def write_with(
        self,
        schema: CollectionSchema,
        rows: Sequence[Row],
        inserts: Sequence[tuple[CollectionSchema, Sequence[Row]]],
        *,
        fresh: bool = False,
    ) -> list[str]:
        """The guarded upserts of ``rows`` and the multi-row INSERTs of ``inserts`` in
        one transaction (the transactional outbox)."""
        upserts: list[Statement] = []
        if rows:
            writes = self._write_plan(schema)
            if len(rows) <= self.chunk_rows:
                upserts += writes.write(rows, self._max_chars)
            else:
                upserts += writes.chunks(rows, self._max_chars, self.chunk_rows)
        extra: list[Statement] = []
        for other, more in inserts:
            if more:
                extra += self.plan(other).insert(more, self._max_chars)
        if not await self._upsert_with(upserts, extra, len(rows)):
            return []
        return await self._not_holding(schema, rows)

    async def _not_holding(self, schema: CollectionSchema, rows: Sequence[Row]) -> list[str]:
        """The slow path after a write some row may not have taken: the ids whose copy
        the store does not hold at the row's revision (a copy held at it landed, now or
        before: a replay)."""
        held = await self.revisions(schema, [r["id"] for r in rows])
        return [r["id"] for r in rows if (h := held.get(r["id"])) is None or h[0] != r[REV]]

    async def _upsert_with(
        self, upserts: Sequence[Statement], extra: Sequence[Statement], n: int
    ) -> bool:
        """Run ``write_with``'s statements in one transaction; True when some of the ``n``
        upserted rows may not have applied (here: their rowcounts, as ``_upsert``)."""
        return await self._run([*upserts, *extra], counted=len(upserts)) < n

    async def revisions(self, schema: CollectionSchema, ids: Sequence[str]) -> dict[str, Revision]:
        """SELECT id, revision, and whether it is a tombstone, by id."""
        out: dict[str, Revision] = {}
        for sql, params in self.plan(schema).revisions(ids):
            for entity_id, rev, gone in await self._fetch(sql, params):
                out[entity_id] = (rev, bool(gone))
        return out

    async def purge(self, schema: CollectionSchema, before: datetime) -> int:
        """DELETE the tombstones deleted before ``before``."""
        return await self._run([self.plan(schema).purge(before)])

    async def get(self, schema: CollectionSchema, ids: Sequence[str]) -> list[Row]:
        """SELECT ... WHERE id IN (...)."""
        if not ids:
            return []
        plan = self.plan(schema)
        if len(ids) == 1:  # Model.find(id): the hot path
            return plan.decode_rows(await self._fetch(plan.get_one, ids))
        records: list[Sequence[Any]] = []
        for sql, params in plan.get(ids):
            records += await self._fetch(sql, params)
        return plan.decode_rows(records)

    async def find(self, schema: CollectionSchema, query: Query) -> list[Row]:
        """One SELECT with WHERE, ORDER BY and LIMIT/OFFSET."""
        plan = self.plan(schema)
        sql, params = plan.find(query)
        return plan.decode_rows(await self._fetch(sql, params))

    async def count(self, schema: CollectionSchema, where: Node | None) -> int:
        """SELECT COUNT(*)."""
        sql, params = self.plan(schema).count(where)
        records = await self._fetch(sql, params)
        return int(records[0][0])

    def update(
        self, schema: CollectionSchema, changes: Sequence[tuple[str, Row]]
    ) -> Coroutine[Any, Any, int]:
        """One UPDATE per distinct changes dict (``update_many``: one in all)."""
        if not changes:
            return _done(0)
        return self._run(self.plan(schema).update(changes))

    async def patch(
        self, schema: CollectionSchema, changes: Sequence[tuple[str, Row, str, str | None]]
    ) -> list[str]:
        """One guarded UPDATE of the changed fields for a single entity (its
        ``entity.persist()`` after a read: the row holds the base revision)."""
        if len(changes) != 1:
            return [c[0] for c in changes]
        entity_id, change, revision, base = changes[0]
        statement = self.plan(schema).patch_one(entity_id, change, revision, base or "")
        return [] if await self._run([statement]) == 1 else [entity_id]

    def delete(self, schema: CollectionSchema, ids: Sequence[str]) -> Coroutine[Any, Any, int]:
        """DELETE ... WHERE id IN (...) of the live rows (counted), then of tombstones."""
        if not ids:
            return _done(0)
        statements, counted = self.plan(schema).delete(ids)
        return self._run(statements, counted)

    async def delete_where(self, schema: CollectionSchema, where: Node | None) -> int:
        """One DELETE statement."""
        return await self._run([self.plan(schema).delete_where(where)])
