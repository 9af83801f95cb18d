"""The shared SQL compiler: canonical query AST -> one WHERE clause with bound parameters.

Sits under the SQL adapters (``sqlite.py``, ``mysql.py``): their table plans
(``plan.py``) hand a parsed ``Node`` to ``compile_where`` and get back SQL text plus a
parameter list. Everything that differs between engines lives in a small ``Dialect``
object (quoting, placeholder, JSON functions, column types); the visitor itself is shared.
Values are always parameters; identifiers come only from the model's declared fields and
are quoted. List/dict/``any`` values are stored as *canonical* JSON text (sorted keys,
compact separators, integral floats written as integers) so deep equality is text
equality, and list containment compares one element's canonical text (or, in SQLite,
its JSON type and value) so booleans never equal numbers.

SQL's NULL logic differs from the reference matcher's (``Not`` must match missing
values), so leaves compiled under ``Not``/``Xor`` are made two-valued with
``COALESCE(..., 0)``; in positive context NULL already behaves as false.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from ...errors import QueryError
from ...fields import Kind
from ...query.ast import (
    And,
    Compare,
    Contains,
    Diff,
    Equal,
    Exists,
    In,
    Node,
    Not,
    NotIn,
    Or,
    Xor,
)
from ...query.compiler import Compiler

__all__ = [
    "JSON_KINDS",
    "Dialect",
    "MySQLDialect",
    "SQLiteDialect",
    "compile_where",
    "from_json",
    "str_list_to_json",
    "to_json",
]

JSON_KINDS = frozenset({"list", "dict", "any"})


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_encode = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False,
    default=_json_default,
).encode  # fmt: skip
_scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[attr-defined]


def from_json(text: str) -> Any:
    """Parse stored JSON text; canonical text needs none of ``json.loads``'s extras."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):
        return json.loads(text)  # not canonical after all: parse it (or raise) the long way
    return value


def _canon(value: Any) -> Any:
    """Write integral floats as ints, so ``1.0`` and ``1`` (deep-equal) have one text."""
    t = type(value)
    if t is float:
        return int(value) if value.is_integer() else value
    if t is list or t is tuple:
        return [_canon(v) for v in value]
    if t is dict:
        return {k: _canon(v) for k, v in value.items()}
    return value


_quote: Callable[[str], str] = json.encoder.encode_basestring


def str_list_to_json(value: Any) -> str:
    """``to_json`` for a list of strings, without the general encoder's overhead."""
    try:
        return "[" + ",".join([_quote(v) for v in value]) + "]"
    except TypeError:  # not all strings after all
        return to_json(value)


def to_json(value: Any) -> str:
    """Canonical JSON text of a value: equal texts <=> deep-equal values."""
    return _encode(_canon(value))


class Dialect(ABC):
    """What one SQL engine spells differently. Subclasses fill the class attributes."""

    name: ClassVar[str] = "sql"
    param: ClassVar[str] = "?"
    quote_char: ClassVar[str] = '"'
    max_params: ClassVar[int] = 999
    no_limit: ClassVar[str] = "-1"
    true: ClassVar[str] = "1"
    false: ClassVar[str] = "0"

    def quote(self, name: str) -> str:
        """Quote an identifier (a declared field's stored name or a collection)."""
        if not isinstance(name, str) or not name or "\x00" in name:
            raise QueryError(f"{name!r} cannot be a {self.name} identifier")
        q = self.quote_char
        return q + name.replace(q, q + q) + q

    @abstractmethod
    def encode_datetime(self, value: datetime) -> Any:
        """A datetime as the driver should bind it."""

    @abstractmethod
    def decode_datetime(self, value: Any) -> datetime:
        """A stored datetime back as aware UTC."""

    @abstractmethod
    def json_type_is(self, col: str, types: str) -> str:
        """SQL testing that the JSON text in ``col`` is one of ``types`` (SQL literals)."""

    @abstractmethod
    def json_number(self, col: str) -> str:
        """SQL reading a JSON number scalar in ``col`` as an SQL number."""

    @abstractmethod
    def json_string(self, col: str) -> str:
        """SQL reading a JSON string scalar in ``col`` as SQL text (unquoted)."""

    @abstractmethod
    def substring(self, haystack: str, needle: str) -> str:
        """SQL true when ``needle`` occurs in ``haystack`` (case-sensitive, by code point)."""

    @abstractmethod
    def list_contains(self, col: str, item: Any, params: list[Any]) -> str:
        """SQL true when the JSON array in ``col`` holds an element deep-equal to ``item``."""

    # JSON type names as the engine's JSON type function reports them.
    json_numbers: ClassVar[str] = ""
    json_array: ClassVar[str] = ""
    json_text: ClassVar[str] = ""


class SQLiteDialect(Dialect):
    """SQLite >= 3.38 (JSON functions built in). Datetimes are fixed-width ISO text."""

    name = "sqlite"
    param = "?"
    quote_char = '"'
    max_params = 32766
    no_limit = "-1"
    json_numbers = "'integer', 'real'"
    json_array = "'array'"
    json_text = "'text'"

    def encode_datetime(self, value: datetime) -> Any:
        # "YYYY-MM-DD HH:MM:SS.ffffff" in UTC: fixed width, so text order is time order.
        if value.tzinfo is not UTC and value.tzinfo is not None:
            value = value.astimezone(UTC)
        # %-formatting of the fields: a third faster than isoformat(), which goes
        # through C printf (this runs once per datetime of every row written).
        return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031
            value.year, value.month, value.day,
            value.hour, value.minute, value.second, value.microsecond,
        )  # fmt: skip

    def decode_datetime(self, value: Any) -> datetime:
        return datetime.fromisoformat(value + "+00:00")

    def json_type_is(self, col: str, types: str) -> str:
        return f"json_type({col}) IN ({types})"

    def json_number(self, col: str) -> str:
        return f"json_extract({col}, '$')"

    def json_string(self, col: str) -> str:
        return f"json_extract({col}, '$')"

    def substring(self, haystack: str, needle: str) -> str:
        return f"instr({haystack}, {needle}) > 0"

    def list_contains(self, col: str, item: Any, params: list[Any]) -> str:
        # json_each yields each element's JSON type and SQL value; comparing both keeps
        # true distinct from 1 while 1 still equals 1.0, as deep_equal wants.
        p = self.param
        if isinstance(item, bool):
            params.append("true" if item else "false")
            test = f"type = {p}"
        elif isinstance(item, int | float):
            params.append(item)
            test = f"type IN ('integer', 'real') AND value = {p}"
        elif isinstance(item, list | tuple | dict):
            params += ["object" if isinstance(item, dict) else "array", to_json(item)]
            test = f"type = {p} AND value = {p}"
        elif isinstance(item, str) and "\x00" in item:
            # SQLite's text values stop at NUL: compare the element's JSON text instead.
            params.append(to_json(item))
            test = f"type = 'text' AND {col} -> fullkey = {p}"
        else:
            params.append(item.isoformat() if isinstance(item, datetime) else item)
            test = f"type = 'text' AND value = {p}"
        return f"EXISTS (SELECT 1 FROM json_each({col}) WHERE {test})"


class MySQLDialect(Dialect):
    """MySQL 8 / MariaDB >= 10.6 (JSON_TABLE). Datetimes are DATETIME(6) in UTC."""

    name = "mysql"
    param = "%s"
    quote_char = "`"
    max_params = 60000
    no_limit = "18446744073709551615"
    json_numbers = "'INTEGER', 'UNSIGNED INTEGER', 'DOUBLE', 'DECIMAL'"
    json_array = "'ARRAY'"
    json_text = "'STRING'"

    def quote(self, name: str) -> str:
        # The drivers %-format statements client side: a literal % must be doubled.
        return super().quote(name).replace("%", "%%")

    def encode_datetime(self, value: datetime) -> Any:
        if value.tzinfo is not UTC and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None)

    def decode_datetime(self, value: Any) -> datetime:
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]

    def json_type_is(self, col: str, types: str) -> str:
        return f"JSON_TYPE({col}) IN ({types})"

    def json_number(self, col: str) -> str:
        return f"CAST({col} AS DOUBLE)"

    def json_string(self, col: str) -> str:
        return f"JSON_UNQUOTE({col})"

    def substring(self, haystack: str, needle: str) -> str:
        # Byte-wise: UTF-8 substrings are exactly code-point substrings, case-sensitive.
        return f"LOCATE(CAST({needle} AS BINARY), CAST({haystack} AS BINARY)) > 0"

    def list_contains(self, col: str, item: Any, params: list[Any]) -> str:
        # JSON_TABLE's JSON PATH column is the element's own text; the stored text is
        # canonical, so every element's text is canonical too: compare texts.
        params.append(to_json(item))
        return (
            f"EXISTS (SELECT 1 FROM JSON_TABLE({col}, '$[*]' COLUMNS "
            f"(v JSON PATH '$')) AS jt WHERE jt.v = {self.param})"
        )


ColumnOf = Callable[[str], str]

_OPS = {"less": "<", "less_equal": "<=", "greater": ">", "greater_equal": ">="}


class _WhereCompiler(Compiler[tuple[str, bool]]):
    """Visits a node to ``(sql, two_valued)``, appending parameters in text order."""

    def __init__(self, dialect: Dialect, column: ColumnOf, encode: Callable[[Any, Kind], Any]):
        self.adapter = dialect.name
        self.d = dialect
        self.column = column
        self.encode = encode
        self.params: list[Any] = []
        self.strict = False  # under Not/Xor: leaves must never be NULL

    # -- logic --------------------------------------------------------------------------
    def _strict(self, node: Node) -> str:
        before, self.strict = self.strict, True
        try:
            sql, two_valued = self.visit(node)
        finally:
            self.strict = before
        return sql if two_valued else f"COALESCE({sql}, 0)"

    def _sub(self, node: Node) -> str:
        if self.strict:
            return self._strict(node)
        return self.visit(node)[0]

    def visit_and(self, node: And) -> tuple[str, bool]:
        if not node.items:
            return self.d.true, True
        return "(" + " AND ".join(self._sub(n) for n in node.items) + ")", self.strict

    def visit_or(self, node: Or) -> tuple[str, bool]:
        if not node.items:
            return self.d.false, True
        return "(" + " OR ".join(self._sub(n) for n in node.items) + ")", self.strict

    def visit_xor(self, node: Xor) -> tuple[str, bool]:
        if not node.items:
            return self.d.false, True
        return "((" + ") + (".join(self._strict(n) for n in node.items) + ")) = 1", True

    def visit_not(self, node: Not) -> tuple[str, bool]:
        return f"NOT ({self._strict(node.item)})", True

    # -- leaves -------------------------------------------------------------------------
    def _bind(self, node: Compare, value: Any) -> str:
        self.params.append(self.encode(value, node.kind))
        return self.d.param

    def visit_equal(self, node: Equal) -> tuple[str, bool]:
        return f"{self.column(node.field)} = {self._bind(node, node.value)}", False

    def visit_diff(self, node: Diff) -> tuple[str, bool]:
        return f"{self.column(node.field)} <> {self._bind(node, node.value)}", False

    def visit_exists(self, node: Exists) -> tuple[str, bool]:
        test = "IS NOT NULL" if node.value else "IS NULL"
        return f"{self.column(node.field)} {test}", True

    def _compare(self, node: Compare) -> tuple[str, bool]:
        op, col = _OPS[node.visit_name], self.column(node.field)
        if node.kind != "any":
            return f"{col} {op} {self._bind(node, node.value)}", False
        if isinstance(node.value, datetime):
            return self.d.false, True  # JSON holds no datetimes (documented)
        self.params.append(node.value)
        is_number = self.d.json_type_is(col, self.d.json_numbers)
        return f"({is_number} AND {self.d.json_number(col)} {op} {self.d.param})", False

    visit_less = visit_less_equal = visit_greater = visit_greater_equal = _compare

    def _members(self, node: In | NotIn) -> str:
        return ", ".join(self._bind(node, v) for v in node.value)

    def visit_in(self, node: In) -> tuple[str, bool]:
        if not node.value:
            return self.d.false, True
        return f"{self.column(node.field)} IN ({self._members(node)})", False

    def visit_not_in(self, node: NotIn) -> tuple[str, bool]:
        col = self.column(node.field)
        if not node.value:
            return f"{col} IS NOT NULL", True
        return f"{col} NOT IN ({self._members(node)})", False

    def visit_contains(self, node: Contains) -> tuple[str, bool]:
        col, d = self.column(node.field), self.d
        if node.kind == "str":
            self.params.append(node.value)
            return d.substring(col, d.param), False
        if node.kind == "list":
            return d.list_contains(col, node.value, self.params), True
        if node.kind != "any":
            return d.false, True
        has_item = d.list_contains(col, node.value, self.params)
        parts = [f"({d.json_type_is(col, d.json_array)} AND {has_item})"]
        if isinstance(node.value, str):
            self.params.append(node.value)
            text = d.substring(d.json_string(col), d.param)
            parts.append(f"({d.json_type_is(col, d.json_text)} AND {text})")
        return "(" + " OR ".join(parts) + ")", False


def compile_where(
    node: Node, dialect: Dialect, column: ColumnOf, encode: Callable[[Any, Kind], Any]
) -> tuple[str, list[Any]]:
    """Compile a canonical query to ``(sql, params)`` for a WHERE clause.

    Args:
        node: the parsed query.
        dialect: the engine's dialect.
        column: logical field name -> quoted column (raises ``QueryError`` if unknown).
        encode: ``(value, kind) -> bound value`` (datetimes, JSON text).
    """
    compiler = _WhereCompiler(dialect, column, encode)
    sql, _ = compiler.visit(node)
    return sql, compiler.params
