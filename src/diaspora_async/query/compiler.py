"""The visitor base every query compiler derives from.

An adapter's compiler (SQL, Mongo filter, the in-memory matcher) subclasses
``Compiler`` and defines one ``visit_<name>`` method per node it can express; a node
without a method raises ``UnsupportedQuery`` naming the adapter and the node, so a gap
is loud, never a silently wrong answer.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from ..errors import UnsupportedQuery
from .ast import Node

__all__ = ["Compiler"]

T = TypeVar("T")


class Compiler(Generic[T]):
    """Dispatch ``visit(node)`` to ``visit_<node.visit_name>``."""

    adapter: str = "adapter"

    def visit(self, node: Node) -> T:
        """Compile one node (and, through the methods, its children)."""
        method = getattr(self, "visit_" + node.visit_name, None)
        if method is None:
            raise UnsupportedQuery(
                f"the {self.adapter} adapter cannot express {type(node).__name__} ({node!r})"
            )
        result: T = method(node)
        return result
