"""Sort, skip, limit and page give the same deterministic order on every adapter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import diaspora_async as da
from tests.conftest import DB


async def _seed(db: DB) -> None:
    rows = [
        ("id-3", "b", 2, None), ("id-1", "B", 1, 1.0), ("id-5", "a", 2, -1.0),
        ("id-2", "A", 3, None), ("id-4", "é", 1, 5.5), ("id-6", "z", 2, 0.0),
    ]  # fmt: skip
    await db.Article.insert_many(
        [{"id": i, "title": t, "views": v, "score": s} for i, t, v, s in rows]
    )


async def test_default_order_is_ascending_id(db: DB) -> None:
    await _seed(db)
    assert (await db.Article.find_many()).ids == [f"id-{i}" for i in range(1, 7)]


async def test_strings_sort_by_code_point(db: DB) -> None:
    await _seed(db)
    assert [e.title for e in await db.Article.find_many(sort="title")] == [
        "A",
        "B",
        "a",
        "b",
        "z",
        "é",
    ]
    assert [e.title for e in await db.Article.find_many(sort="-title")] == [
        "é",
        "z",
        "b",
        "a",
        "B",
        "A",
    ]


async def test_ties_break_by_ascending_id(db: DB) -> None:
    await _seed(db)
    assert (await db.Article.find_many(sort="views")).ids == [
        "id-1",
        "id-4",
        "id-3",
        "id-5",
        "id-6",
        "id-2",
    ]
    assert (await db.Article.find_many(sort="-views")).ids == [
        "id-2",
        "id-3",
        "id-5",
        "id-6",
        "id-1",
        "id-4",
    ]


async def test_missing_values_first_ascending_last_descending(db: DB) -> None:
    await _seed(db)
    asc = await db.Article.find_many(sort="score")
    assert asc.ids == ["id-2", "id-3", "id-5", "id-6", "id-1", "id-4"]
    desc = await db.Article.find_many(sort=["-score"])
    assert desc.ids == ["id-4", "id-1", "id-6", "id-5", "id-2", "id-3"]


async def test_multi_key_sort_with_mixed_directions(db: DB) -> None:
    await _seed(db)
    found = await db.Article.find_many(sort=["views", "-title"])
    assert [e.title for e in found] == ["é", "B", "z", "b", "a", "A"]
    assert (await db.Article.find_many(sort=["-id"])).ids == [f"id-{i}" for i in range(6, 0, -1)]


async def test_sort_booleans_and_datetimes(db: DB) -> None:
    d = [datetime(2026, 1, i, tzinfo=UTC) for i in (3, 1, 2)]
    await db.Article.insert_many([
        {"id": "x1", "title": "t", "draft": True, "published": d[0]},
        {"id": "x2", "title": "t", "draft": False, "published": d[1]},
        {"id": "x3", "title": "t", "draft": True, "published": None},
        {"id": "x4", "title": "t", "draft": False, "published": d[2]},
    ])  # fmt: skip
    assert (await db.Article.find_many(sort="draft")).ids == ["x2", "x4", "x1", "x3"]
    assert (await db.Article.find_many(sort="published")).ids == ["x3", "x2", "x4", "x1"]
    assert (await db.Article.find_many(sort="-published")).ids == ["x1", "x4", "x2", "x3"]


async def test_skip_limit_page(db: DB) -> None:
    await _seed(db)
    all_ids = [f"id-{i}" for i in range(1, 7)]
    assert (await db.Article.find_many(limit=2)).ids == all_ids[:2]
    assert (await db.Article.find_many(skip=4)).ids == all_ids[4:]
    assert (await db.Article.find_many(skip=1, limit=3)).ids == all_ids[1:4]
    assert (await db.Article.find_many(limit=4, page=1)).ids == all_ids[4:]
    assert (await db.Article.find_many(limit="2", page="2")).ids == all_ids[4:6]
    assert (await db.Article.find_many(skip="10")).ids == []
    assert (await db.Article.find_many(limit=0)).ids == []
    sorted_page = await db.Article.find_many({"views": {">": 1}}, sort="-views", skip=1, limit=2)
    assert sorted_page.ids == ["id-3", "id-5"]


@pytest.mark.parametrize(
    "options",
    [
        {"skip": -1},
        {"skip": 1.5},
        {"skip": "1.5"},
        {"skip": float("inf")},
        {"limit": -2},
        {"limit": "ten"},
        {"page": 1},
        {"page": 1, "limit": 2, "skip": 1},
        {"page": -1, "limit": 2},
        {"sort": "nope"},
        {"sort": "tags"},
        {"sort": ["views", "-views"]},
        {"sort": 3},
    ],
    ids=lambda o: repr(o),
)
async def test_bad_options_raise_query_error(db: DB, options: dict[str, object]) -> None:
    with pytest.raises(da.QueryError):
        await db.Article.find_many(**options)  # type: ignore[arg-type]
