"""The canonical query form: frozen nodes every adapter compiles.

User syntax (aliases, per-field logic, ``None`` shorthands) is parsed once by
``parse.py`` into these nodes; per-field logic is distributed to the top level, so a
compiler only ever sees field comparisons under ``And``/``Or``/``Xor``/``Not``. Operands
are already cast to the field's type, and each comparison carries the field's storage
kind so a compiler can choose, e.g., list containment versus substring search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..fields import Kind

__all__ = [
    "And",
    "Compare",
    "Contains",
    "Diff",
    "Equal",
    "Exists",
    "Greater",
    "GreaterEqual",
    "In",
    "Less",
    "LessEqual",
    "Node",
    "Not",
    "NotIn",
    "Or",
    "Query",
    "SortKey",
    "Xor",
]


class Node:
    """Base of every query node; ``visit_name`` picks the compiler method."""

    __slots__ = ()
    visit_name: ClassVar[str]


@dataclass(frozen=True, slots=True)
class Compare(Node):
    """A condition on one field. ``value`` is cast to the field's type."""

    field: str
    value: Any
    kind: Kind


@dataclass(frozen=True, slots=True)
class Equal(Compare):
    """The value exists and equals ``value`` (deep equality for lists and dicts)."""

    visit_name = "equal"


@dataclass(frozen=True, slots=True)
class Diff(Compare):
    """The value exists and differs from ``value``."""

    visit_name = "diff"


@dataclass(frozen=True, slots=True)
class Exists(Compare):
    """``value`` True: present and not None; False: missing or None."""

    visit_name = "exists"


@dataclass(frozen=True, slots=True)
class Less(Compare):
    """The value exists and is < ``value`` (a number or datetime)."""

    visit_name = "less"


@dataclass(frozen=True, slots=True)
class LessEqual(Compare):
    """The value exists and is <= ``value``."""

    visit_name = "less_equal"


@dataclass(frozen=True, slots=True)
class Greater(Compare):
    """The value exists and is > ``value``."""

    visit_name = "greater"


@dataclass(frozen=True, slots=True)
class GreaterEqual(Compare):
    """The value exists and is >= ``value``."""

    visit_name = "greater_equal"


@dataclass(frozen=True, slots=True)
class In(Compare):
    """The value exists and deep-equals one of ``value`` (a non-empty tuple, no None)."""

    visit_name = "in"


@dataclass(frozen=True, slots=True)
class NotIn(Compare):
    """The value exists and equals none of ``value`` (a tuple, no None)."""

    visit_name = "not_in"


@dataclass(frozen=True, slots=True)
class Contains(Compare):
    """A list value holds ``value``, or a string value contains it as a substring."""

    visit_name = "contains"


@dataclass(frozen=True, slots=True)
class And(Node):
    """Every item matches (an empty ``And`` matches everything)."""

    items: tuple[Node, ...]
    visit_name = "and"


@dataclass(frozen=True, slots=True)
class Or(Node):
    """At least one item matches (an empty ``Or`` matches nothing)."""

    items: tuple[Node, ...]
    visit_name = "or"


@dataclass(frozen=True, slots=True)
class Xor(Node):
    """Exactly one item matches."""

    items: tuple[Node, ...]
    visit_name = "xor"


@dataclass(frozen=True, slots=True)
class Not(Node):
    """Plain negation: ``Not(Equal(a, 1))`` matches entities where ``a`` is missing."""

    item: Node
    visit_name = "not"


@dataclass(frozen=True, slots=True)
class SortKey:
    """One sort key; missing values sort first ascending, last descending."""

    field: str
    descending: bool
    kind: Kind


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query with its options, as handed to ``Adapter.find``.

    ``sort`` always ends with ``id`` ascending (unless id is already a key) so order is
    deterministic on every store.
    """

    where: Node | None
    sort: tuple[SortKey, ...]
    skip: int = 0
    limit: int | None = None
