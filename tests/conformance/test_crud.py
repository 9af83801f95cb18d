"""Model-level CRUD on every adapter: what goes in comes out, unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

import diaspora_async as da
from tests.conftest import DB


async def test_insert_and_find_by_id_round_trips_every_type(db: DB) -> None:
    when = datetime(2026, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)
    a = await db.Article.insert(
        {"title": "Ünïcode ✓ 'quoted' `tick`", "views": 2**40, "score": -0.125, "draft": False,
         "tags": ["a", "b c", ""], "meta": {"n": [1, {"x": None}], "s": "t", "b": True, "f": 1.5},
         "published": when, "status": "live", "slug": "s-1"}
    )  # fmt: skip
    found = await db.Article.find(a.id)
    assert found is not None and found is not a
    assert found.to_dict() == a.to_dict()
    assert found.published == when and found.published.tzinfo is not None
    assert found.published.utcoffset() == timedelta(0)
    assert isinstance(found.draft, bool) and isinstance(found.views, int)
    assert found.state_in("main") is da.EntityState.SYNC
    assert found.last_data_source == "main"


async def test_defaults_and_missing_values(db: DB) -> None:
    a = await db.Article.insert({"title": "t"})
    found = await db.Article.find(a.id)
    assert found is not None
    assert found.to_dict() == {
        "id": a.id, "title": "t", "views": 0, "score": None, "draft": True, "tags": [],
        "meta": None, "published": None, "status": "draft", "slug": None,
    }  # fmt: skip


async def test_datetimes_are_normalised_to_utc_milliseconds(db: DB) -> None:
    plus2 = timezone(timedelta(hours=2))
    a = await db.Article.insert(
        {"title": "t", "published": datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=plus2)}
    )
    assert a.published == datetime(2026, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)
    b = await db.Article.insert({"title": "naive", "published": datetime(2026, 5, 1, 12, 0)})
    assert b.published == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    found = await db.Article.find(a.id)
    assert found is not None and found.published == a.published
    assert found.state_in("main") is da.EntityState.SYNC


async def test_find_missing_returns_none(db: DB) -> None:
    assert await db.Article.find("no-such-id") is None
    assert await db.Article.find({"title": "nothing"}) is None
    assert len(await db.Article.find_many({"title": "nothing"})) == 0


async def test_find_first_by_query_uses_id_order_or_sort(db: DB) -> None:
    es = await db.Article.insert_many([{"title": "x", "views": v} for v in (3, 1, 2)])
    first = await db.Article.find({"title": "x"})
    assert first is not None and first.id == min(e.id for e in es)
    top = await db.Article.find({"title": "x"}, sort="-views")
    assert top is not None and top.views == 3


async def test_insert_many_then_count(db: DB) -> None:
    es = await db.Article.insert_many([{"title": f"t{i}", "views": i} for i in range(25)])
    assert len(es) == 25 and all(e.state_in("main") is da.EntityState.SYNC for e in es)
    assert await db.Article.count() == 25
    assert await db.Article.count({"views": {">=": 20}}) == 5
    assert [e.title for e in await db.Article.find_many()] == [f"t{i}" for i in range(25)]


async def test_update_first_match(db: DB) -> None:
    es = await db.Article.insert_many([{"title": "same", "views": i} for i in range(3)])
    updated = await db.Article.update({"title": "same"}, {"views": 99, "status": "live"})
    assert updated is not None and updated.id == es[0].id
    assert updated.views == 99 and updated.status == "live"
    assert updated.state_in("main") is da.EntityState.SYNC
    assert sorted(e.views for e in await db.Article.find_many({"title": "same"})) == [1, 2, 99]
    assert await db.Article.update({"title": "none"}, {"views": 1}) is None


async def test_update_by_id_and_to_missing(db: DB) -> None:
    a = await db.Article.insert({"title": "t", "score": 2.0})
    updated = await db.Article.update(a.id, {"score": None})
    assert updated is not None and updated.score is None
    assert await db.Article.count({"score": {"~": True}}) == 0
    assert await db.Article.count({"score": None}) == 1


async def test_update_many_returns_updated_entities(db: DB) -> None:
    await db.Article.insert_many([{"title": f"t{i}", "views": i} for i in range(6)])
    changed = await db.Article.update_many(
        {"views": {">=": 3}}, {"status": "live", "tags": ["hot"]}
    )
    assert sorted(e.title for e in changed) == ["t3", "t4", "t5"]
    assert all(e.status == "live" and e.tags == ["hot"] for e in changed)
    assert await db.Article.count({"status": "live"}) == 3
    assert await db.Article.count({"tags": {"$contains": "hot"}}) == 3
    assert await db.Article.count({"status": "draft"}) == 3


async def test_delete_and_delete_many(db: DB) -> None:
    es = await db.Article.insert_many([{"title": "d", "views": i} for i in range(5)])
    assert await db.Article.delete({"title": "d"}) == 1
    assert await db.Article.find(es[0].id) is None
    assert await db.Article.delete_many({"views": {">": 2}}) == 2
    assert await db.Article.delete(es[1].id) == 1
    assert await db.Article.delete("gone-id") == 0
    assert [e.views for e in await db.Article.find_many()] == [2]
    assert await db.Article.delete_many({}, allow_empty_query=True) == 1
    assert await db.Article.count() == 0


async def test_iterate_streams_in_batches_in_order(db: DB) -> None:
    await db.Article.insert_many([{"title": f"t{i:02}", "views": i % 4} for i in range(11)])
    seen = [e.title async for e in db.Article.iterate({"views": {"<": 3}}, batch_size=3)]
    assert seen == [f"t{i:02}" for i in range(11) if i % 4 < 3]
    by_views = [e.views async for e in db.Article.iterate(None, batch_size=4, sort="-views")]
    assert by_views == sorted((i % 4 for i in range(11)), reverse=True)


async def test_insert_of_an_existing_id_is_a_newer_write(db: DB) -> None:
    # DESIGN.md 6.1: every write is a revision-guarded upsert, so writing an id that
    # exists is the newest write of that entity (last writer wins) ...
    a = await db.Article.insert({"title": "first"})
    b = await db.Article.insert({"id": a.id, "title": "second"}, source="main")
    assert b.revision is not None and a.revision is not None and b.revision > a.revision
    found = await db.Article.find(a.id)
    assert found is not None and found.title == "second" and found.revision == b.revision
    # ... and check=True is the create-only form: it refuses an id that is taken
    with pytest.raises(da.ConflictError) as info:
        await db.Article.spawn(id=a.id, title="third").persist(check=True)
    assert info.value.source == "main" and info.value.revision == b.revision
    assert info.value.expected is None and info.value.entity_id == a.id
    found = await db.Article.find(a.id)
    assert found is not None and found.title == "second"


@pytest.mark.needs("unique_indexes", "transactions")
async def test_batch_with_a_unique_violation_writes_nothing(db: DB) -> None:
    await db.Article.insert({"title": "first", "slug": "taken"})
    with pytest.raises(da.IntegrityError):
        await db.Article.insert_many([{"title": "new"}, {"title": "dup", "slug": "taken"}])
    assert [e.title for e in await db.Article.find_many()] == ["first"]


@pytest.mark.needs("unique_indexes")
async def test_unique_field(db: DB) -> None:
    await db.Article.insert({"title": "a", "slug": "s"})
    await db.Article.insert({"title": "b"})  # None does not collide
    await db.Article.insert({"title": "c"})
    with pytest.raises(da.IntegrityError):
        await db.Article.insert({"title": "d", "slug": "s"})
    assert await db.Article.count() == 3


async def test_remapped_fields_behave_like_plain_ones(db: DB) -> None:
    r = await db.Remapped.insert({"title": "mapped", "views": 7})
    await db.Remapped.insert({"title": "other", "views": 1})
    found = await db.Remapped.find_many({"views": {">": 5}}, sort="-title")
    assert [(e.id, e.title, e.views) for e in found] == [(r.id, "mapped", 7)]
    r.views = 8
    await r.persist()
    assert (await db.Remapped.find(r.id)).views == 8  # type: ignore[union-attr]
    assert await db.Remapped.update_many({"title": "other"}, {"views": 2}) is not None
    assert await db.Remapped.count({"views": 2}) == 1


async def test_close_then_connect_again(db: DB) -> None:
    a = await db.Article.insert({"title": "before"})
    await db.orm.close()
    with pytest.raises(da.ConfigError, match="not connected"):
        await db.Article.count()
    await db.orm.connect()
    b = await db.Article.insert({"title": "after"})
    assert (await db.Article.find(b.id)) is not None
    if db.capabilities.persistent:
        assert (await db.Article.find(a.id)) is not None
    assert db.main.stats()["in_use"] == 0
