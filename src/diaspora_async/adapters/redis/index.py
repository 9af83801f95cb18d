"""Choosing the Redis index that narrows a query's candidates.

Sits between ``adapter.py`` and the canonical query AST: ``Planner.visit(where)``
returns a ``Plan`` (a tree of id lists, index lookups and their intersections/unions) or
None when no index applies and every id must be read. The plan only ever *narrows*:
the adapter still filters the fetched rows with the reference matcher, so a plan may
include extra ids but must never miss one. That is why score ranges are always inclusive
(Redis scores are doubles; a large int rounds, but rounding is monotonic, so an
inclusive bound on the rounded operand keeps every true match).

Which nodes use an index: ``Equal``/``In`` on ``id`` (the ids themselves),
``Equal``/``In`` on an indexed str/bool field (one set per value), ``Equal``/``In`` and
``<``/``<=``/``>``/``>=`` on an indexed int/float/datetime field (a sorted-set score
range); ``And`` intersects whichever items have a plan, ``Or`` unions when every item has
one. ``Not``/``Xor``/``Diff``/``NotIn``/``Exists``/``Contains`` read every id.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...query.ast import (
    And,
    Compare,
    Equal,
    Greater,
    GreaterEqual,
    In,
    Less,
    LessEqual,
    Node,
    Not,
    Or,
    Xor,
)
from .layout import Layout, to_ms

_log = logging.getLogger("diaspora_async")

__all__ = [
    "Both",
    "Either",
    "Ids",
    "Lookup",
    "Plan",
    "Planner",
    "candidates",
    "evaluate",
    "exact",
    "lookups",
]


@dataclass(frozen=True, slots=True)
class Lookup:
    """One index command whose reply is a list of ids (``SMEMBERS``/``ZRANGEBYSCORE``).

    ``exact``: the reply is exactly the matching ids (a per-value set of an equality);
    score ranges are inclusive and rounded, so they may hold a few ids too many.
    """

    args: tuple[Any, ...]
    exact: bool = False


@dataclass(frozen=True, slots=True)
class Ids:
    """Known ids (from an ``id`` condition)."""

    ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class Both:
    """Ids in every part; ``complete`` False when some items of the ``And`` had no plan
    (their condition is left to the matcher, so the ids are not exact)."""

    parts: tuple[Plan, ...]
    complete: bool = True


@dataclass(frozen=True, slots=True)
class Either:
    """Ids in any part."""

    parts: tuple[Plan, ...]


Plan = Lookup | Ids | Both | Either
_NOTHING = Ids(frozenset())


def _score(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_ms(value)
    return value  # int/float: sent as repr, parsed by the server like the stored value


class Planner:
    """Turns a ``where`` node into a ``Plan`` for one collection's ``Layout``."""

    def __init__(self, lay: Layout, model: str = "model") -> None:
        self.lay = lay
        self.model = model
        self._warned: set[str] = set()  # fields a scan was already reported for
        self._visits: dict[type[Node], Callable[[Any], Plan | None]] = {
            And: self._and, Or: self._or, Equal: self._equal, In: self._in,
            Less: self._upper, LessEqual: self._upper,
            Greater: self._lower, GreaterEqual: self._lower,
        }  # fmt: skip

    def visit(self, node: Node) -> Plan | None:
        """The plan for ``node``, or None if it needs every id."""
        visit = self._visits.get(type(node))
        return visit(node) if visit is not None else None

    def scans(self, where: Node) -> None:
        """Report, once per field, a query that reads every hash (``where`` has no plan):
        at 100,000 entities that is seconds, and nothing else would say why."""
        lay = self.lay
        for name in _fields(where):
            if name in self._warned or name == "id" or name in lay.eq or name in lay.num:
                continue
            self._warned.add(name)
            _log.warning(
                "redis: a query on %s.%s reads every hash of the collection "
                "(declare the field with index=True so that queries on it use an index)",
                self.model, name,
            )  # fmt: skip

    def _and(self, node: And) -> Plan | None:
        parts = tuple(p for p in map(self.visit, node.items) if p is not None)
        if not parts:
            return None
        if len(parts) < len(node.items):
            return Both(parts, complete=False)
        return parts[0] if len(parts) == 1 else Both(parts)

    def _or(self, node: Or) -> Plan | None:
        parts = tuple(map(self.visit, node.items))
        if any(p is None for p in parts):
            return None
        if not parts:
            return _NOTHING
        return Either(parts)  # type: ignore[arg-type]  # None excluded just above

    def _point(self, field: str, value: Any) -> Plan | None:
        if field == "id":
            return Ids(frozenset((value,)))
        lay = self.lay
        base = lay.eq.get(field)
        if base is not None:
            token = lay.encode_value(field, value)
            key = base.encode() + (token if isinstance(token, bytes) else str(token).encode())
            return Lookup((b"SMEMBERS", key), exact=True)
        zkey = lay.num.get(field)
        if zkey is not None:
            if isinstance(value, float) and math.isnan(value):
                return _NOTHING  # NaN equals nothing
            score = _score(value)
            return Lookup((b"ZRANGEBYSCORE", zkey, score, score))
        return None

    def _equal(self, node: Equal) -> Plan | None:
        return self._point(node.field, node.value)

    def _in(self, node: In) -> Plan | None:
        if node.field == "id":
            return Ids(frozenset(node.value))
        parts = tuple(self._point(node.field, v) for v in node.value)
        if not parts or any(p is None for p in parts):
            return None
        return Either(parts)  # type: ignore[arg-type]  # None excluded just above

    def _range(self, node: Compare, low: Any, high: Any) -> Plan | None:
        zkey = self.lay.num.get(node.field)
        if zkey is None:
            return None
        value = node.value
        if isinstance(value, float) and math.isnan(value):
            return _NOTHING  # every comparison with NaN is false
        if not isinstance(value, int | float | datetime) or isinstance(value, bool):
            return None
        return Lookup((b"ZRANGEBYSCORE", zkey, low, high))

    def _upper(self, node: Less | LessEqual) -> Plan | None:
        return self._range(node, b"-inf", _score(node.value))

    def _lower(self, node: Greater | GreaterEqual) -> Plan | None:
        return self._range(node, _score(node.value), b"+inf")


def lookups(plan: Plan, out: list[Lookup]) -> list[Lookup]:
    """Collect the index commands of ``plan`` in evaluation order."""
    if isinstance(plan, Lookup):
        out.append(plan)
    elif isinstance(plan, Both | Either):
        for part in plan.parts:
            lookups(part, out)
    return out


def evaluate(plan: Plan, replies: dict[Lookup, set[str]]) -> set[str]:
    """The candidate ids of ``plan`` given each lookup's reply."""
    if isinstance(plan, Lookup):
        return replies[plan]
    if isinstance(plan, Ids):
        return set(plan.ids)
    sets = [evaluate(p, replies) for p in plan.parts]
    if isinstance(plan, Both):
        sets.sort(key=len)
        return sets[0].intersection(*sets[1:])
    return set().union(*sets)


def exact(plan: Plan) -> bool:
    """True when ``plan``'s ids are exactly the matches: no row needs the matcher, so a
    page can be sliced from the (sorted) ids before any hash is read. ``Ids`` from an
    ``id`` condition may name ids that are not stored, so they are not exact."""
    if isinstance(plan, Lookup):
        return plan.exact
    if isinstance(plan, Ids) or (isinstance(plan, Both) and not plan.complete):
        return False
    return all(exact(p) for p in plan.parts)


def _fields(node: Node) -> Iterator[str]:
    if isinstance(node, Compare):
        yield node.field
    elif isinstance(node, And | Or | Xor):
        for item in node.items:
            yield from _fields(item)
    elif isinstance(node, Not):
        yield from _fields(node.item)


async def candidates(
    run: Callable[[Sequence[Sequence[Any]]], Awaitable[list[Any]]], lay: Layout, plan: Plan | None
) -> list[str]:
    """The sorted candidate ids of ``plan`` (None: every id), its lookups sent through
    ``run`` (one pipeline)."""
    if plan is None:
        replies = await run([(b"ZRANGE", lay.ids, 0, -1)])
        return [i.decode() for i in replies[0]]
    needed = list(dict.fromkeys(lookups(plan, [])))
    answers: dict[Lookup, set[str]] = {}
    if needed:
        replies = await run([lk.args for lk in needed])
        answers = {
            lk: {i.decode() for i in reply} for lk, reply in zip(needed, replies, strict=True)
        }
    return sorted(evaluate(plan, answers))
