"""Every operator of the query language, on every adapter, against one fixed data set.

The expected answers are the language's specification (DESIGN.md section 4): missing
means absent or None, deep equality on lists and dicts, comparisons only on values of the
comparable type, strings case-sensitive, ``$not`` a plain negation.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import DB

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)

ARTICLES: list[dict[str, Any]] = [
    dict(title="alpha", views=5, score=1.5, draft=True, tags=["x", "y"],
         meta={"k": 1, "n": {"z": [1, 2]}}, published=T0, status="live"),
    dict(title="beta", views=10, score=None, draft=False, tags=["y"], meta={"k": 2},
         published=T0 + DAY, status="draft"),
    dict(title="gamma", views=15, score=-2.0, draft=True, tags=[], meta=None,
         published=None, status="live"),
    dict(title="delta", views=0, score=0.0, draft=False, tags=["x"],
         meta={"n": {"z": [1, 2]}, "k": 1}, published=T0 - DAY, status="gone"),
    dict(title="Epsilon", views=20, score=3.25, draft=True, tags=["X"], meta={},
         published=T0 + 2 * DAY, status="draft", slug="eps"),
]  # fmt: skip

CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    # equality, aliases, None shorthand
    ("eq-plain", {"views": 10}, {"beta"}),
    ("eq-alias", {"views": {"==": 10}}, {"beta"}),
    ("eq-canonical", {"views": {"$equal": 10}}, {"beta"}),
    ("eq-none-is-missing", {"score": None}, {"beta"}),
    ("eq-float", {"score": -2.0}, {"gamma"}),
    ("eq-int-operand-on-float", {"score": 0}, {"delta"}),
    ("eq-bool", {"draft": True}, {"alpha", "gamma", "Epsilon"}),
    ("eq-string-case", {"title": "epsilon"}, set()),
    ("diff", {"score": {"!=": 1.5}}, {"gamma", "delta", "Epsilon"}),
    ("diff-canonical", {"score": {"$diff": 1.5}}, {"gamma", "delta", "Epsilon"}),
    ("diff-none-means-exists", {"score": {"$diff": None}}, {"alpha", "gamma", "delta", "Epsilon"}),
    ("diff-bool", {"draft": {"!=": True}}, {"beta", "delta"}),
    ("exists-true", {"score": {"~": True}}, {"alpha", "gamma", "delta", "Epsilon"}),
    ("exists-false", {"score": {"$exists": False}}, {"beta"}),
    ("exists-list-empty-counts", {"tags": {"~": True}}, {"alpha", "beta", "gamma", "delta", "Epsilon"}),
    ("exists-dict-none", {"meta": {"~": False}}, {"gamma"}),
    # comparisons
    ("gt", {"views": {">": 5}}, {"beta", "gamma", "Epsilon"}),
    ("gte", {"views": {">=": 5}}, {"alpha", "beta", "gamma", "Epsilon"}),
    ("lt", {"views": {"<": 5}}, {"delta"}),
    ("lte", {"views": {"$lessEqual": 5}}, {"alpha", "delta"}),
    ("lt-skips-missing", {"score": {"<": 1}}, {"gamma", "delta"}),
    ("gt-float-operand-on-int", {"views": {"$greater": 9.5}}, {"beta", "gamma", "Epsilon"}),
    ("dt-gt", {"published": {">": T0}}, {"beta", "Epsilon"}),
    ("dt-lte", {"published": {"<=": T0}}, {"alpha", "delta"}),
    ("dt-iso-operand", {"published": {"$greaterEqual": "2026-01-02T00:00:00Z"}}, {"beta", "Epsilon"}),
    ("dt-eq", {"published": T0}, {"alpha"}),
    ("range", {"views": {">": 1, "<": 15}}, {"alpha", "beta"}),
    # membership
    ("in", {"status": {"$in": ["live", "gone"]}}, {"alpha", "gamma", "delta"}),
    ("in-empty", {"status": {"$in": []}}, set()),
    ("in-with-none", {"score": {"$in": [1.5, None]}}, {"alpha", "beta"}),
    ("nin", {"status": {"$nin": ["live"]}}, {"beta", "delta", "Epsilon"}),
    ("nin-skips-missing", {"score": {"$nin": [1.5]}}, {"gamma", "delta", "Epsilon"}),
    ("nin-empty", {"score": {"$nin": []}}, {"alpha", "gamma", "delta", "Epsilon"}),
    ("in-lists", {"tags": {"$in": [["y"], ["x"]]}}, {"beta", "delta"}),
    ("in-dt", {"published": {"$in": [T0, T0 + DAY]}}, {"alpha", "beta"}),
    # contains
    ("contains-list", {"tags": {"$contains": "x"}}, {"alpha", "delta"}),
    ("contains-list-case", {"tags": {"$contains": "X"}}, {"Epsilon"}),
    ("contains-substring", {"title": {"$contains": "lp"}}, {"alpha"}),
    ("contains-substring-case", {"title": {"$contains": "E"}}, {"Epsilon"}),
    ("contains-substring-many", {"title": {"$contains": "a"}}, {"alpha", "beta", "gamma", "delta"}),
    ("contains-like-chars-are-data", {"title": {"$contains": "%"}}, set()),
    ("contains-underscore-is-data", {"title": {"$contains": "_"}}, set()),
    # deep equality
    ("deep-list", {"tags": ["x", "y"]}, {"alpha"}),
    ("deep-list-order", {"tags": ["y", "x"]}, set()),
    ("deep-list-empty", {"tags": []}, {"gamma"}),
    ("deep-dict-key-order", {"meta": {"n": {"z": [1, 2]}, "k": 1}}, {"alpha", "delta"}),
    ("deep-dict-subset-no", {"meta": {"k": 1}}, set()),
    ("deep-dict-empty", {"meta": {}}, {"Epsilon"}),
    ("deep-dict-explicit", {"meta": {"$equal": {"k": 2}}}, {"beta"}),
    ("deep-dict-diff", {"meta": {"!=": {"k": 2}}}, {"alpha", "delta", "Epsilon"}),
    # logic, top level
    ("or", {"$or": [{"views": 5}, {"status": "gone"}]}, {"alpha", "delta"}),
    ("or-alias", {"||": [{"views": 5}, {"status": "gone"}]}, {"alpha", "delta"}),
    ("and", {"$and": [{"draft": True}, {"views": {">": 5}}]}, {"gamma", "Epsilon"}),
    ("and-alias", {"&&": [{"draft": True}, {"views": {">": 5}}]}, {"gamma", "Epsilon"}),
    ("xor", {"$xor": [{"draft": True}, {"views": {">": 5}}]}, {"alpha", "beta"}),
    ("xor-alias-three", {"^^": [{"views": 5}, {"views": 10}, {"views": {">": 4}}]}, {"gamma", "Epsilon"}),
    ("not", {"$not": {"score": {">": 0}}}, {"beta", "gamma", "delta"}),
    ("not-alias", {"!": {"status": "live"}}, {"beta", "delta", "Epsilon"}),
    ("not-of-not", {"$not": {"$not": {"status": "live"}}}, {"alpha", "gamma"}),
    ("implicit-and", {"draft": True, "status": "live"}, {"alpha", "gamma"}),
    # logic inside a field
    ("field-or", {"views": {"$or": [{"<": 1}, {">": 15}]}}, {"delta", "Epsilon"}),
    ("field-or-plain-values", {"status": {"||": ["gone", "draft"]}}, {"beta", "delta", "Epsilon"}),
    ("field-not", {"score": {"!": {">": 0}}}, {"beta", "gamma", "delta"}),
    ("field-xor", {"score": {"^^": [{">": 0}, {">": 2}]}}, {"alpha"}),
    ("field-and", {"views": {"&&": [{">": 0}, {"<": 10}]}}, {"alpha"}),
    ("nested-logic", {"$or": [{"$and": [{"draft": False}, {"views": {">": 5}}]}, {"title": "alpha"}]},
     {"alpha", "beta"}),
]  # fmt: skip


@pytest.fixture
async def articles(db: DB) -> dict[str, str]:
    created = await db.Article.insert_many(ARTICLES)
    return {e.title: e.id for e in created}


@pytest.mark.parametrize(("query", "expected"), [pytest.param(q, e, id=i) for i, q, e in CASES])
async def test_operator(
    db: DB, articles: dict[str, str], query: dict[str, Any], expected: set[str]
) -> None:
    found = await db.Article.find_many(query)
    assert {e.title for e in found} == expected
    assert await db.Article.count(query) == len(expected)


async def test_query_by_id(db: DB, articles: dict[str, str]) -> None:
    ids = [articles["alpha"], articles["delta"]]
    found = await db.Article.find_many({"id": {"$in": ids}})
    assert [e.title for e in found] == sorted(["alpha", "delta"], key=lambda t: articles[t])
    assert (await db.Article.find({"id": articles["beta"]})).title == "beta"  # type: ignore[union-attr]


DOCS: list[tuple[str, Any]] = [
    ("str", "s"), ("int", 3), ("list", [1, 2]), ("dict", {"a": 1}), ("none", None),
    ("true", True), ("one", 1), ("float", 2.5), ("text", "has s inside"),
]  # fmt: skip

ANY_CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("any-eq-str", {"data": "s"}, {"str"}),
    ("any-eq-int", {"data": 3}, {"int"}),
    ("any-eq-list", {"data": [1, 2]}, {"list"}),
    ("any-eq-dict", {"data": {"$equal": {"a": 1}}}, {"dict"}),
    ("any-bool-is-not-one", {"data": True}, {"true"}),
    ("any-one-is-not-bool", {"data": 1}, {"one"}),
    ("any-missing", {"data": None}, {"none"}),
    ("any-gt-numbers-only", {"data": {">": 2}}, {"int", "float"}),
    ("any-contains-list", {"data": {"$contains": 1}}, {"list"}),
    ("any-contains-substring", {"data": {"$contains": "s"}}, {"str", "text"}),
    ("any-in", {"data": {"$in": ["s", 3]}}, {"str", "int"}),
]  # fmt: skip


@pytest.mark.parametrize(("query", "expected"), [pytest.param(q, e, id=i) for i, q, e in ANY_CASES])
async def test_operator_on_any_field(db: DB, query: dict[str, Any], expected: set[str]) -> None:
    await db.Doc.insert_many([{"name": n, "data": v} for n, v in DOCS])
    found = await db.Doc.find_many(query)
    assert {e.name for e in found} == expected
