"""Canonical query nodes -> MongoDB filter documents, with the reference semantics.

Sits between the ``mongo`` adapter and the query AST: ``MongoAdapter`` builds one
``MongoFilterCompiler`` per collection schema and hands it every ``where`` it receives;
the filter (plain dicts, user values only ever in operand position) goes to the driver
as data. Mongo's own query semantics differ from the reference matcher (``match.py``)
in three places, and the compiler closes each gap explicitly:

* arrays are traversed: ``{f: {"$eq": v}}`` also matches an array holding ``v``, so
  wherever a field may hold arrays (``list`` and ``any`` kinds) equality carries a guard
  (``$not $type array`` for a scalar or dict operand, ``$not $elemMatch`` for a list);
* ``null`` equals missing, and the adapter never stores a top-level None, so "exists"
  is ``$ne: null`` (or ``$type: array`` for arrays, which ``$ne: null`` would drop when
  they hold a null);
* embedded documents compare key by key in stored order, so every dict is stored and
  queried with its keys sorted (``canonical``).

User values never become operators: dict operands always sit under ``$eq``/``$ne``
(literal there), never under ``$in``/``$nin`` (which refuse ``$`` keys), and substring
search escapes its operand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ...errors import QueryError
from ...fields import FieldSpec, Kind
from ...query.ast import (
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
from ...query.compiler import Compiler
from ..base import DELETED, REV

__all__ = [
    "MATCH_NOTHING",
    "Filter",
    "MongoFilterCompiler",
    "canonical",
    "needs_canonical",
    "requires_a_field",
    "stored_path",
]

Filter = dict[str, Any]

# ``$nor`` of the empty filter (which matches everything): the empty Or / Xor.
MATCH_NOTHING: Filter = {"$nor": [{}]}
_NOT_ARRAY: Filter = {"$not": {"$type": "array"}}
_ARRAY_KINDS = frozenset({"list", "any"})
_MS = timedelta(milliseconds=1)
_RESERVED = frozenset({"_id", REV, DELETED})  # document keys the adapter itself uses


def canonical(value: Any) -> Any:
    """Return ``value`` with every dict's keys sorted, recursively (lists keep order).

    Mongo compares embedded documents key by key in stored order; the reference
    semantics ignore key order. Storing and querying every dict in one order makes
    Mongo's comparison agree. Scalars come back as they are.
    """
    if isinstance(value, dict):
        try:
            keys = sorted(value)
        except TypeError:  # mixed key types: BSON refuses non-str keys, say so at the write
            keys = list(value)
        return {k: canonical(value[k]) for k in keys}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def stored_path(schema_model: str, logical: str, stored: str) -> str:
    """The document key of a field: ``_id`` for ``id``; refuse names Mongo reads as paths.

    Raises:
        QueryError: ``stored`` starts with ``$``, contains ``.`` or NUL, or is ``_id``,
            ``_rev`` or ``_del`` for a field other than ``id`` / the revision (Mongo
            would read it as an operator, a dotted path or the primary key; the adapter
            keeps revisions and deletion times under the last two).
    """
    if logical == "id":
        return "_id"
    if logical == REV and stored == REV:
        return REV
    if (
        not stored
        or stored.startswith("$")
        or "." in stored
        or "\0" in stored
        or stored in _RESERVED
    ):
        raise QueryError(
            f"{schema_model}.{logical}: stored name {stored!r} cannot be a MongoDB field name "
            "(no leading '$', no '.', not '_id', '_rev' or '_del')"
        )
    return stored


def _dt_operand(value: Any, up: bool) -> Any:
    """Bring a datetime operand to stored (UTC, millisecond) precision.

    BSON dates keep milliseconds and the driver floors finer values, which would turn
    ``x >= 12.3456`` into ``x >= 12.345``. For ``>=`` and ``<`` the exact bound over
    millisecond values is the next millisecond up (``up=True``); for ``>``, ``<=`` the floor.
    Typed datetime fields are already normalised by the parser; ``any`` fields are not.
    """
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    us = value.microsecond % 1000
    if us:
        value = value - timedelta(microseconds=us)
        if up:
            value += _MS
    return value


def _eq_ops(value: Any, arrays: bool) -> Filter:
    """Operators matching a single value that deep-equals ``value`` (canonical form).

    With ``arrays`` (the tested value may be an array), Mongo's traversal is cut off: a
    scalar or dict operand must not match an array holding it, and a list operand must
    not match an array holding that list (a list cannot both equal and contain itself).
    """
    if not arrays:
        return {"$eq": value}
    if isinstance(value, list):
        return {"$eq": value, "$not": {"$elemMatch": {"$eq": value}}}
    return {"$eq": value, **_NOT_ARRAY}


def _scalar(value: Any) -> bool:
    return not isinstance(value, dict | list | tuple)


class MongoFilterCompiler(Compiler[Filter]):
    """Compile canonical nodes of one collection to a Mongo filter document.

    Args:
        model: the model's name (for messages).
        fields: logical name -> spec (declared fields; ``id`` is implicit).
        stored: logical name -> stored name (``CollectionSchema.stored``).
    """

    adapter = "mongo"

    def __init__(
        self, model: str, fields: Mapping[str, FieldSpec], stored: Mapping[str, str]
    ) -> None:
        self.paths = {name: stored_path(model, name, s) for name, s in stored.items()}
        self._item_kinds: dict[str, Kind | None] = {n: s.item_kind for n, s in fields.items()}

    def compile(self, where: Node | None) -> Filter:
        """The filter for ``where`` (``{}`` when None: everything)."""
        return {} if where is None else self.visit(where)

    def sort(self, keys: Iterable[SortKey]) -> list[tuple[str, int]]:
        """A ``sort=`` spec; Mongo puts null/missing lowest, i.e. first ascending and
        last descending, as the reference order wants."""
        return [(self.path(k.field), -1 if k.descending else 1) for k in keys]

    def path(self, name: str) -> str:
        """The document key of a logical field."""
        try:
            return self.paths[name]
        except KeyError:
            raise QueryError(f"unknown field {name!r}") from None

    # -- helpers -----------------------------------------------------------------------
    def _arrays(self, node: Compare) -> bool:
        """Whether an Equal on this field must guard against Mongo's array traversal."""
        if node.kind == "any":
            return True
        return node.kind == "list" and self._item_kinds.get(node.field) in _ARRAY_KINDS

    def _exists(self, node: Compare) -> Filter:
        path = self.path(node.field)
        if node.kind == "list":
            return {path: {"$type": "array"}}
        if node.kind == "any":
            # ``$ne: null`` alone drops arrays that hold a null element.
            return {"$or": [{path: {"$ne": None}}, {path: {"$type": "array"}}]}
        return {path: {"$ne": None}}

    def _equal(self, node: Compare, value: Any) -> Filter:
        return {self.path(node.field): _eq_ops(canonical(value), self._arrays(node))}

    # -- comparisons -------------------------------------------------------------------
    def visit_equal(self, node: Equal) -> Filter:
        return self._equal(node, node.value)

    def visit_diff(self, node: Diff) -> Filter:
        path, value = self.path(node.field), canonical(node.value)
        if node.kind not in _ARRAY_KINDS:
            if _scalar(value):
                return {path: {"$nin": [value, None]}}
            return {"$and": [{path: {"$ne": None}}, {path: {"$ne": value}}]}
        if not self._arrays(node):  # a list of scalars: no element can equal a list
            return {path: {"$type": "array", "$ne": value}}
        return {"$and": [self._exists(node), {"$nor": [self._equal(node, value)]}]}

    def visit_exists(self, node: Exists) -> Filter:
        if node.value:
            return self._exists(node)
        if node.kind not in _ARRAY_KINDS:
            return {self.path(node.field): {"$eq": None}}  # null or missing
        return {"$nor": [self._exists(node)]}

    def _compare(self, node: Compare, op: str, up: bool) -> Filter:
        # Mongo's type bracketing keeps numbers to numbers and dates to dates, and bools
        # are their own type; only array traversal needs cutting off (``any`` fields).
        ops: Filter = {op: _dt_operand(node.value, up)}
        if node.kind == "any":
            ops.update(_NOT_ARRAY)
        return {self.path(node.field): ops}

    def visit_less(self, node: Less) -> Filter:
        return self._compare(node, "$lt", up=True)

    def visit_less_equal(self, node: LessEqual) -> Filter:
        return self._compare(node, "$lte", up=False)

    def visit_greater(self, node: Greater) -> Filter:
        return self._compare(node, "$gt", up=False)

    def visit_greater_equal(self, node: GreaterEqual) -> Filter:
        return self._compare(node, "$gte", up=True)

    def visit_in(self, node: In) -> Filter:
        values = [canonical(v) for v in node.value]
        if not values:
            return dict(MATCH_NOTHING)
        if len(values) == 1:
            return self._equal(node, values[0])
        if all(_scalar(v) for v in values) and node.kind != "list":
            ops: Filter = {"$in": values}
            if node.kind == "any":
                ops.update(_NOT_ARRAY)
            return {self.path(node.field): ops}
        # Lists and dicts: ``$in`` would traverse arrays and refuses ``$``-keyed dicts.
        return {"$or": [self._equal(node, v) for v in values]}

    def visit_not_in(self, node: NotIn) -> Filter:
        values = [canonical(v) for v in node.value]
        if node.kind not in _ARRAY_KINDS and all(_scalar(v) for v in values):
            return {self.path(node.field): {"$nin": [*values, None]}}
        if not values:
            return self._exists(node)
        return {"$and": [self._exists(node), {"$nor": [self._equal(node, v) for v in values]}]}

    def visit_contains(self, node: Contains) -> Filter:
        path, value = self.path(node.field), canonical(node.value)
        if node.kind == "str":
            return {path: {"$regex": re.escape(value)}}
        items_arrays = node.kind == "any" or self._item_kinds.get(node.field) in _ARRAY_KINDS
        if node.kind == "list" and not items_arrays:
            return {path: {"$eq": value}}  # on an array: "some element equals"
        element: Filter = {path: {"$elemMatch": _eq_ops(value, items_arrays)}}
        if node.kind != "any" or not isinstance(value, str):
            return element
        substring = {path: {"$regex": re.escape(value), **_NOT_ARRAY}}
        return {"$or": [element, substring]}

    # -- logic -------------------------------------------------------------------------
    def visit_and(self, node: And) -> Filter:
        parts = [self.visit(n) for n in node.items]
        merged: Filter = {}
        for part in parts:
            if merged.keys() & part.keys():
                return {"$and": parts}
            merged.update(part)
        return merged

    def visit_or(self, node: Or) -> Filter:
        if not node.items:
            return dict(MATCH_NOTHING)
        if len(node.items) == 1:
            return self.visit(node.items[0])
        return {"$or": [self.visit(n) for n in node.items]}

    def visit_xor(self, node: Xor) -> Filter:
        # Exactly one: OR over i of (item_i AND none of the others). Plain query
        # operators only, so null/missing keep query semantics (no ``$expr``).
        parts = [self.visit(n) for n in node.items]
        if not parts:
            return dict(MATCH_NOTHING)
        if len(parts) == 1:
            return parts[0]
        return {
            "$or": [
                {"$and": [part, {"$nor": parts[:i] + parts[i + 1 :]}]}
                for i, part in enumerate(parts)
            ]
        }

    def visit_not(self, node: Not) -> Filter:
        if isinstance(node.item, Not):
            return self.visit(node.item.item)
        return {"$nor": [self.visit(node.item)]}


def needs_canonical(spec: FieldSpec) -> bool:
    """Whether a field's values may hold dicts, which must be stored with sorted keys."""
    return spec.kind in ("dict", "any") or (
        spec.kind == "list" and spec.item_kind in ("dict", "any", "list")
    )


# Operators that never match a missing field whatever their operand, and those that do
# not as long as their operand is not null (``$gte: null`` matches missing, say).
_NEVER_MISSING = frozenset({"$regex", "$elemMatch", "$type", "$size", "$all", "$mod"})
_UNLESS_NULL = frozenset({"$eq", "$gt", "$gte", "$lt", "$lte"})


def requires_a_field(flt: Filter) -> bool:
    """Whether ``flt`` can only match documents holding some declared field.

    A tombstone holds ``_id``, ``_rev`` and ``_del`` only, so such a filter never matches
    one and needs no ``_del`` condition, which would cost the server a check per
    document (about a tenth of a query's time on SecantusDB). Conservative: False
    whenever unsure (``$nor``, ``$not``, conditions on ``_id`` or ``_rev``).
    """
    for key, cond in flt.items():
        if key == "$and":
            if any(requires_a_field(part) for part in cond):
                return True
        elif key == "$or":
            if cond and all(requires_a_field(part) for part in cond):
                return True
        elif key.startswith("$") or key in _RESERVED:
            continue
        elif isinstance(cond, dict) and _operators_need_value(cond):
            return True
    return False


def _operators_need_value(ops: Filter) -> bool:
    """Whether one field's (ANDed) operators all fail on a missing value."""
    for op, operand in ops.items():
        if op in _NEVER_MISSING or (op == "$exists" and operand is True):
            return True
        if op in _UNLESS_NULL and operand is not None:
            return True
        if op == "$ne" and operand is None:
            return True
        if op == "$in" and isinstance(operand, list) and None not in operand:
            return True
        if op == "$nin" and isinstance(operand, list) and None in operand:
            return True
    return False
