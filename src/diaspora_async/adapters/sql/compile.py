"""The shared SQL compiler: canonical query AST -> one WHERE clause with bound parameters.

Sits under the SQL adapters (``sqlite.py``, ``mysql.py``): their table plans
(``plan.py``) hand a parsed ``Node`` to ``compile_where`` and get back SQL text plus a
parameter list. Everything that differs between engines lives in a small ``Dialect``
object (``dialect.py``: quoting, placeholder, JSON functions, column types); the visitor
itself is shared. Values are always parameters; identifiers come only from the model's
declared fields and are quoted. List/dict/``any`` values are stored as canonical JSON
text (``json.py``) so deep equality is text equality, and list containment compares one
element's canonical text (or, in SQLite, its JSON type and value) so booleans never
equal numbers.

SQL's NULL logic differs from the reference matcher's (``Not`` must match missing
values), so leaves compiled under ``Not``/``Xor`` are made two-valued with
``COALESCE(..., 0)``; in positive context NULL already behaves as false.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

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
from .dialect import Dialect

__all__ = ["compile_where"]

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
