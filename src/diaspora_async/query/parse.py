"""User query syntax -> canonical AST, validated once, before any I/O.

Called by ``models.py`` for every query-taking operation. Everything a user can get
wrong is caught here and raised as ``QueryError``: unknown fields and operators, an
alias used together with its canonical form, operands of the wrong type, bad options.
Per-field logic (``{"a": {"$or": [...]}}``) is distributed to the top level so compilers
see a small, uniform node set.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ..errors import QueryError
from ..fields import ID_FIELD, FieldSpec
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
    Query,
    SortKey,
    Xor,
)

__all__ = ["parse_options", "parse_query", "parse_where"]

# alias -> canonical; the canonical names are the only ones compilers ever see.
ALIASES = {
    "==": "$equal",
    "!=": "$diff",
    "~": "$exists",
    "<": "$less",
    "<=": "$lessEqual",
    ">": "$greater",
    ">=": "$greaterEqual",
    "||": "$or",
    "&&": "$and",
    "^^": "$xor",
    "!": "$not",
}
_LOGICAL = {"$or", "$and", "$xor", "$not"}
_COMPARISONS: dict[str, type[Compare]] = {
    "$less": Less,
    "$lessEqual": LessEqual,
    "$greater": Greater,
    "$greaterEqual": GreaterEqual,
}
_FIELD_OPS = {"$equal", "$diff", "$exists", "$in", "$nin", "$contains", *_COMPARISONS, *_LOGICAL}
_SORTABLE = {"str", "int", "float", "bool", "datetime"}


def _unknown_operator(key: str, allowed: set[str], where: str) -> QueryError:
    """``QueryError`` for an operator the language lacks, naming the likely one and
    listing the valid ones (Mongo's ``$gt`` -> ``>`` / ``$greater``)."""
    names = sorted(allowed) + sorted(a for a, c in ALIASES.items() if c in allowed)
    guess = _MONGO.get(key)
    if guess is None:
        close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.75)
        guess = close[0] if close else None
    hint = ""
    if guess is not None:
        aliases = [a for a, c in ALIASES.items() if c == guess]
        hint = " (did you mean " + " / ".join(repr(n) for n in [*aliases, guess]) + "?)"
    return QueryError(f"{where}unknown operator {key!r}{hint}; valid: {', '.join(names)}")


# Operators users bring from MongoDB, and ours that mean the same.
_MONGO = {"$gt": "$greater", "$gte": "$greaterEqual", "$lt": "$less", "$lte": "$lessEqual",
          "$eq": "$equal", "$ne": "$diff"}  # fmt: skip


def _canonical(key: str) -> str:
    return ALIASES.get(key, key)


def _is_operator(key: object) -> bool:
    return isinstance(key, str) and (key.startswith("$") or key in ALIASES)


def _check_duplicates(mapping: Mapping[str, Any], where: str) -> None:
    seen: dict[str, str] = {}
    for key in mapping:
        canon = _canonical(key)
        if canon in seen:
            raise QueryError(f"{where}: {seen[canon]!r} and {key!r} are the same operator")
        seen[canon] = key


def _combine(cls: type[Node], items: Sequence[Node]) -> Node:
    if cls is not Xor and len(items) == 1:
        return items[0]
    return cls(tuple(items))  # type: ignore[call-arg]


def _logical_items(op: str, value: Any, where: str) -> list[Any]:
    if not isinstance(value, list | tuple) or not value:
        raise QueryError(f"{where}: {op} takes a non-empty list, got {value!r}")
    return list(value)


class _Parser:
    def __init__(self, fields: Mapping[str, FieldSpec], model: str) -> None:
        self.fields = fields
        self.model = model

    def spec(self, name: Any) -> FieldSpec:
        if name == "id":
            return ID_FIELD
        if not isinstance(name, str) or name not in self.fields:
            known = ", ".join(["id", *self.fields])
            raise QueryError(f"{self.model} has no field {name!r} (fields: {known})")
        return self.fields[name]

    def top(self, query: Any) -> Node:
        if not isinstance(query, Mapping):
            raise QueryError(f"a query must be a dict, got {type(query).__name__}")
        _check_duplicates(query, "query")
        nodes: list[Node] = []
        for key, value in query.items():
            if _is_operator(key):
                op = _canonical(key)
                if op not in _LOGICAL:
                    raise _unknown_operator(key, _LOGICAL, "at the top level of a query: ")
                if op == "$not":
                    nodes.append(Not(self.top(value)))
                    continue
                items = [self.top(q) for q in _logical_items(op, value, "query")]
                cls = {"$or": Or, "$and": And, "$xor": Xor}[op]
                nodes.append(_combine(cls, items))
            else:
                nodes.append(self.condition(self.spec(key), value))
        return _combine(And, nodes)

    def condition(self, spec: FieldSpec, cond: Any) -> Node:
        if isinstance(cond, Mapping) and cond and any(_is_operator(k) for k in cond):
            if not all(_is_operator(k) for k in cond):
                bad = next(k for k in cond if not _is_operator(k))
                raise QueryError(f"field {spec.name!r}: {bad!r} is not an operator")
            _check_duplicates(cond, f"field {spec.name!r}")
            return _combine(And, [self.operator(spec, k, v) for k, v in cond.items()])
        if isinstance(cond, Mapping) and spec.kind not in ("dict", "any"):
            raise QueryError(f"field {spec.name!r}: a condition needs operators, got {cond!r}")
        return self.equal(spec, cond, Equal)

    def equal(self, spec: FieldSpec, value: Any, cls: type[Equal] | type[Diff]) -> Node:
        if value is None:
            return Exists(spec.name, cls is Diff, spec.kind)
        return cls(spec.name, self.cast(spec, value), spec.kind)

    def cast(self, spec: FieldSpec, value: Any) -> Any:
        if spec.kind == "any":
            return value
        return spec.cast(value)

    def operator(self, spec: FieldSpec, key: str, value: Any) -> Node:
        op = _canonical(key)
        where = f"field {spec.name!r}"
        if op not in _FIELD_OPS:
            raise _unknown_operator(key, _FIELD_OPS, f"{where}: ")
        if op in _LOGICAL:
            if op == "$not":
                return Not(self.condition(spec, value))
            items = [self.condition(spec, c) for c in _logical_items(key, value, where)]
            return _combine({"$or": Or, "$and": And, "$xor": Xor}[op], items)
        if op == "$equal":
            return self.equal(spec, value, Equal)
        if op == "$diff":
            return self.equal(spec, value, Diff)
        if op == "$exists":
            if not isinstance(value, bool):
                raise QueryError(f"{where}: {key} takes True or False, got {value!r}")
            return Exists(spec.name, value, spec.kind)
        if op in _COMPARISONS:
            return _COMPARISONS[op](spec.name, self.comparable(spec, key, value), spec.kind)
        if op in ("$in", "$nin"):
            return self.membership(spec, key, op, value)
        return self.contains(spec, key, value)

    def comparable(self, spec: FieldSpec, key: str, value: Any) -> Any:
        where = f"field {spec.name!r}"
        if spec.kind not in ("int", "float", "datetime", "any"):
            raise QueryError(f"{where}: {key} needs a number or datetime field, not {spec.kind}")
        if spec.codec is not None:
            # A date, an IntEnum member...: compared in its stored form.
            value = spec.cast(value, f"{where}: {key} operand")
        elif spec.kind == "datetime" and isinstance(value, str):
            value = spec.cast(value)
        if isinstance(value, bool) or not isinstance(value, int | float | datetime):
            raise QueryError(f"{where}: {key} takes a number or datetime, got {value!r}")
        if isinstance(value, float) and math.isnan(value):
            raise QueryError(f"{where}: {key} cannot compare with NaN")
        if spec.kind != "any":
            if (spec.kind == "datetime") != isinstance(value, datetime):
                raise QueryError(f"{where}: {key} operand {value!r} cannot match {spec.kind}")
            if spec.kind == "datetime":
                value = spec.cast(value)
        return value

    def membership(self, spec: FieldSpec, key: str, op: str, value: Any) -> Node:
        if not isinstance(value, list | tuple):
            raise QueryError(f"field {spec.name!r}: {key} takes a list, got {value!r}")
        values = tuple(self.cast(spec, v) for v in value if v is not None)
        has_none = len(values) != len(value)
        if op == "$nin":
            # "exists and is none of": a None in the list changes nothing.
            return NotIn(spec.name, values, spec.kind)
        node: Node = In(spec.name, values, spec.kind)
        return Or((node, Exists(spec.name, False, spec.kind))) if has_none else node

    def contains(self, spec: FieldSpec, key: str, value: Any) -> Node:
        where = f"field {spec.name!r}"
        if value is None:
            raise QueryError(f"{where}: {key} needs a value, got None")
        if spec.kind == "list":
            if spec.item_kind != "any":
                value = spec.cast([value])[0]
        elif spec.kind == "str" and spec.codec is None:
            if not isinstance(value, str):
                raise QueryError(f"{where}: {key} on a string takes a string, got {value!r}")
        elif spec.kind != "any":
            raise QueryError(f"{where}: {key} needs a list or string field, not {spec.kind}")
        return Contains(spec.name, value, spec.kind)


def parse_where(query: Any, fields: Mapping[str, FieldSpec], model: str = "model") -> Node | None:
    """Parse a user query dict to a canonical node; ``None`` or ``{}`` matches everything."""
    if query is None or (isinstance(query, Mapping) and not query):
        return None
    return _Parser(fields, model).top(query)


def _count(name: str, value: Any, allow_none: bool) -> int | None:
    if value is None:
        if allow_none:
            return None
        raise QueryError(f"{name} must be a whole number >= 0, got None")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise QueryError(f"{name} must be a whole number >= 0, got {value!r}")
    if value < 0:
        raise QueryError(f"{name} must be a whole number >= 0, got {value!r}")
    return int(value)


def parse_sort(sort: Any, fields: Mapping[str, FieldSpec]) -> tuple[SortKey, ...]:
    """Parse ``"field"``, ``"-field"`` or a list of them; append the ``id`` tie-breaker."""
    if sort is None:
        raw: list[Any] = []
    elif isinstance(sort, str):
        raw = [sort]
    elif isinstance(sort, list | tuple):
        raw = list(sort)
    else:
        raise QueryError(f"sort must be a field name or a list of them, got {sort!r}")
    keys: list[SortKey] = []
    for item in raw:
        if not isinstance(item, str) or item in ("", "-", "+"):
            raise QueryError(f"sort key must be a field name, got {item!r}")
        desc = item.startswith("-")
        name = item[1:] if item[:1] in "-+" else item
        spec = ID_FIELD if name == "id" else fields.get(name)
        if spec is None:
            raise QueryError(f"cannot sort on unknown field {name!r}")
        if spec.kind not in _SORTABLE:
            raise QueryError(f"cannot sort on field {name!r} of kind {spec.kind}")
        if spec.codec is not None and not spec.codec.ordered:
            raise QueryError(
                f"cannot sort on field {name!r}: its values are stored as exact text, "
                "which does not order like numbers"
            )
        if any(k.field == name for k in keys):
            raise QueryError(f"field {name!r} appears twice in sort")
        keys.append(SortKey(name, desc, spec.kind))
    if not any(k.field == "id" for k in keys):
        keys.append(SortKey("id", False, "str"))
    return tuple(keys)


def parse_options(
    fields: Mapping[str, FieldSpec],
    *,
    skip: Any = None,
    limit: Any = None,
    page: Any = None,
    sort: Any = None,
) -> tuple[tuple[SortKey, ...], int, int | None]:
    """Validate ``skip``/``limit``/``page``/``sort``; returns ``(sort, skip, limit)``."""
    skip_n = _count("skip", skip, allow_none=True) or 0
    limit_n = _count("limit", limit, allow_none=True)
    if page is not None:
        page_n = _count("page", page, allow_none=False)
        if limit_n is None:
            raise QueryError("page needs limit")
        if skip is not None:
            raise QueryError("give either page or skip, not both")
        assert page_n is not None
        skip_n = page_n * limit_n
    return parse_sort(sort, fields), skip_n, limit_n


def parse_query(
    query: Any,
    fields: Mapping[str, FieldSpec],
    model: str = "model",
    **options: Any,
) -> Query:
    """Parse a query and its options into one ``Query``."""
    where = parse_where(query, fields, model)
    sort, skip, limit = parse_options(fields, **options)
    return Query(where, sort, skip, limit)
