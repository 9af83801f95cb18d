"""Model.iterate: the same stream as one sorted find, page after page (DESIGN.md section 4).

Stores with ``Capabilities.keyset_paging`` page by position (``query/keyset.py``); the
rest by offset. Either way the stream is the order of one ``find_many`` with the same
sort; with keyset paging, rows deleted or inserted behind the cursor shift nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import DB

T0 = datetime(2026, 1, 1, tzinfo=UTC)

SORTS = [
    None,
    "title",
    "-title",
    ["status", "-views"],
    ["-draft", "score"],
    ["-score", "title"],
    ["published", "-slug"],
    ["-published", "draft", "-title"],
]


async def _seed(db: DB) -> None:
    # Ties, missing values (None) and strings that differ only past the first code
    # point or by case, so every branch of the keyset condition is taken.
    rows = []
    for i in range(23):
        rows.append({
            "title": ["b", "B", "a", "ab", "a\u00e9", "a\U0001f600"][i % 6],
            "views": i % 5,
            "score": None if i % 4 == 0 else float(i % 3) - 0.5,
            "draft": i % 3 == 0,
            "status": ["draft", "live", "gone"][i % 3],
            "published": None if i % 5 == 0 else T0 + timedelta(days=i % 4),
            "slug": None if i % 2 else f"s{i:02}",
        })  # fmt: skip
    await db.Article.insert_many(rows)


@pytest.mark.parametrize("sort", SORTS, ids=str)
@pytest.mark.parametrize("batch_size", [1, 4])
async def test_iterate_is_one_sorted_find(db: DB, sort: object, batch_size: int) -> None:
    await _seed(db)
    whole = [e.id for e in await db.Article.find_many(sort=sort)]
    assert len(whole) == 23
    streamed = [e.id async for e in db.Article.iterate(None, batch_size=batch_size, sort=sort)]
    assert streamed == whole


async def test_iterate_with_a_query_and_remapped_names(db: DB) -> None:
    await _seed(db)
    query = {"views": {">=": 1}}
    whole = [e.id for e in await db.Article.find_many(query, sort=["-title", "published"])]
    streamed = [
        e.id async for e in db.Article.iterate(query, batch_size=3, sort=["-title", "published"])
    ]
    assert streamed == whole and len(whole) > 6
    await db.Remapped.insert_many([{"title": f"r{i % 3}", "views": i} for i in range(7)])
    names = [(e.title, e.views) async for e in db.Remapped.iterate(batch_size=2, sort="-title")]
    assert names == sorted(((f"r{i % 3}", i) for i in range(7)), key=lambda t: t[0], reverse=True)


@pytest.mark.needs("keyset_paging")
async def test_rows_deleted_and_inserted_behind_the_cursor_shift_nothing(db: DB) -> None:
    made = await db.Article.insert_many([{"title": f"t{i:02}", "views": i} for i in range(10)])
    seen = []
    async for e in db.Article.iterate(None, batch_size=3, sort="views"):
        seen.append(e.views)
        if e.views == 2:  # the end of the first batch: change what is behind the cursor
            await db.Article.delete_many({"id": {"$in": [made[0].id, made[1].id]}})
            await db.Article.insert({"title": "early", "views": -1})
    # Offset paging would go on at position 3, now views=4 (two rows gone, one new, all
    # before the cursor), and skip views=3; by position each row present throughout
    # comes exactly once.
    assert seen == list(range(10))
