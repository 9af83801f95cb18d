"""The reference matcher's building blocks: equality and order."""

from __future__ import annotations

from datetime import UTC, datetime

from diaspora_async.query import SortKey, deep_equal, sort_rows


def test_deep_equal_keeps_bools_apart_from_numbers() -> None:
    assert deep_equal(1, 1.0)
    assert not deep_equal(True, 1) and not deep_equal(0, False)
    assert deep_equal([1, {"a": [True]}], [1.0, {"a": [True]}])
    assert not deep_equal([1, {"a": [True]}], [1, {"a": [1]}])
    assert deep_equal({"a": 1, "b": 2}, {"b": 2, "a": 1})
    assert not deep_equal({"a": 1}, {"a": 1, "b": None})
    assert not deep_equal([1, 2], [2, 1]) and not deep_equal("1", 1) and not deep_equal([1], 1)


def test_sort_rows_orders_missing_and_ties_canonically() -> None:
    rows = [{"id": "c", "v": None}, {"id": "a", "v": 2}, {"id": "b", "v": 1}, {"id": "d", "v": 2}]
    asc = sort_rows(rows, (SortKey("v", False, "int"), SortKey("id", False, "str")))
    assert [r["id"] for r in asc] == ["c", "b", "a", "d"]
    desc = sort_rows(rows, (SortKey("v", True, "int"), SortKey("id", False, "str")))
    assert [r["id"] for r in desc] == ["a", "d", "b", "c"]
    when = [{"id": str(i), "t": datetime(2026, 1, 3 - i, tzinfo=UTC)} for i in range(2)]
    assert [r["id"] for r in sort_rows(when, (SortKey("t", False, "datetime"),))] == ["1", "0"]
