"""The parser: user syntax -> canonical AST, and every way to get it wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import diaspora_async as da
from diaspora_async.fields import MISSING, build_field, field
from diaspora_async.query import (
    And,
    Contains,
    Diff,
    Equal,
    Exists,
    Greater,
    In,
    Less,
    Not,
    NotIn,
    Or,
    SortKey,
    Xor,
    parse_options,
    parse_query,
    parse_where,
)

FIELDS = {
    "views": build_field("views", int, 0),
    "score": build_field("score", float | None, None),
    "title": build_field("title", str, MISSING),
    "tags": build_field("tags", list[str], field(default_factory=list)),
    "when": build_field("when", datetime | None, None),
    "data": build_field("data", Any, None),
}


def where(q: Any) -> Any:
    return parse_where(q, FIELDS, "M")


def test_aliases_and_canonical_forms_give_the_same_node() -> None:
    assert (
        where({"views": {">": 1}})
        == where({"views": {"$greater": 1}})
        == Greater("views", 1, "int")
    )
    assert where({"views": {"!=": 1}}) == Diff("views", 1, "int")
    assert where({"views": 1}) == where({"views": {"==": 1}}) == Equal("views", 1, "int")


def test_none_shorthands() -> None:
    assert where({"score": None}) == Exists("score", False, "float")
    assert where({"score": {"!=": None}}) == Exists("score", True, "float")
    assert where({"score": {"$in": [1.0, None]}}) == Or(
        (In("score", (1.0,), "float"), Exists("score", False, "float"))
    )
    assert where({"score": {"$nin": [1.0, None]}}) == NotIn("score", (1.0,), "float")


def test_field_logic_is_distributed_to_the_top() -> None:
    assert where({"views": {"||": [{"<": 1}, 5]}}) == Or(
        (Less("views", 1, "int"), Equal("views", 5, "int"))
    )
    assert where({"views": {"!": {">": 2}}}) == Not(Greater("views", 2, "int"))
    assert where({"views": {">": 1, "<": 5}}) == And(
        (Greater("views", 1, "int"), Less("views", 5, "int"))
    )
    assert where({"$xor": [{"views": 1}]}) == Xor((Equal("views", 1, "int"),))


def test_operands_are_cast_to_the_field_type() -> None:
    assert where({"views": "7"}) == Equal("views", 7, "int")
    assert where({"score": 1}) == Equal("score", 1.0, "float")
    node = where({"when": {">": "2026-01-01T02:00:00+02:00"}})
    assert node == Greater("when", datetime(2026, 1, 1, tzinfo=UTC), "datetime")
    assert where({"tags": {"$contains": "x"}}) == Contains("tags", "x", "list")
    assert where({"data": {"k": 1}}) == Equal("data", {"k": 1}, "any")


def test_empty_query_matches_all() -> None:
    assert where(None) is None and where({}) is None


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"nope": 1}, "has no field 'nope'"),
        ({"views": {"$gt": 1}}, "unknown operator '$gt'"),
        ({"views": {">": 1, "$greater": 2}}, "'>' and '$greater' are the same operator"),
        ({"title": {"<": "b"}}, "needs a number or datetime field"),
        ({"views": {"<": "3"}}, "takes a number or datetime"),
        ({"when": {"<": 5}}, "cannot match datetime"),
        ({"views": {"$in": "abc"}}, "takes a list"),
        ({"views": {"~": 1}}, "takes True or False"),
        ({"$or": []}, "non-empty list"),
        ({"views": "x"}, "cannot match field 'views'"),
        ({"views": {"a": 1}}, "a condition needs operators"),
        ({"score": {"<": float("nan")}}, "NaN"),
        ({"tags": {"$contains": None}}, "needs a value"),
    ],
)
def test_errors_name_the_problem(query: Any, message: str) -> None:
    with pytest.raises(da.QueryError, match=message.replace("$", r"\$").replace("(", r"\(")):
        where(query)


def test_options() -> None:
    q = parse_query({"views": 1}, FIELDS, "M", sort=["-views", "title"], limit="5", page="2")
    assert q.skip == 10 and q.limit == 5
    assert q.sort == (
        SortKey("views", True, "int"),
        SortKey("title", False, "str"),
        SortKey("id", False, "str"),
    )
    assert parse_options(FIELDS, sort="-id")[0] == (SortKey("id", True, "str"),)
    with pytest.raises(da.QueryError, match="page needs limit"):
        parse_options(FIELDS, page=1)
    with pytest.raises(da.QueryError, match="cannot sort on field 'data'"):
        parse_options(FIELDS, sort="data")
