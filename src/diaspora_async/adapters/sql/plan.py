"""A table plan: everything about one model in one SQL source, computed once.

Sits between the shared SQL adapter (``adapter.py``), the WHERE compiler (``compile.py``),
the engine ``Dialect`` (``dialect.py``) and the JSON codecs (``json.py``).
A plan is built the first time a ``CollectionSchema`` is seen and holds the quoted table
and columns (per-source remaps applied), the DDL, per-column encoders/decoders, and a cache
of statement texts keyed by their shape (how many ids, which changed columns, which sort
keys), so the hot paths only format parameters, never SQL.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from ...errors import QueryError
from ...fields import FieldSpec, Kind
from ...query.ast import Node, Query, SortKey
from ...rows import building
from ..base import CollectionSchema, Row
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
        types: the engine's column type for each storage kind, plus ``"id"`` and
            ``"indexed_str"`` (a ``str`` column that carries an index).
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
        self.columns: dict[str, str] = {n: q(schema.stored[n]) for n in self.names}
        self.kinds: dict[str, Kind] = {n: schema.spec(n).kind for n in self.names}
        self.specs: dict[str, FieldSpec] = {n: schema.spec(n) for n in self.names}
        cols = ", ".join(self.columns.values())
        self.select = f"SELECT {cols} FROM {self.table}"
        self.insert_prefix = f"INSERT INTO {self.table} ({cols}) VALUES "
        self.row_marks = "(" + ", ".join([d.param] * len(self.names)) + ")"
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
        self.ddl = self._ddl(types, table_suffix, inline_indexes)
        self.get_one = f"{self.select} WHERE {self.columns['id']} = {d.param}"
        getter = operator.itemgetter(*self.names)
        # itemgetter of one name returns the value itself, not a 1-tuple
        self._getter = getter if len(self.names) > 1 else lambda row: (getter(row),)
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

    def encode_rows(self, rows: Sequence[Row]) -> list[tuple[Any, ...]]:
        """Rows as tuples of bound values in column order (None stays NULL).

        Column-wise, like ``decode_rows``: the rows are read with one C-level itemgetter
        each, transposed, and only the columns that need encoding are touched.
        """
        try:
            records = list(map(self._getter, rows))
        except KeyError:  # some row lacks some fields: they are NULL
            names = self.names
            records = [tuple([row.get(n) for n in names]) for row in rows]
        if not self.encoders or not records:
            return records
        columns: list[Any] = list(zip(*records, strict=True))
        for i, enc in self.encoders:
            columns[i] = [None if v is None else enc(v) for v in columns[i]]
        return list(zip(*columns, strict=True))

    def encode_row(self, row: Row) -> list[Any]:
        """One row's bound values in column order: ``encode_rows`` without the transposing."""
        try:
            values = list(self._getter(row))
        except KeyError:
            values = [row.get(n) for n in self.names]
        for i, enc in self.encoders:
            v = values[i]
            if v is not None:
                values[i] = enc(v)
        return values

    def decode_rows(self, records: Sequence[Sequence[Any]]) -> list[Row]:
        """Driver records (column order) back to rows keyed by logical names."""
        names = self.names
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
        if inline:
            for ix, col, unique in indexes:
                defs.append(f"{'UNIQUE ' if unique else ''}KEY {q(ix)} ({col})")
        stmts = [f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(defs)}){suffix}"]
        if not inline:
            for ix, col, unique in indexes:
                kw = "UNIQUE INDEX" if unique else "INDEX"
                stmts.append(f"CREATE {kw} IF NOT EXISTS {q(ix)} ON {table} ({col})")
        return stmts

    # -- statements --------------------------------------------------------------------
    def column(self, name: str) -> str:
        """The quoted column of a logical field; unknown names are refused (no I/O)."""
        try:
            return self.columns[name]
        except KeyError:
            raise QueryError(f"{self.schema.model} has no field {name!r}") from None

    def where(self, node: Node | None) -> tuple[str, list[Any]]:
        """`` WHERE ...`` (or empty) and its parameters."""
        if node is None:
            return "", []
        sql, params = compile_where(node, self.dialect, self.column, self.encode_value)
        return " WHERE " + sql, params

    def marks(self, n: int) -> str:
        """``?, ?, ...`` n times (cached)."""
        key = ("marks", n)
        sql = self._sql.get(key)
        if sql is None:
            sql = self._sql[key] = ", ".join([self.dialect.param] * n)
        return sql

    def by_ids(self, head: str, n: int) -> str:
        """``{head} WHERE id = ?`` or ``... id IN (?, ...)`` for n ids (cached)."""
        key = (head, n)
        sql = self._sql.get(key)
        if sql is None:
            idc = self.columns["id"]
            test = f"{idc} = {self.dialect.param}" if n == 1 else f"{idc} IN ({self.marks(n)})"
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
            return [(self._insert_sql(1), self.encode_row(rows[0]))]
        return list(self.insert_chunks(rows, max_chars))

    def insert_chunks(
        self, rows: Sequence[Row], max_chars: int | None = None, chunk_rows: int | None = None
    ) -> Iterator[tuple[str, list[Any]]]:
        """Like ``insert``, lazily: a chunk's rows are encoded only when it is asked for.

        ``chunk_rows`` caps the rows of one statement, so an adapter can encode the next
        chunk while the engine writes the previous one.
        """
        per = max(1, self.dialect.max_params // len(self.names))
        if chunk_rows is not None:
            per = min(per, max(1, chunk_rows))
        for lo, hi in _chunks(len(rows), per):
            with building(hi - lo):  # encoding is synchronous: see rows.building
                values = self.encode_rows(rows[lo:hi])
                bounds = [(0, len(values))]
                if max_chars is not None and len(values) > 1:
                    bounds = self._size_chunks(values, 0, len(values), max_chars)
                chunks = [
                    (self._insert_sql(b - a), list(chain.from_iterable(values[a:b])))
                    for a, b in bounds
                ]
            yield from chunks

    def _insert_sql(self, n: int) -> str:
        key = ("insert", n)
        sql = self._sql.get(key)
        if sql is None:
            sql = self._sql[key] = self.insert_prefix + ", ".join([self.row_marks] * n)
        return sql

    def _size_chunks(
        self, values: list[tuple[Any, ...]], lo: int, hi: int, max_chars: int
    ) -> list[tuple[int, int]]:
        # Only text can be large; numbers and dates are bounded, counted as 32 chars.
        bounds, start, size = [], lo, 0
        fixed, text = 32 * (len(self.names) - len(self.text_columns)), self.text_columns
        for i in range(lo, hi):
            row = values[i]
            row_size = fixed + sum(len(row[c]) + 8 for c in text if row[c] is not None)
            if size and size + row_size > max_chars:
                bounds.append((start, i))
                start, size = i, 0
            size += row_size
        bounds.append((start, hi))
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
                sql = self._update_one[names] = self.by_ids(self._set_head(names), 1)
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

    def delete(self, ids: Sequence[str]) -> list[tuple[str, list[Any]]]:
        """DELETEs by id (chunked)."""
        unique = list(dict.fromkeys(ids))
        head = f"DELETE FROM {self.table}"
        return [
            (self.by_ids(head, hi - lo), unique[lo:hi])
            for lo, hi in _chunks(len(unique), self.dialect.max_params)
        ]

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
