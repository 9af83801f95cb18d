"""A table plan: everything about one model in one SQL source, computed once.

Sits between the shared SQL adapter (``adapter.py``), the WHERE compiler (``compile.py``),
the engine ``Dialect`` (``dialect.py``) and the JSON codecs (``json.py``).
A plan is built the first time a ``CollectionSchema`` is seen and holds the quoted table
and columns (per-source remaps applied), the DDL, per-column encoders/decoders, and a cache
of statement texts keyed by their shape (how many ids, which changed columns, which sort
keys), so the hot paths only format parameters, never SQL.

Revisions (``base.py``): every table also has the revision column ``_rev`` (returned with
every row) and the deletion time ``_del`` (set only in tombstones). Every read, count,
update and ``delete_where`` carries the live-row test ``_del IS NULL``; the guarded
writes themselves are in ``upsert.py`` (a ``WritePlan`` per table plan, kept by the
adapter).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from itertools import chain, repeat
from typing import Any

from ...errors import QueryError
from ...fields import FieldSpec, Kind
from ...query.ast import Node, Query, SortKey
from ...rows import building
from ..base import DELETED, REV, CollectionSchema, Row
from .compile import compile_where
from .dialect import Dialect
from .json import JSON_KINDS, from_json, str_list_to_json, to_json

__all__ = ["TablePlan"]

Encoder = Callable[[Any], Any]


def _decode_dates(text: str) -> list[Any]:
    # Datetimes inside JSON are ISO strings (``_sql._json_default``).
    return [
        datetime.fromisoformat(v).astimezone(UTC) if isinstance(v, str) else v
        for v in from_json(text)
    ]


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    size = max(1, size)
    return [(i, min(n, i + size)) for i in range(0, n, size)]


class TablePlan:
    """Statements, codecs and DDL for one (model, source) pair.

    Args:
        schema: the model's schema in this source.
        dialect: the engine's dialect.
        types: the engine's column type for each storage kind, plus ``"id"``,
            ``"indexed_str"`` (a ``str`` column that carries an index) and ``"rev"``;
            ``"upsert_alias"`` (MySQL 8) names the offered row in an upsert.
        table_suffix: appended after the column list in ``CREATE TABLE``.
    """

    def __init__(
        self,
        schema: CollectionSchema,
        dialect: Dialect,
        types: Mapping[str, str],
        table_suffix: str = "",
        inline_indexes: bool = False,
    ) -> None:
        self.schema = schema
        self.dialect = d = dialect
        q = d.quote
        self.table = q(schema.collection)
        self.names: list[str] = ["id", *schema.fields]
        self.rnames: list[str] = [*self.names, REV]  # what reads return
        self.columns: dict[str, str] = {n: q(schema.stored[n]) for n in self.rnames}
        self.deleted = q(DELETED)
        self.live = f"{self.deleted} IS NULL"
        self.kinds: dict[str, Kind] = {n: schema.spec(n).kind for n in self.names}
        self.specs: dict[str, FieldSpec] = {n: schema.spec(n) for n in self.names}
        cols = ", ".join(self.columns[n] for n in self.names)
        rcols = ", ".join(self.columns[n] for n in self.rnames)
        self.select = f"SELECT {rcols} FROM {self.table}"
        self.insert_prefix = f"INSERT INTO {self.table} ({cols}) VALUES "
        self.row_marks = "(" + ", ".join([d.param] * len(self.names)) + ")"
        # rows carrying their revision (``REV``) are inserted with it
        self.rinsert_prefix = f"INSERT INTO {self.table} ({rcols}) VALUES "
        self.rrow_marks = "(" + ", ".join([d.param] * len(self.rnames)) + ")"
        # per column: how to bind it and how to read it back (None: as is)
        self.encoders: list[tuple[int, Encoder]] = []
        self._encoder_of: dict[str, Encoder | None] = {}
        self.decoders: list[tuple[int, Encoder]] = []
        self.text_columns: list[int] = []  # columns whose bound value is text (for sizing)
        for i, name in enumerate(self.names):
            spec = self.specs[name]
            enc, dec = self._codec(spec)
            self._encoder_of[name] = enc
            if enc is not None:
                self.encoders.append((i, enc))
            if dec is not None:
                self.decoders.append((i, dec))
            if spec.kind in JSON_KINDS or spec.kind == "str":
                self.text_columns.append(i)
        self._encoder_of[REV] = None
        self.ddl = self._ddl(types, table_suffix, inline_indexes)
        self.added = self._added(types)
        self.get_one = f"{self.select} WHERE {self.columns['id']} = {d.param} AND {self.live}"
        getter = operator.itemgetter(*self.names)
        # itemgetter of one name returns the value itself, not a 1-tuple
        self._getter = getter if len(self.names) > 1 else lambda row: (getter(row),)
        self.rgetter = operator.itemgetter(*self.rnames)
        #: How an upsert names the offered row (MySQL 8's alias; None: ``VALUES()``).
        self.alias = types.get("upsert_alias")
        self._sql: dict[Any, str] = {}
        self._update_one: dict[tuple[str, ...], str] = {}  # field names -> single-row UPDATE

    # -- codecs ------------------------------------------------------------------------
    def _codec(self, spec: FieldSpec) -> tuple[Encoder | None, Encoder | None]:
        d = self.dialect
        if spec.kind == "datetime":
            return d.encode_datetime, d.decode_datetime
        if spec.kind == "bool":
            return None, bool
        if spec.kind == "list" and spec.item_kind == "datetime":
            return to_json, _decode_dates
        if spec.kind == "list" and spec.item_kind == "str":
            return str_list_to_json, from_json
        if spec.kind in JSON_KINDS:
            return to_json, from_json
        return None, None

    def encode_value(self, value: Any, kind: Kind) -> Any:
        """Bind a query operand of a field of ``kind``."""
        if kind == "datetime" and isinstance(value, datetime):
            return self.dialect.encode_datetime(value)
        if kind in JSON_KINDS:
            return to_json(value)
        return value

    def encode_rows(self, rows: Sequence[Row], with_rev: bool = False) -> list[tuple[Any, ...]]:
        """Rows as tuples of bound values in column order (None stays NULL); ``with_rev``:
        the revision too, last.

        Column-wise, like ``decode_rows``: the rows are read with one C-level itemgetter
        each, transposed, and only the columns that need encoding are touched.
        """
        getter, names = (self.rgetter, self.rnames) if with_rev else (self._getter, self.names)
        try:
            records = list(map(getter, rows))
        except KeyError:  # some row lacks some fields: they are NULL
            records = [tuple([row.get(n) for n in names]) for row in rows]
        return self.encode_columns(records, self.encoders)

    @staticmethod
    def encode_columns(
        records: list[tuple[Any, ...]], encoders: list[tuple[int, Encoder]]
    ) -> list[tuple[Any, ...]]:
        """Encode the columns of ``records`` that have an encoder (transposing once)."""
        if not encoders or not records:
            return records
        columns: list[Any] = list(zip(*records, strict=True))
        for i, enc in encoders:
            columns[i] = [None if v is None else enc(v) for v in columns[i]]
        return list(zip(*columns, strict=True))

    def encode_row(self, row: Row, with_rev: bool = False) -> list[Any]:
        """One row's bound values in column order: ``encode_rows`` without the transposing."""
        getter, names = (self.rgetter, self.rnames) if with_rev else (self._getter, self.names)
        try:
            values = list(getter(row))
        except KeyError:
            values = [row.get(n) for n in names]
        for i, enc in self.encoders:
            v = values[i]
            if v is not None:
                values[i] = enc(v)
        return values

    def decode_rows(self, records: Sequence[Sequence[Any]]) -> list[Row]:
        """Driver records (column order) back to rows keyed by logical names."""
        names = self.rnames
        if not self.decoders or not records:
            return [dict(zip(names, rec, strict=True)) for rec in records]
        # Column-wise: one comprehension per decoded column beats a loop per row.
        columns: list[Any] = list(zip(*records, strict=True))
        for i, dec in self.decoders:
            columns[i] = [None if v is None else dec(v) for v in columns[i]]
        return [dict(zip(names, rec, strict=True)) for rec in zip(*columns, strict=True)]

    # -- DDL ---------------------------------------------------------------------------
    def _ddl(self, types: Mapping[str, str], suffix: str, inline: bool) -> list[str]:
        q, table, coll = self.dialect.quote, self.table, self.schema.collection
        defs = [f"{self.columns['id']} {types['id']} NOT NULL PRIMARY KEY"]
        indexes: list[tuple[str, str, bool]] = []
        for name in self.names[1:]:
            spec = self.specs[name]
            kind = "indexed_str" if spec.kind == "str" and spec.index else spec.kind
            defs.append(f"{self.columns[name]} {types[kind]}")
            if spec.index or spec.unique:
                col = self.columns[name]
                if spec.kind in JSON_KINDS and "json_index_prefix" in types:
                    col = f"{col}({types['json_index_prefix']})"
                prefix = "ux" if spec.unique else "ix"
                indexes.append((f"{prefix}_{coll}_{self.schema.stored[name]}", col, spec.unique))
        defs += [f"{c} {t}" for c, t in self._revision_columns(types)]
        if inline:
            for ix, col, unique in indexes:
                defs.append(f"{'UNIQUE ' if unique else ''}KEY {q(ix)} ({col})")
        stmts = [f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(defs)}){suffix}"]
        if not inline:
            for ix, col, unique in indexes:
                kw = "UNIQUE INDEX" if unique else "INDEX"
                stmts.append(f"CREATE {kw} IF NOT EXISTS {q(ix)} ON {table} ({col})")
        return stmts

    def _revision_columns(self, types: Mapping[str, str]) -> list[tuple[str, str]]:
        # Both nullable: NULL revision = a row stored before revisions (the oldest), NULL
        # deletion time = a live row. Field columns are all nullable already (NOT NULL
        # only on the id), so a tombstone can clear every one of them.
        return [(self.columns[REV], types["rev"]), (self.deleted, types["datetime"])]

    def _added(self, types: Mapping[str, str]) -> dict[str, str]:
        """Stored name -> ``ALTER TABLE ... ADD COLUMN`` for every column a table made by
        an older model (or before revisions existed) may lack (``SQLAdapter.ensure_schema``
        adds the missing ones). Every added column is nullable, so existing rows read the
        new field as missing. Indexes of added fields are not built here (migrations)."""
        added: dict[str, str] = {}
        for name in self.names[1:]:
            spec = self.specs[name]
            kind = "indexed_str" if spec.kind == "str" and spec.index else spec.kind
            added[self.schema.stored[name]] = (
                f"ALTER TABLE {self.table} ADD COLUMN {self.columns[name]} {types[kind]}"
            )
        names = [self.schema.stored[REV], DELETED]
        for name, (col, sql_type) in zip(names, self._revision_columns(types), strict=True):
            added[name] = f"ALTER TABLE {self.table} ADD COLUMN {col} {sql_type}"
        return added

    def revisions(self, ids: Sequence[str]) -> list[tuple[str, list[Any]]]:
        """SELECTs of ``(id, revision, is a tombstone)`` by id, tombstones included."""
        idc = self.columns["id"]
        head = f"SELECT {idc}, {self.columns[REV]}, {self.deleted} IS NOT NULL FROM {self.table}"
        unique = list(dict.fromkeys(ids))
        return [
            (self.by_ids(head, hi - lo, None), unique[lo:hi])
            for lo, hi in _chunks(len(unique), self.dialect.max_params)
        ]

    def purge(self, before: datetime) -> tuple[str, list[Any]]:
        """The DELETE of tombstones deleted before ``before``."""
        gone = self.deleted
        sql = f"DELETE FROM {self.table} WHERE {gone} IS NOT NULL AND {gone} < {self.dialect.param}"
        return sql, [self.dialect.encode_datetime(before)]

    # -- statements --------------------------------------------------------------------
    def column(self, name: str) -> str:
        """The quoted column of a logical field; unknown names are refused (no I/O)."""
        try:
            return self.columns[name]
        except KeyError:
            raise QueryError(f"{self.schema.model} has no field {name!r}") from None

    def where(self, node: Node | None) -> tuple[str, list[Any]]:
        """`` WHERE ... AND <live>`` and its parameters: tombstones never match.

        The compiled condition needs no parentheses: the compiler parenthesizes every
        OR and AND, and what else it emits binds tighter than AND. The live test comes
        last: a scan then tests it only on rows the query matched (SQLite measured
        ~10% faster on a 100-row indexed range query than with it first).
        """
        if node is None:
            return " WHERE " + self.live, []
        sql, params = compile_where(node, self.dialect, self.column, self.encode_value)
        return f" WHERE {sql} AND {self.live}", params

    def marks(self, n: int) -> str:
        """``?, ?, ...`` n times (cached)."""
        key = ("marks", n)
        sql = self._sql.get(key)
        if sql is None:
            sql = self._sql[key] = ", ".join([self.dialect.param] * n)
        return sql

    def by_ids(self, head: str, n: int, live: bool | None = True) -> str:
        """``{head} WHERE id = ?`` or ``... id IN (?, ...)`` for n ids (cached), and
        ``live``: live rows only (True), tombstones only (False), or both (None)."""
        key = (head, n, live)
        sql = self._sql.get(key)
        if sql is None:
            idc = self.columns["id"]
            test = f"{idc} = {self.dialect.param}" if n == 1 else f"{idc} IN ({self.marks(n)})"
            if live is not None:
                test += f" AND {self.deleted} IS {'' if live else 'NOT '}NULL"
            sql = self._sql[key] = f"{head} WHERE {test}"
        return sql

    def order_by(self, sort: tuple[SortKey, ...]) -> str:
        """`` ORDER BY ...``: both engines sort NULL lowest, the canonical order."""
        sql = self._sql.get(sort)
        if sql is None:
            keys = [f"{self.column(k.field)} {'DESC' if k.descending else 'ASC'}" for k in sort]
            sql = self._sql[sort] = " ORDER BY " + ", ".join(keys) if keys else ""
        return sql

    def find(self, query: Query) -> tuple[str, list[Any]]:
        """The SELECT for ``Adapter.find``."""
        where, params = self.where(query.where)
        sql = self.select + where + self.order_by(query.sort)
        if query.limit is not None or query.skip:
            p = self.dialect.param
            limit = p if query.limit is not None else self.dialect.no_limit
            sql += f" LIMIT {limit} OFFSET {p}"
            if query.limit is not None:
                params.append(query.limit)
            params.append(query.skip)
        return sql, params

    def count(self, where: Node | None) -> tuple[str, list[Any]]:
        """The COUNT for ``Adapter.count``."""
        clause, params = self.where(where)
        return f"SELECT COUNT(*) FROM {self.table}{clause}", params

    def delete_where(self, where: Node | None) -> tuple[str, list[Any]]:
        """One DELETE for ``Adapter.delete_where``."""
        clause, params = self.where(where)
        return f"DELETE FROM {self.table}{clause}", params

    def insert(
        self, rows: Sequence[Row], max_chars: int | None = None
    ) -> list[tuple[str, list[Any]]]:
        """Multi-row INSERTs for ``rows``, chunked under the engine's parameter/size limits."""
        if len(rows) == 1:  # Model.insert / entity.persist(): nothing to chunk
            with_rev = REV in rows[0]
            return [(self._insert_sql(1, with_rev), self.encode_row(rows[0], with_rev))]
        return list(self.insert_chunks(rows, max_chars))

    def insert_chunks(
        self, rows: Sequence[Row], max_chars: int | None = None, chunk_rows: int | None = None
    ) -> Iterator[tuple[str, list[Any]]]:
        """Like ``insert``, lazily: a chunk's rows are encoded only when it is asked for.

        ``chunk_rows`` caps the rows of one statement, so an adapter can encode the next
        chunk while the engine writes the previous one.
        """
        # The whole batch has one column list: with the revision if any row has one (a
        # C-level scan; a row without it then stores NULL).
        with_rev = REV in rows[0] or any(map(operator.contains, rows, repeat(REV)))
        per = max(1, self.dialect.max_params // (len(self.names) + with_rev))
        if chunk_rows is not None:
            per = min(per, max(1, chunk_rows))
        for lo, hi in _chunks(len(rows), per):
            with building(hi - lo):  # encoding is synchronous: see rows.building
                values = self.encode_rows(rows[lo:hi], with_rev)
                bounds = [(0, len(values))]
                if max_chars is not None and len(values) > 1:
                    bounds = self.size_chunks(values, max_chars)
                chunks = [
                    (self._insert_sql(b - a, with_rev), list(chain.from_iterable(values[a:b])))
                    for a, b in bounds
                ]
            yield from chunks

    def _insert_sql(self, n: int, with_rev: bool = False) -> str:
        key = ("insert", n, with_rev)
        sql = self._sql.get(key)
        if sql is None:
            prefix, marks = (
                (self.rinsert_prefix, self.rrow_marks)
                if with_rev
                else (self.insert_prefix, self.row_marks)
            )
            sql = self._sql[key] = prefix + ", ".join([marks] * n)
        return sql

    def size_chunks(self, values: list[tuple[Any, ...]], max_chars: int) -> list[tuple[int, int]]:
        """Row bounds keeping each statement's text under ``max_chars`` (MySQL packets)."""
        # Only text can be large; numbers, dates and revisions are bounded, counted as 32.
        bounds, start, size = [], 0, 0
        fixed, text = 32 * (len(values[0]) - len(self.text_columns)), self.text_columns
        for i in range(len(values)):
            row = values[i]
            row_size = fixed + sum(len(row[c]) + 8 for c in text if row[c] is not None)
            if size and size + row_size > max_chars:
                bounds.append((start, i))
                start, size = i, 0
            size += row_size
        bounds.append((start, len(values)))
        return bounds

    def update(self, changes: Sequence[tuple[str, Row]]) -> list[tuple[str, list[Any]]]:
        """UPDATEs for ``(id, changes)`` pairs: one per distinct changes dict object.

        ``update_many`` passes one dict shared by every id: that is one
        ``UPDATE ... WHERE id IN (...)`` (chunked under the parameter limit).
        """
        if len(changes) == 1:  # entity.persist(): one row, nothing to group
            entity_id, change = changes[0]
            names = tuple(change)
            sql = self._update_one.get(names)  # the whole statement, cached by field names
            if sql is None:
                sql = self._update_one[names] = self.by_ids(self._set_head(names), 1)  # live
            values = self._set_values(change, names)
            values.append(entity_id)
            return [(sql, values)]
        groups: dict[int, tuple[Row, list[str]]] = {}
        for entity_id, change in changes:
            group = groups.get(id(change))
            if group is None:
                groups[id(change)] = (change, [entity_id])
            else:
                group[1].append(entity_id)
        out = []
        for change, ids in groups.values():
            head, values = self._set(change)
            ids = list(dict.fromkeys(ids))
            for lo, hi in _chunks(len(ids), self.dialect.max_params - len(values)):
                out.append((self.by_ids(head, hi - lo), values + ids[lo:hi]))
        return out

    def patch_one(
        self, entity_id: str, change: Row, revision: str, base: str
    ) -> tuple[str, list[Any]]:
        """``UPDATE t SET <changed>, _rev = ? WHERE id = ? AND live AND _rev = <base>``:
        the diff of a write to a row known to hold ``base`` ("" for a pre-revision row);
        it matches nothing if the row moved on (the caller then writes it whole)."""
        names = tuple(change)
        key = ("patch", names)
        sql = self._sql.get(key)
        if sql is None:
            rev, p = self.columns[REV], self.dialect.param
            head = f"{self._set_head(names)}, {rev} = {p}"
            sql = self._sql[key] = f"{self.by_ids(head, 1)} AND COALESCE({rev}, '') = {p}"
        values = self._set_values(change, names)
        values += (revision, entity_id, base)
        return sql, values

    def _set(self, change: Row) -> tuple[str, list[Any]]:
        """``UPDATE t SET a = ?, b = ?`` for the changed fields (cached), and the values."""
        names = tuple(change)
        return self._set_head(names), self._set_values(change, names)

    def _set_head(self, names: tuple[str, ...]) -> str:
        key = ("update", names)
        head = self._sql.get(key)
        if head is None:
            for name in names:
                self.column(name)  # unknown names are refused before any SQL is built
            sets = ", ".join(f"{self.columns[n]} = {self.dialect.param}" for n in names)
            head = self._sql[key] = f"UPDATE {self.table} SET {sets}"
        return head

    def _set_values(self, change: Row, names: tuple[str, ...]) -> list[Any]:
        encoder_of = self._encoder_of  # the insert's encoders: values are validated alike
        return [
            v if (v := change[n]) is None or (enc := encoder_of[n]) is None else enc(v)
            for n in names
        ]

    def delete(self, ids: Sequence[str]) -> tuple[list[tuple[str, list[Any]]], int]:
        """DELETEs by id (chunked): of the live rows, then of the tombstones; and how many
        statements come first (whose rowcounts are the count of live rows deleted)."""
        unique = list(dict.fromkeys(ids))
        head = f"DELETE FROM {self.table}"
        bounds = _chunks(len(unique), self.dialect.max_params)
        statements = [
            (self.by_ids(head, hi - lo, live), unique[lo:hi])
            for live in (True, False)
            for lo, hi in bounds
        ]
        return statements, len(bounds)

    def get(self, ids: Sequence[str]) -> list[tuple[str, list[Any]]]:
        """SELECTs by id (chunked)."""
        unique = list(dict.fromkeys(ids)) if len(ids) > 1 else list(ids)
        return [
            (self.by_ids(self.select, hi - lo), unique[lo:hi])
            for lo, hi in _chunks(len(unique), self.dialect.max_params)
        ]

    def drop(self) -> str:
        """DROP TABLE IF EXISTS."""
        return f"DROP TABLE IF EXISTS {self.table}"
