"""The adapter logic both SQL adapters share: plans in, statements out, rows back.

Sits between the adapter contract (``base.py``) and the two engine adapters
(``sqlite.py``, ``mysql.py``). Every contract method here only asks the model's
``TablePlan`` for statement texts and parameters and hands them to three small driver
primitives the subclasses implement: ``_fetch`` (one SELECT), ``_run`` (statements that
must apply together, in one transaction when there is more than one) and ``_script``
(DDL). Plans are cached per ``CollectionSchema`` object, so each model's SQL is built once
per connection of the registry.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from ...query.ast import Node, Query
from ..base import Adapter, CollectionSchema, Row
from ..pool import Pool
from .dialect import Dialect
from .plan import TablePlan

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
    async def _run(self, statements: Sequence[Statement]) -> int:
        """Run writes atomically (a transaction if several); return the summed rowcount."""

    async def _run_chunks(self, statements: Iterator[Statement]) -> int:
        """Like ``_run`` for lazily built statements; engines overlap building and writing."""
        return await self._run(list(statements))

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
        types, suffix, inline = self._types()
        plan = self._plans[id(schema)] = TablePlan(schema, self.dialect, types, suffix, inline)
        return plan

    # -- contract ----------------------------------------------------------------------
    async def ensure_schema(self, schema: CollectionSchema) -> None:
        """CREATE TABLE IF NOT EXISTS with typed columns and the declared indexes."""
        await self._script(self.plan(schema).ddl)

    async def drop(self, schema: CollectionSchema) -> None:
        """DROP TABLE IF EXISTS (indexes go with it)."""
        await self._script([self.plan(schema).drop()])
        self._plans.pop(id(schema), None)

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

    def delete(self, schema: CollectionSchema, ids: Sequence[str]) -> Coroutine[Any, Any, int]:
        """DELETE ... WHERE id IN (...)."""
        if not ids:
            return _done(0)
        return self._run(self.plan(schema).delete(ids))

    async def delete_where(self, schema: CollectionSchema, where: Node | None) -> int:
        """One DELETE statement."""
        return await self._run([self.plan(schema).delete_where(where)])
