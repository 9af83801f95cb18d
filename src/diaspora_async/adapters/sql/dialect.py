"""What each SQL engine spells differently: ``Dialect`` and its two implementations.

A ``Dialect`` holds quoting, the placeholder, JSON functions, datetime binding and the
parameter limit; ``SQLiteDialect`` and ``MySQLDialect`` (also MariaDB) fill it in. The
WHERE compiler (``compile.py``) and the table plans (``plan.py``) ask it for SQL
fragments, so neither contains engine-specific text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Any, ClassVar

from ...errors import QueryError
from .json import to_json

__all__ = ["Dialect", "MySQLDialect", "SQLiteDialect"]


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
