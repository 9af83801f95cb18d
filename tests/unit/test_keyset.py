"""query/keyset.py against the reference matcher: "after row r" is exactly what sorts after r."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from diaspora_async.query.ast import SortKey
from diaspora_async.query.keyset import after
from diaspora_async.query.match import compile_predicate, sort_rows

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KINDS = {"s": "str", "n": "int", "f": "float", "b": "bool", "t": "datetime"}


def _value(rng: random.Random, kind: str) -> object:
    if rng.random() < 0.25:
        return None
    return {
        "str": lambda: rng.choice(["", "a", "A", "ab", "b", "\u00e9", "\U0001f600"]),
        "int": lambda: rng.randint(-2, 2),
        "float": lambda: rng.choice([-1.5, 0.0, 0.5, 2.0]),
        "bool": lambda: rng.random() < 0.5,
        "datetime": lambda: T0 + timedelta(days=rng.randint(0, 3)),
    }[kind]()


@pytest.mark.parametrize("seed", range(40))
def test_after_matches_exactly_the_rows_sorted_after(seed: int) -> None:
    rng = random.Random(seed)
    rows = [{"id": f"{i:03}", **{f: _value(rng, k) for f, k in KINDS.items()}} for i in range(40)]
    names = rng.sample(sorted(KINDS), rng.randint(0, 3))
    sort = (
        *(SortKey(f, rng.random() < 0.5, KINDS[f]) for f in names),  # type: ignore[arg-type]
        SortKey("id", False, "str"),
    )
    ordered = sort_rows(rows, sort)
    for i, row in enumerate(ordered):
        matches = compile_predicate(after(sort, row))
        assert [r["id"] for r in ordered if matches(r)] == [r["id"] for r in ordered[i + 1 :]]
