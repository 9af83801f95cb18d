"""What each SQL engine spells differently: ``Dialect`` and its two implementations.

A ``Dialect`` holds quoting, the placeholder, JSON functions, datetime binding and the
parameter limit; ``SQLiteDialect`` and ``MySQLDialect`` (also MariaDB) fill it in. The
WHERE compiler (``compile.py``) and the table plans (``plan.py``) ask it for SQL
fragments, so neither contains engine-specific text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from ...errors import QueryError
from .json import to_json

__all__ = ["Dialect", "MySQLDialect", "SQLiteDialect", "Upsert"]


@dataclass(frozen=True, slots=True)
class Upsert:
    """What a dialect needs to write one upsert clause (``Dialect.upsert``).

    Attributes:
        table: the quoted table.
        id: the quoted id column.
        columns: the quoted columns a conflicting row's values replace (the revision
            column last).
        guard: ``(old, new) -> SQL``, the condition for replacing a stored row, given
            how to spell a stored column and an offered one.
        unique: the table has unique indexes besides the id.
        alias: MySQL 8: refer to the offered row through this alias, not ``VALUES()``.
    """

    table: str
    id: str
    columns: tuple[str, ...]
    guard: Callable[[Callable[[str], str], Callable[[str], str]], str]
    unique: bool = False
    alias: str | None = None


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

    # -- revision-guarded upserts (``upsert.py``) ---------------------------------------
    @abstractmethod
    def table_columns(self) -> str:
        """A SELECT of a table's column names; its one parameter is the table's name."""

    @abstractmethod
    def upsert(self, u: Upsert) -> str:
        """The text after ``INSERT INTO t (...) VALUES ...`` that applies a conflicting row
        only where ``u.guard`` holds (columns of the stored row as ``u.old(c)``, the
        offered ones as ``u.new(c)``), and leaves every other conflicting row as it is."""

    def first_row(self, marks: str) -> str:
        """The placeholders of an upsert's first row (MySQL resets its refusal flag there)."""
        return marks

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

    def table_columns(self) -> str:
        return "SELECT name FROM pragma_table_info(?)"

    def upsert(self, u: Upsert) -> str:
        # The DO UPDATE's WHERE is tested before any SET, and a row it refuses is not
        # counted in changes(): the rowcount says how many rows applied. Only an id
        # conflict comes here; one on another unique index raises, as it should.
        sets = ", ".join(f"{c} = excluded.{c}" for c in u.columns)
        guard = u.guard(lambda c: f"{u.table}.{c}", lambda c: f"excluded.{c}")
        return f" ON CONFLICT ({u.id}) DO UPDATE SET {sets} WHERE {guard}"


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

    def table_columns(self) -> str:
        return (
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s"
        )

    def first_row(self, marks: str) -> str:
        # LAST_INSERT_ID(0) before the first row: the refusal flag (below) starts clear in
        # every statement, whatever an earlier one on this connection left.
        return "(IF(LAST_INSERT_ID(0), NULL, %s)" + marks[3:]

    def upsert(self, u: Upsert) -> str:
        # ON DUPLICATE KEY UPDATE assigns left to right and each assignment sees the ones
        # before it, so the guard is evaluated once, in the first assignment, and carried
        # in the session's LAST_INSERT_ID: bit 1 "this row applies", bit 0 "some row of
        # this statement did not" (sticky). The OK packet reports LAST_INSERT_ID(expr) as
        # the insert id (``cursor.lastrowid``), so an odd one tells the adapter that some
        # row was refused, in the same round trip, whatever the affected-rows count (which
        # cannot tell an insert from a refused row). The table has no AUTO_INCREMENT
        # column, so a statement with no conflict reports 0.
        alias = u.alias

        def new(c: str) -> str:
            return f"{alias}.{c}" if alias else f"VALUES({c})"

        guard = u.guard(lambda c: c, new)
        state = f"LAST_INSERT_ID((LAST_INSERT_ID() & 1) | IF({guard}, 2, 1))"
        first = f"IF({state}, {u.id}, {u.id})"
        if u.unique:
            # ON DUPLICATE KEY fires on ANY unique index: a conflict on another one must
            # not update that other row. Integer overflow is an error whatever sql_mode
            # says; ``translate_error`` makes it an IntegrityError by the literal, which
            # both servers print in the message.
            overflow = f"18446744073709551615 + LENGTH({u.id})"
            first = f"IF({u.id} = {new(u.id)}, {first}, {overflow})"
        sets = [f"{u.id} = {first}"]
        sets += [f"{c} = IF(LAST_INSERT_ID() & 2, {new(c)}, {c})" for c in u.columns]
        named = f" AS {alias}" if alias else ""
        return f"{named} ON DUPLICATE KEY UPDATE " + ", ".join(sets)
