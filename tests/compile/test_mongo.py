"""Snapshots of the MongoDB filters the ``mongo`` compiler emits, one per operator and kind.

Each case spells out the exact filter document, so a change to the compiler shows up as
a readable diff. No server is needed: the compiler is pure. The guards these filters
carry (``$not $type array``, ``$not $elemMatch``, ``$nin [.., None]``) are what make
Mongo's array traversal and null semantics agree with the reference matcher; the
conformance suite proves they do on a real server.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

import diaspora_async as da
from diaspora_async.adapters.base import CollectionSchema
from diaspora_async.adapters.mongo.filter import (
    MATCH_NOTHING,
    MongoFilterCompiler,
    canonical,
    needs_canonical,
)
from diaspora_async.errors import QueryError, UnsupportedQuery
from diaspora_async.query import ast
from diaspora_async.query.parse import parse_query, parse_where

WHEN = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
NOT_ARRAY = {"$not": {"$type": "array"}}
ANY_EXISTS = {"$or": [{"a": {"$ne": None}}, {"a": {"$type": "array"}}]}


@pytest.fixture(scope="module")
def model() -> Any:
    orm = da.Diaspora()
    orm.create_data_source("m", "memory")

    class T(orm.Model, sources={"m": {"n": "ncol"}}, collection="t"):
        s: str | None = None
        n: int | None = None
        f: float | None = None
        b: bool | None = None
        d: datetime | None = None
        tags: list[str] = da.field(default_factory=list)
        la: list[Any] = da.field(default_factory=list)
        ld: list[dict[str, Any]] = da.field(default_factory=list)
        o: dict[str, Any] | None = None
        a: Any = None

    return T


@pytest.fixture(scope="module")
def compiler(model: Any) -> MongoFilterCompiler:
    schema = model.__meta__.schema_for("m")
    return MongoFilterCompiler(schema.model, schema.fields, schema.stored)


def where(model: Any, query: dict[str, Any]) -> ast.Node | None:
    return parse_where(query, model.__meta__.fields, "T")


CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # equality / diff / exists on scalar kinds: no array can be stored there
    ("eq", {"s": "x"}, {"s": {"$eq": "x"}}),
    ("eq-alias", {"s": {"==": "x"}}, {"s": {"$eq": "x"}}),
    ("eq-bool", {"b": True}, {"b": {"$eq": True}}),
    ("eq-float-cast", {"f": 0}, {"f": {"$eq": 0.0}}),
    ("eq-datetime", {"d": WHEN}, {"d": {"$eq": WHEN}}),
    ("eq-remapped", {"n": 3}, {"ncol": {"$eq": 3}}),
    ("eq-id", {"id": "abc"}, {"_id": {"$eq": "abc"}}),
    ("diff", {"s": {"!=": "x"}}, {"s": {"$nin": ["x", None]}}),
    ("diff-canonical", {"n": {"$diff": 3}}, {"ncol": {"$nin": [3, None]}}),
    ("diff-none-is-exists", {"s": {"$diff": None}}, {"s": {"$ne": None}}),
    ("none-is-missing", {"s": None}, {"s": {"$eq": None}}),
    ("exists", {"s": {"~": True}}, {"s": {"$ne": None}}),
    ("exists-false", {"s": {"$exists": False}}, {"s": {"$eq": None}}),
    # comparisons (type bracketing does the rest)
    ("lt", {"n": {"<": 5}}, {"ncol": {"$lt": 5}}),
    ("lte", {"n": {"<=": 5}}, {"ncol": {"$lte": 5}}),
    ("gt", {"f": {">": 1.5}}, {"f": {"$gt": 1.5}}),
    ("gte", {"f": {">=": 0}}, {"f": {"$gte": 0.0}}),
    ("gt-datetime", {"d": {">": WHEN}}, {"d": {"$gt": WHEN}}),
    ("dt-iso-operand", {"d": {"$lessEqual": "2024-01-02T03:04:05.678Z"}}, {"d": {"$lte": WHEN}}),
    ("range", {"n": {">": 1, "<": 9}}, {"$and": [{"ncol": {"$gt": 1}}, {"ncol": {"$lt": 9}}]}),
    # membership
    ("in", {"s": {"$in": ["a", "b"]}}, {"s": {"$in": ["a", "b"]}}),
    ("in-one", {"s": {"$in": ["a"]}}, {"s": {"$eq": "a"}}),
    ("in-empty", {"s": {"$in": []}}, MATCH_NOTHING),
    ("in-with-none", {"s": {"$in": ["a", "b", None]}},
     {"$or": [{"s": {"$in": ["a", "b"]}}, {"s": {"$eq": None}}]}),
    ("in-id", {"id": {"$in": ["i1", "i2"]}}, {"_id": {"$in": ["i1", "i2"]}}),
    ("nin", {"s": {"$nin": ["a", "b"]}}, {"s": {"$nin": ["a", "b", None]}}),
    ("nin-empty", {"n": {"$nin": []}}, {"ncol": {"$nin": [None]}}),
    ("nin-none-changes-nothing", {"s": {"$nin": ["a", None]}}, {"s": {"$nin": ["a", None]}}),
    # strings: substring search, the operand escaped
    ("contains-substring", {"s": {"$contains": "a.b*"}}, {"s": {"$regex": re.escape("a.b*")}}),
    ("contains-regex-chars", {"s": {"$contains": "^(x|y)$"}}, {"s": {"$regex": r"\^\(x\|y\)\$"}}),
    # lists of scalars: elements cannot be arrays, so plain forms are exact
    ("list-eq", {"tags": ["x", "y"]}, {"tags": {"$eq": ["x", "y"]}}),
    ("list-eq-empty", {"tags": []}, {"tags": {"$eq": []}}),
    ("list-diff", {"tags": {"!=": ["x"]}}, {"tags": {"$type": "array", "$ne": ["x"]}}),
    ("list-exists", {"tags": {"~": True}}, {"tags": {"$type": "array"}}),
    ("list-missing", {"tags": None}, {"$nor": [{"tags": {"$type": "array"}}]}),
    ("list-contains", {"tags": {"$contains": "x"}}, {"tags": {"$eq": "x"}}),
    ("list-in", {"tags": {"$in": [["y"], ["x"]]}},
     {"$or": [{"tags": {"$eq": ["y"]}}, {"tags": {"$eq": ["x"]}}]}),
    ("list-nin", {"tags": {"$nin": [["y"]]}},
     {"$and": [{"tags": {"$type": "array"}}, {"$nor": [{"tags": {"$eq": ["y"]}}]}]}),
    # lists that may hold arrays: cut off Mongo's traversal into elements
    ("list-any-eq", {"la": [[1]]},
     {"la": {"$eq": [[1]], "$not": {"$elemMatch": {"$eq": [[1]]}}}}),
    ("list-any-diff", {"la": {"!=": [1]}},
     {"$and": [{"la": {"$type": "array"}},
               {"$nor": [{"la": {"$eq": [1], "$not": {"$elemMatch": {"$eq": [1]}}}}]}]}),
    ("list-any-contains-scalar", {"la": {"$contains": 1}},
     {"la": {"$elemMatch": {"$eq": 1, **NOT_ARRAY}}}),
    ("list-any-contains-list", {"la": {"$contains": [1, 2]}},
     {"la": {"$elemMatch": {"$eq": [1, 2], "$not": {"$elemMatch": {"$eq": [1, 2]}}}}}),
    ("list-dict-contains", {"ld": {"$contains": {"b": 1, "a": 2}}},
     {"ld": {"$eq": {"a": 2, "b": 1}}}),
    # dicts: keys sorted, always under $eq / $ne, never inside $in
    ("dict-eq-sorted", {"o": {"b": {"d": 3, "c": 2}, "a": 1}},
     {"o": {"$eq": {"a": 1, "b": {"c": 2, "d": 3}}}}),
    ("dict-eq-explicit", {"o": {"$equal": {"k": 2}}}, {"o": {"$eq": {"k": 2}}}),
    ("dict-eq-empty", {"o": {}}, {"o": {"$eq": {}}}),
    ("dict-hostile-is-data", {"o": {"$equal": {"$where": "sleep(1000)"}}},
     {"o": {"$eq": {"$where": "sleep(1000)"}}}),
    ("dict-diff", {"o": {"!=": {"k": 2}}},
     {"$and": [{"o": {"$ne": None}}, {"o": {"$ne": {"k": 2}}}]}),
    ("dict-in", {"o": {"$in": [{"k": 1}, {"$gt": ""}]}},
     {"$or": [{"o": {"$eq": {"k": 1}}}, {"o": {"$eq": {"$gt": ""}}}]}),
    ("dict-nin", {"o": {"$nin": [{"$ne": None}]}},
     {"$and": [{"o": {"$ne": None}}, {"$nor": [{"o": {"$eq": {"$ne": None}}}]}]}),
    ("dict-exists", {"o": {"~": True}}, {"o": {"$ne": None}}),
    # any: every form guarded against arrays
    ("any-eq-scalar", {"a": 3}, {"a": {"$eq": 3, **NOT_ARRAY}}),
    ("any-eq-str", {"a": "s"}, {"a": {"$eq": "s", **NOT_ARRAY}}),
    ("any-eq-list", {"a": [1, 2]}, {"a": {"$eq": [1, 2], "$not": {"$elemMatch": {"$eq": [1, 2]}}}}),
    ("any-eq-dict", {"a": {"$equal": {"y": 1, "x": [{"q": 1, "p": 2}]}}},
     {"a": {"$eq": {"x": [{"p": 2, "q": 1}], "y": 1}, **NOT_ARRAY}}),
    ("any-hostile-gt", {"a": {"$equal": {"$gt": ""}}}, {"a": {"$eq": {"$gt": ""}, **NOT_ARRAY}}),
    ("any-diff", {"a": {"!=": 1}},
     {"$and": [ANY_EXISTS, {"$nor": [{"a": {"$eq": 1, **NOT_ARRAY}}]}]}),
    ("any-exists", {"a": {"~": True}}, ANY_EXISTS),
    ("any-missing", {"a": None}, {"$nor": [ANY_EXISTS]}),
    ("any-gt", {"a": {">": 2}}, {"a": {"$gt": 2, **NOT_ARRAY}}),
    ("any-lte-datetime", {"a": {"<=": WHEN}}, {"a": {"$lte": WHEN, **NOT_ARRAY}}),
    ("any-in", {"a": {"$in": ["s", 3]}}, {"a": {"$in": ["s", 3], **NOT_ARRAY}}),
    ("any-in-mixed", {"a": {"$in": ["s", [1]]}},
     {"$or": [{"a": {"$eq": "s", **NOT_ARRAY}},
              {"a": {"$eq": [1], "$not": {"$elemMatch": {"$eq": [1]}}}}]}),
    ("any-nin", {"a": {"$nin": ["s"]}},
     {"$and": [ANY_EXISTS, {"$nor": [{"a": {"$eq": "s", **NOT_ARRAY}}]}]}),
    ("any-nin-empty", {"a": {"$nin": []}}, ANY_EXISTS),
    ("any-contains-str", {"a": {"$contains": "s"}},
     {"$or": [{"a": {"$elemMatch": {"$eq": "s", **NOT_ARRAY}}},
              {"a": {"$regex": "s", **NOT_ARRAY}}]}),
    ("any-contains-number", {"a": {"$contains": 1}},
     {"a": {"$elemMatch": {"$eq": 1, **NOT_ARRAY}}}),
    # logic
    ("and-merges-fields", {"s": "x", "b": True}, {"s": {"$eq": "x"}, "b": {"$eq": True}}),
    ("and-alias", {"&&": [{"s": "x"}, {"s": "y"}]},
     {"$and": [{"s": {"$eq": "x"}}, {"s": {"$eq": "y"}}]}),
    ("or", {"$or": [{"s": "x"}, {"n": 1}]}, {"$or": [{"s": {"$eq": "x"}}, {"ncol": {"$eq": 1}}]}),
    ("or-in-field", {"s": {"||": ["x", "y"]}}, {"$or": [{"s": {"$eq": "x"}}, {"s": {"$eq": "y"}}]}),
    ("xor-two", {"^^": [{"s": "x"}, {"n": 1}]},
     {"$or": [{"$and": [{"s": {"$eq": "x"}}, {"$nor": [{"ncol": {"$eq": 1}}]}]},
              {"$and": [{"ncol": {"$eq": 1}}, {"$nor": [{"s": {"$eq": "x"}}]}]}]}),
    ("xor-three", {"$xor": [{"n": 1}, {"n": 2}, {"n": {">": 0}}]},
     {"$or": [
         {"$and": [{"ncol": {"$eq": 1}}, {"$nor": [{"ncol": {"$eq": 2}}, {"ncol": {"$gt": 0}}]}]},
         {"$and": [{"ncol": {"$eq": 2}}, {"$nor": [{"ncol": {"$eq": 1}}, {"ncol": {"$gt": 0}}]}]},
         {"$and": [{"ncol": {"$gt": 0}}, {"$nor": [{"ncol": {"$eq": 1}}, {"ncol": {"$eq": 2}}]}]},
     ]}),
    ("xor-one", {"$xor": [{"s": "x"}]}, {"s": {"$eq": "x"}}),
    ("not", {"$not": {"n": {">": 0}}}, {"$nor": [{"ncol": {"$gt": 0}}]}),
    ("not-alias-in-field", {"s": {"!": "x"}}, {"$nor": [{"s": {"$eq": "x"}}]}),
    ("not-of-not", {"$not": {"$not": {"s": "x"}}}, {"s": {"$eq": "x"}}),
]  # fmt: skip


@pytest.mark.parametrize(("query", "expected"), [pytest.param(q, e, id=i) for i, q, e in CASES])
def test_filter_snapshot(
    model: Any, compiler: MongoFilterCompiler, query: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert compiler.compile(where(model, query)) == expected


def test_no_query_is_the_empty_filter(model: Any, compiler: MongoFilterCompiler) -> None:
    assert compiler.compile(where(model, {})) == {}
    assert compiler.compile(None) == {}


def test_empty_logic_nodes(compiler: MongoFilterCompiler) -> None:
    assert compiler.compile(ast.And(())) == {}
    assert compiler.compile(ast.Or(())) == MATCH_NOTHING
    assert compiler.compile(ast.Xor(())) == MATCH_NOTHING


def test_any_field_datetime_operands_round_to_stored_precision(
    compiler: MongoFilterCompiler,
) -> None:
    # ``any`` fields are not cast by the parser: naive means UTC, and sub-millisecond
    # bounds move to the millisecond that keeps the comparison exact over stored values.
    fine = datetime(2024, 1, 2, 3, 4, 5, 678900)
    down, up = WHEN, datetime(2024, 1, 2, 3, 4, 5, 679000, tzinfo=UTC)
    for node, op, bound in [
        (ast.Greater("a", fine, "any"), "$gt", down),
        (ast.LessEqual("a", fine, "any"), "$lte", down),
        (ast.GreaterEqual("a", fine, "any"), "$gte", up),
        (ast.Less("a", fine, "any"), "$lt", up),
    ]:
        assert compiler.compile(node) == {"a": {op: bound, **NOT_ARRAY}}


def test_every_node_has_a_visit_method(compiler: MongoFilterCompiler) -> None:
    nodes = [getattr(ast, n) for n in ast.__all__]
    names = {n.visit_name for n in nodes if isinstance(n, type) and hasattr(n, "visit_name")}
    assert names and all(hasattr(compiler, "visit_" + n) for n in names)


def test_unknown_node_raises_unsupported_query(compiler: MongoFilterCompiler) -> None:
    class Near(ast.Node):
        visit_name = "near"

    with pytest.raises(UnsupportedQuery, match="mongo"):
        compiler.compile(Near())


def test_sort_spec(model: Any, compiler: MongoFilterCompiler) -> None:
    query = parse_query(None, model.__meta__.fields, "T", sort=["-n", "s"])
    assert compiler.sort(query.sort) == [("ncol", -1), ("s", 1), ("_id", 1)]
    default = parse_query(None, model.__meta__.fields, "T")
    assert compiler.sort(default.sort) == [("_id", 1)]


def test_canonical_sorts_dict_keys_recursively_and_keeps_list_order() -> None:
    value = {"b": [{"z": 1, "y": None}, 3], "a": {"d": {}, "c": [2, 1]}}
    out = canonical(value)
    assert out == value
    assert list(out) == ["a", "b"] and list(out["a"]) == ["c", "d"]
    assert list(out["b"][0]) == ["y", "z"] and out["a"]["c"] == [2, 1]
    assert canonical(({"b": 1, "a": 2},)) == [{"a": 2, "b": 1}]  # tuples become lists
    assert canonical("x") == "x" and canonical(None) is None


def test_needs_canonical_only_where_dicts_can_hide(model: Any) -> None:
    fields = model.__meta__.fields
    assert {n for n, s in fields.items() if needs_canonical(s)} == {"la", "ld", "o", "a"}


@pytest.mark.parametrize("stored", ["$where", "a.b", "_id", "", "x\0y"])
def test_stored_names_mongo_would_misread_are_refused(model: Any, stored: str) -> None:
    fields = model.__meta__.fields
    schema = CollectionSchema("T", "t", {"s": fields["s"]}, {"s": stored})
    with pytest.raises(QueryError, match="MongoDB field name"):
        MongoFilterCompiler(schema.model, schema.fields, schema.stored)
