"""Keyset paging: the condition "comes after this row in this order".

``Model.iterate`` reads a batch, then asks for the rows after the batch's last one
instead of skipping the rows already read: each batch costs the same however far the
stream has gone (OFFSET rescans every skipped row, O(N^2/B) over a whole table), and a
row inserted or deleted behind the cursor shifts nothing.

The condition follows the one order every adapter gives (DESIGN.md section 4): the sort
keys in turn, ``id`` last as the tie-breaker, missing values first ascending and last
descending. For keys ``k1 .. kn`` and the last row's values ``v1 .. vn`` it is the usual
expansion ``(k1 beyond v1) OR (k1 = v1 AND k2 beyond v2) OR ...``, where "beyond"
and "=" are spelled so that missing values land on the right side.

The comparisons it builds may be on string and bool fields, which user queries cannot
express (the parser admits ``<``/``>`` on numbers and datetimes only); adapters whose
``Capabilities.keyset_paging`` is set compile them in the store's own order, which for
strings is code point order everywhere (binary collations).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .ast import And, Equal, Exists, Greater, Less, Node, Or, SortKey

__all__ = ["after"]


def after(sort: tuple[SortKey, ...], row: Mapping[str, Any]) -> Node:
    """What matches exactly the rows that ``sort`` puts after ``row`` (a logical row).

    ``sort`` must end with the ``id`` key, as every parsed sort does, so that no two rows
    tie and the condition excludes ``row`` itself.
    """
    branches: list[Node] = []
    same: list[Node] = []
    for key in sort:
        value = row.get(key.field)
        beyond = _beyond(key, value)
        if beyond is not None:
            branches.append(And((*same, beyond)) if same else beyond)
        same.append(
            Exists(key.field, False, key.kind)
            if value is None
            else Equal(key.field, value, key.kind)
        )
    return branches[0] if len(branches) == 1 else Or(tuple(branches))


def _beyond(key: SortKey, value: Any) -> Node | None:
    """Rows whose ``key`` value sorts strictly after ``value`` (None: there are none)."""
    if value is None:
        # Missing sorts first ascending (every present value comes after it) and last
        # descending (nothing does).
        return None if key.descending else Exists(key.field, True, key.kind)
    if key.descending:
        return Or((Less(key.field, value, key.kind), Exists(key.field, False, key.kind)))
    return Greater(key.field, value, key.kind)
