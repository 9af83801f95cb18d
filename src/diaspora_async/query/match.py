"""The reference evaluator: what every query means, in plain Python.

The memory adapter runs on it, the Redis adapter filters with it after using an index,
and the conformance suite holds every other adapter to its answers. A query compiles
once into nested closures (no per-row dispatch on node types), and ``sort_rows`` gives
the one deterministic order every adapter must reproduce.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from .ast import (
    And,
    Compare,
    Contains,
    Diff,
    Equal,
    Exists,
    Greater,
    GreaterEqual,
    In,
    Less,
    LessEqual,
    Node,
    Not,
    NotIn,
    Or,
    SortKey,
    Xor,
)
from .compiler import Compiler

__all__ = ["Predicate", "compile_predicate", "deep_equal", "sort_rows"]

Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]


def deep_equal(a: Any, b: Any) -> bool:
    """Equality as every store sees it: bools are not numbers; lists and dicts compare deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list | tuple):
        return (
            isinstance(b, list | tuple)
            and len(a) == len(b)
            and all(deep_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(deep_equal(v, b[k]) for k, v in a.items())
        )
    if isinstance(b, list | tuple | dict):
        return False
    if isinstance(a, int | float) != isinstance(b, int | float):
        return False
    return bool(a == b)


def _comparable(value: Any, operand: Any) -> bool:
    if value is None:
        return False
    if isinstance(operand, datetime):
        return isinstance(value, datetime)
    if isinstance(operand, str | bool):
        # Only keyset paging (``keyset.py``) compares strings and bools: each to its own
        # type, strings by code point as every store's binary collation does.
        return type(value) is type(operand)
    return not isinstance(value, bool) and isinstance(value, int | float)


class _MatchCompiler(Compiler[Predicate]):
    adapter = "memory"

    def visit_equal(self, node: Equal) -> Predicate:
        f, v = node.field, node.value
        return lambda row: (x := row.get(f)) is not None and deep_equal(x, v)

    def visit_diff(self, node: Diff) -> Predicate:
        f, v = node.field, node.value
        return lambda row: (x := row.get(f)) is not None and not deep_equal(x, v)

    def visit_exists(self, node: Exists) -> Predicate:
        f = node.field
        if node.value:
            return lambda row: row.get(f) is not None
        return lambda row: row.get(f) is None

    def _compare(self, node: Compare, test: Callable[[Any, Any], bool]) -> Predicate:
        f, v = node.field, node.value
        return lambda row: _comparable(x := row.get(f), v) and test(x, v)

    def visit_less(self, node: Less) -> Predicate:
        return self._compare(node, lambda x, v: bool(x < v))

    def visit_less_equal(self, node: LessEqual) -> Predicate:
        return self._compare(node, lambda x, v: bool(x <= v))

    def visit_greater(self, node: Greater) -> Predicate:
        return self._compare(node, lambda x, v: bool(x > v))

    def visit_greater_equal(self, node: GreaterEqual) -> Predicate:
        return self._compare(node, lambda x, v: bool(x >= v))

    def visit_in(self, node: In) -> Predicate:
        f, values = node.field, node.value
        if all(type(v) is str for v in values):
            # Ids and other strings: a set lookup (deep_equal(str, x) holds only for x == str).
            keys = frozenset(values)
            return lambda row: type(x := row.get(f)) is str and x in keys
        return lambda row: (x := row.get(f)) is not None and any(deep_equal(x, v) for v in values)

    def visit_not_in(self, node: NotIn) -> Predicate:
        f, values = node.field, node.value
        if all(type(v) is str for v in values):
            keys = frozenset(values)
            return lambda row: (x := row.get(f)) is not None and not (type(x) is str and x in keys)
        return lambda row: (
            (x := row.get(f)) is not None and not any(deep_equal(x, v) for v in values)
        )

    def visit_contains(self, node: Contains) -> Predicate:
        f, v = node.field, node.value

        def contains(row: Row) -> bool:
            x = row.get(f)
            if isinstance(x, list):
                return any(deep_equal(item, v) for item in x)
            return isinstance(x, str) and isinstance(v, str) and v in x

        return contains

    def visit_and(self, node: And) -> Predicate:
        preds = [self.visit(n) for n in node.items]
        return lambda row: all(p(row) for p in preds)

    def visit_or(self, node: Or) -> Predicate:
        preds = [self.visit(n) for n in node.items]
        return lambda row: any(p(row) for p in preds)

    def visit_xor(self, node: Xor) -> Predicate:
        preds = [self.visit(n) for n in node.items]
        return lambda row: sum(1 for p in preds if p(row)) == 1

    def visit_not(self, node: Not) -> Predicate:
        pred = self.visit(node.item)
        return lambda row: not pred(row)


_COMPILER = _MatchCompiler()


def compile_predicate(where: Node | None) -> Predicate:
    """Compile a canonical query into a function ``row -> bool`` (None matches all)."""
    if where is None:
        return lambda row: True
    return _COMPILER.visit(where)


def sort_rows(rows: Iterable[Row], keys: Iterable[SortKey]) -> list[Any]:
    """Sort rows in the canonical order: missing first ascending, last descending.

    Stable sorts from the last key to the first give multi-key order with mixed
    directions; Python's ``reverse=True`` keeps equal items in their prior order.
    """
    out = list(rows)
    for key in reversed(tuple(keys)):
        f = key.field
        out.sort(
            key=lambda row: (0, 0) if (v := row.get(f)) is None else (1, v),
            reverse=key.descending,
        )
    return out
