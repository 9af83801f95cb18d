"""The adapter contract of DESIGN.md 6.1, specified once for every target: revision-guarded
upserts (``Adapter.write``), tombstones, optimistic expectations, ``revisions``, ``purge``.

These call the adapter directly (through the model's schema in ``main``) so that each
guard is pinned down exactly; the entity-level behaviour built on them is in
``test_revisions.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import diaspora_async as da
from diaspora_async.adapters.base import DELETED, REV, Adapter, CollectionSchema
from diaspora_async.query.ast import Query
from diaspora_async.revisions import next_revision
from tests.conftest import DB

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


async def article(db: DB) -> tuple[Adapter, CollectionSchema]:
    return await db.Article.__meta__.target("main")


def row(entity_id: str, rev: str, **values: Any) -> dict[str, Any]:
    """A full Article row: every declared field, defaults for the ones not given."""
    base: dict[str, Any] = {
        "title": "t",
        "views": 0,
        "score": None,
        "draft": True,
        "tags": [],
        "meta": None,
        "published": None,
        "status": "draft",
        "slug": None,
    }
    return {"id": entity_id, REV: rev, **base, **values}


def tomb(entity_id: str, rev: str, when: datetime = NOW) -> dict[str, Any]:
    return {"id": entity_id, REV: rev, DELETED: when}


def revs(n: int) -> list[str]:
    out = [next_revision()]
    for _ in range(n - 1):
        out.append(next_revision(out[-1]))
    return out


async def test_write_applies_to_an_empty_store_and_reads_carry_the_revision(db: DB) -> None:
    adapter, schema = await article(db)
    (r1,) = revs(1)
    assert await adapter.write(schema, [row("a", r1, title="one", views=3, tags=["x"])]) == []
    (got,) = await adapter.get(schema, ["a"])
    assert got[REV] == r1 and got["title"] == "one" and got["views"] == 3 and got["tags"] == ["x"]
    (found,) = await adapter.find(schema, Query(None, (), 0, None))
    assert found[REV] == r1
    assert await adapter.count(schema, None) == 1
    assert await adapter.revisions(schema, ["a", "absent"]) == {"a": (r1, False)}


async def test_an_older_revision_is_not_applied_and_an_equal_one_is_a_replay(db: DB) -> None:
    adapter, schema = await article(db)
    r1, r2 = revs(2)
    await adapter.write(schema, [row("a", r2, title="newer")])
    assert await adapter.write(schema, [row("a", r1, title="older")]) == ["a"]
    # the store already holds this revision: a replay of a write that landed, not stale
    assert await adapter.write(schema, [row("a", r2, title="same revision")]) == []
    (got,) = await adapter.get(schema, ["a"])
    assert got["title"] == "newer" and got[REV] == r2


async def test_a_newer_revision_replaces_every_field(db: DB) -> None:
    adapter, schema = await article(db)
    r1, r2 = revs(2)
    published = datetime(2025, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    first = row("a", r1, title="one", score=1.5, meta={"k": 1}, published=published, slug="s")
    await adapter.write(schema, [first])
    assert await adapter.write(schema, [row("a", r2, title="two", views=9)]) == []
    (got,) = await adapter.get(schema, ["a"])
    assert got[REV] == r2 and got["title"] == "two" and got["views"] == 9
    assert got["score"] is None and got["meta"] is None and got["published"] is None
    assert got["slug"] is None


async def test_a_batch_applies_exactly_the_rows_the_guard_admits(db: DB) -> None:
    adapter, schema = await article(db)
    r1, r2, r3 = revs(3)
    await adapter.write(schema, [row("a", r2), row("b", r2), row("c", r2)])
    skipped = await adapter.write(
        schema,
        [row("a", r1, title="old"), row("b", r3, title="new"), row("c", r2), row("d", r1)],
    )
    assert skipped == ["a"]  # "c" already holds r2: taken as a replay
    got = {r["id"]: r for r in await adapter.get(schema, ["a", "b", "c", "d"])}
    assert got["a"]["title"] == "t" and got["b"]["title"] == "new" and got["d"][REV] == r1


async def test_a_large_batch_is_applied_and_replayed_as_a_no_op(db: DB) -> None:
    adapter, schema = await article(db)
    (r1,) = revs(1)
    rows = [row(f"id-{i:04d}", r1, views=i) for i in range(250)]
    assert await adapter.write(schema, rows) == []
    assert await adapter.count(schema, None) == 250
    assert await adapter.write(schema, rows) == []  # the replay of a landed batch
    assert await adapter.count(schema, None) == 250
    (r2,) = revs(1)
    newer = [row(r["id"], r2, views=-1) if i % 2 else r for i, r in enumerate(rows)]
    await adapter.write(schema, newer)
    assert sorted(await adapter.write(schema, rows)) == [r["id"] for r in rows[1::2]]
    assert await adapter.count(schema, db.Article.__meta__.where({"views": -1})) == 125


async def test_a_tombstone_hides_the_entity_and_blocks_older_writes(db: DB) -> None:
    adapter, schema = await article(db)
    r1, r2, r3 = revs(3)
    await adapter.write(schema, [row("a", r1, status="live"), row("b", r1, status="live")])
    assert await adapter.write(schema, [tomb("a", r2)]) == []
    assert [r["id"] for r in await adapter.get(schema, ["a", "b"])] == ["b"]
    assert [r["id"] for r in await adapter.find(schema, Query(None, (), 0, None))] == ["b"]
    assert await adapter.count(schema, None) == 1
    where = db.Article.__meta__.where({"status": "live"})
    assert await adapter.count(schema, where) == 1
    assert await adapter.revisions(schema, ["a", "b"]) == {"a": (r2, True), "b": (r1, False)}
    # an older write arriving late (a replay, a slow fan-out) does not resurrect it
    assert await adapter.write(schema, [row("a", r1, title="late")]) == ["a"]
    assert await adapter.get(schema, ["a"]) == []
    # a newer one does (the entity was created again)
    assert await adapter.write(schema, [row("a", r3, title="again")]) == []
    (got,) = await adapter.get(schema, ["a"])
    assert got["title"] == "again" and got[REV] == r3


async def test_an_older_tombstone_does_not_delete_a_newer_copy(db: DB) -> None:
    adapter, schema = await article(db)
    r1, r2 = revs(2)
    await adapter.write(schema, [row("a", r2)])
    assert await adapter.write(schema, [tomb("a", r1)]) == ["a"]
    assert len(await adapter.get(schema, ["a"])) == 1


async def test_a_tombstone_for_an_id_never_stored_is_kept(db: DB) -> None:
    adapter, schema = await article(db)
    r1, r2 = revs(2)
    assert await adapter.write(schema, [tomb("ghost", r2)]) == []
    assert await adapter.get(schema, ["ghost"]) == []
    assert await adapter.count(schema, None) == 0
    assert await adapter.revisions(schema, ["ghost"]) == {"ghost": (r2, True)}
    assert await adapter.write(schema, [row("ghost", r1)]) == ["ghost"]
    assert await adapter.get(schema, ["ghost"]) == []


async def test_tombstones_hold_no_unique_values(db: DB) -> None:
    adapter, schema = await article(db)
    r1, r2, r3 = revs(3)
    await adapter.write(schema, [row("a", r1, slug="taken"), row("b", r1, slug="other")])
    await adapter.write(schema, [tomb("a", r2), tomb("b", r2)])
    # the slug of a deleted entity is free again, for one live row
    assert await adapter.write(schema, [row("c", r3, slug="taken")]) == []
    assert (await adapter.get(schema, ["c"]))[0]["slug"] == "taken"


@pytest.mark.needs("unique_indexes")
async def test_a_live_row_violating_a_unique_index_raises(db: DB) -> None:
    adapter, schema = await article(db)
    r1, r2 = revs(2)
    await adapter.write(schema, [row("a", r1, slug="taken")])
    with pytest.raises(da.IntegrityError):
        await adapter.write(schema, [row("b", r2, slug="taken")])
    assert await adapter.revisions(schema, ["b"]) == {}


async def test_expectations_guard_optimistic_writes(db: DB) -> None:
    adapter, schema = await article(db)
    r1, r2, r3, r4 = revs(4)
    # None: only where no live copy exists
    assert await adapter.write(schema, [row("a", r1)], expect=[None]) == []
    assert await adapter.write(schema, [row("a", r2)], expect=[None]) == ["a"]
    # a string: only where the live copy holds exactly that revision
    assert await adapter.write(schema, [row("a", r3, title="x")], expect=[r2]) == ["a"]
    assert await adapter.write(schema, [row("a", r3, title="y")], expect=[r1]) == []
    (got,) = await adapter.get(schema, ["a"])
    assert got["title"] == "y" and got[REV] == r3
    # after a delete, "no live copy" holds again; an expected revision does not
    await adapter.write(schema, [tomb("a", r4)])
    assert await adapter.write(schema, [row("a", next_revision(r4))], expect=[r3]) == ["a"]
    assert await adapter.write(schema, [row("a", next_revision(r4))], expect=[None]) == []


async def test_expectations_are_per_row(db: DB) -> None:
    adapter, schema = await article(db)
    r1, r2 = revs(2)
    await adapter.write(schema, [row("a", r1), row("b", r1)])
    skipped = await adapter.write(
        schema, [row("a", r2, views=1), row("b", r2, views=2), row("c", r2)], expect=[r1, "x", None]
    )
    assert skipped == ["b"]
    got = {r["id"]: r["views"] for r in await adapter.get(schema, ["a", "b", "c"])}
    assert got == {"a": 1, "b": 0, "c": 0}


async def test_rows_stored_before_revisions_count_as_the_oldest(db: DB) -> None:
    if db.target.label == "http":
        pytest.skip("the REST API has no revision-less write (its POST creates with one)")
    adapter, schema = await article(db)
    legacy = row("old", "")
    del legacy[REV]
    await adapter.insert(schema, [legacy])
    (got,) = await adapter.get(schema, ["old"])
    assert got[REV] is None
    assert await adapter.revisions(schema, ["old"]) == {"old": (None, False)}
    r1, r2 = revs(2)
    assert await adapter.write(schema, [row("old", r2, title="x")], expect=[""]) == []
    await adapter.insert(schema, [{**legacy, "id": "old2"}])
    assert await adapter.write(schema, [tomb("old2", r1)]) == []
    assert await adapter.get(schema, ["old2"]) == []


async def test_purge_removes_only_old_tombstones(db: DB) -> None:
    adapter, schema = await article(db)
    r1, r2 = revs(2)
    old, recent = NOW - timedelta(days=30), NOW - timedelta(hours=1)
    await adapter.write(schema, [row("live", r1), row("a", r1)])
    await adapter.write(schema, [tomb("a", r2, old), tomb("b", r2, recent), tomb("c", r2, old)])
    assert await adapter.purge(schema, NOW - timedelta(days=7)) == 2
    assert await adapter.revisions(schema, ["live", "a", "b", "c"]) == {
        "live": (r1, False),
        "b": (r2, True),
    }
    assert await adapter.purge(schema, NOW - timedelta(days=7)) == 0
    # once purged, an old write may land again: that is what the retention bounds
    assert await adapter.write(schema, [row("a", r1)]) == []


async def test_remapped_fields_round_trip_through_write(db: DB) -> None:
    adapter, schema = await db.Remapped.__meta__.target("main")
    r1, r2 = revs(2)
    await adapter.write(schema, [{"id": "m", REV: r1, "title": "t", "views": 4}])
    (got,) = await adapter.get(schema, ["m"])
    assert got == {"id": "m", REV: r1, "title": "t", "views": 4}
    assert await adapter.write(schema, [{"id": "m", REV: r2, DELETED: NOW}]) == []
    assert await adapter.get(schema, ["m"]) == []


async def test_any_values_round_trip_through_write(db: DB) -> None:
    adapter, schema = await db.Doc.__meta__.target("main")
    (r1,) = revs(1)
    data = {"nested": [1, "two", {"three": None}], "flag": True}
    await adapter.write(schema, [{"id": "d", REV: r1, "name": "n", "data": data, "rank": 2}])
    (got,) = await adapter.get(schema, ["d"])
    assert got["data"] == data and got["rank"] == 2 and got[REV] == r1
