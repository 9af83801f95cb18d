"""DESIGN.md 6.1 at the entity and model level, for every target: whatever one object has
seen, every copy converges to the newest revision.

``main`` is the target under test and ``aux`` the memory reference. Where a test needs a
store failure, it makes aux's memory adapter fail (the target itself is never faked):
the target's behaviour under the failure is what is asserted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

import diaspora_async as da
from diaspora_async.adapters.base import REV
from diaspora_async.revisions import next_revision
from tests.conftest import DB

S = da.EntityState


async def stored(db: DB, entity_id: str, source: str) -> tuple[str | None, bool] | None:
    """What ``source`` holds for ``entity_id``: (revision, is_tombstone), or None."""
    adapter, schema = await db.Article.__meta__.target(source)
    return (await adapter.revisions(schema, [entity_id])).get(entity_id)


class Failing:
    """Makes aux's writes fail with ``ConnectionLost`` while ``down`` (and counts them)."""

    def __init__(self, db: DB, monkeypatch: pytest.MonkeyPatch) -> None:
        self.down = True
        self.calls = 0
        adapter = db.orm.data_sources["aux"].adapter
        real = adapter.write

        async def write(
            schema: Any, rows: Sequence[Any], expect: Any = None, **hints: Any
        ) -> list[str]:
            self.calls += 1
            if self.down:
                raise da.ConnectionLost("aux", "connection reset by peer")
            return await real(schema, rows, expect, **hints)

        monkeypatch.setattr(adapter, "write", write)


async def memory_outbox(db: DB) -> None:
    """An outbox in a memory source of its own (every target can then be written to)."""
    source = db.orm.create_data_source("outbox", "memory")
    await source.connect()
    db.orm.use_outbox("outbox")


def skip_on_http(db: DB) -> None:
    if db.target.label == "http":
        pytest.skip(
            "the REST API has no revision-less write: rows stored before revisions are "
            "the server store's own, covered on that store's target"
        )


@pytest.fixture
def aux_down(db: DB, monkeypatch: pytest.MonkeyPatch) -> Failing:
    return Failing(db, monkeypatch)


# -- one object, many stores ------------------------------------------------------------
async def test_loaded_from_one_store_persists_to_all(db: DB) -> None:
    a = await db.Article.insert({"title": "t", "views": 1})  # main only
    loaded = await db.Article.find(a.id)
    assert loaded is not None and loaded.revision == a.revision
    loaded.views += 1
    await loaded.persist(["main", "aux"])  # aux never held it: no error, both written
    for source in ("main", "aux"):
        found = await db.Article.find(a.id, source=source)
        assert found is not None and found.views == 2 and found.revision == loaded.revision
    assert loaded.revision is not None and a.revision is not None
    assert loaded.revision > a.revision


async def test_loaded_through_the_cache_persists_to_both(db: DB) -> None:
    a = await db.Article.insert({"title": "t"}, source=da.ALL)
    cached = await db.Article.find(a.id, source=["aux", "main"])
    assert cached is not None and cached.last_data_source == "aux"
    cached.title = "edited"
    await cached.persist(da.ALL)  # main is written although this object came from aux
    for source in ("main", "aux"):
        found = await db.Article.find(a.id, source=source)
        assert found is not None and found.title == "edited"
        assert found.revision == cached.revision
    assert cached.state is S.SYNC


async def test_one_call_gives_every_source_and_entity_one_revision(db: DB) -> None:
    es = await db.Article.insert_many([{"title": f"t{i}"} for i in range(5)], source=da.ALL)
    revisions = {e.revision for e in es}
    assert len(revisions) == 1 and None not in revisions
    for source in ("main", "aux"):
        assert {e.revision for e in await db.Article.find_many(source=source)} == revisions


async def test_nothing_changed_writes_nothing(
    db: DB, monkeypatch: pytest.MonkeyPatch, aux_down: Failing
) -> None:
    aux_down.down = False
    a = await db.Article.insert({"title": "t"}, source=da.ALL)
    before, calls = a.revision, aux_down.calls
    await a.persist(da.ALL)
    assert a.revision == before and aux_down.calls == calls  # no write at all
    assert (await stored(db, a.id, "main")) == (before, False)
    # an unchanged entity re-sends its own revision to a source that lacks it
    other = await db.Article.insert({"title": "u"})
    loaded = await db.Article.find(other.id)
    assert loaded is not None
    await loaded.persist(da.ALL)
    assert loaded.revision == other.revision
    assert (await stored(db, other.id, "aux")) == (other.revision, False)


async def test_racing_fills_of_one_entity_both_succeed(db: DB) -> None:
    a = await db.Article.insert({"title": "t"}, source="aux")
    one, two = await db.Article.find(a.id, source="aux"), await db.Article.find(a.id, source="aux")
    assert one is not None and two is not None
    await asyncio.gather(one.persist("main"), two.persist("main"), one.persist("main"))
    found = await db.Article.find(a.id, source="main")
    assert found is not None and found.revision == a.revision and found.title == "t"
    assert one.state_in("main") is S.SYNC and two.state_in("main") is S.SYNC


async def test_a_write_older_than_the_store_is_a_no_op_reported_as_superseded(db: DB) -> None:
    a = await db.Article.insert({"title": "t"}, source=da.ALL)
    old = await db.Article.find(a.id, source="aux")  # still at a's revision
    newer = await db.Article.find(a.id)
    assert old is not None and newer is not None
    newer.title = "newer"
    await newer.persist("main")
    await old.persist("main")  # unchanged: re-sends its (older) revision, which main refuses
    assert old.superseded == ["main"] and old.state_in("main") is S.DIRTY
    found = await db.Article.find(a.id)
    assert found is not None and found.title == "newer" and found.revision == newer.revision
    await old.fetch("main")
    assert old.title == "newer" and old.superseded == [] and old.state_in("main") is S.SYNC


# -- deletes ---------------------------------------------------------------------------
async def test_destroy_all_reaches_copies_never_seen(db: DB) -> None:
    a = await db.Article.insert({"title": "t"}, source=da.ALL)
    loaded = await db.Article.find(a.id)  # knows only main
    assert loaded is not None and loaded.stored_in == ["main"]
    await loaded.destroy(da.ALL)
    assert await db.Article.find(a.id, source="main") is None
    assert await db.Article.find(a.id, source="aux") is None
    assert loaded.state is S.ORPHAN
    for source in ("main", "aux"):
        assert (await stored(db, a.id, source)) == (loaded.revision, True)


async def test_a_tombstone_stops_an_older_write_and_is_invisible(db: DB) -> None:
    a = await db.Article.insert({"title": "t", "status": "live"}, source=da.ALL)
    late = await db.Article.find(a.id, source="aux")  # a copy of the pre-delete revision
    assert late is not None
    await a.destroy(da.ALL)
    await late.persist("main")  # an older write arriving after the delete
    assert late.superseded == ["main"]
    assert await db.Article.find(a.id) is None
    assert await db.Article.count() == 0
    assert await db.Article.count({"status": "live"}) == 0
    assert len(await db.Article.find_many({"status": "live"})) == 0
    assert await db.Article.delete_many({"status": "live"}) == 0


async def test_a_new_write_after_a_delete_creates_the_entity_again(db: DB) -> None:
    a = await db.Article.insert({"title": "t"})
    await a.destroy()
    a.title = "back"
    await a.persist()
    found = await db.Article.find(a.id)
    assert found is not None and found.title == "back" and found.revision == a.revision


async def test_model_level_delete_leaves_tombstones_in_every_source(db: DB) -> None:
    es = await db.Article.insert_many(
        [{"title": f"t{i}", "views": i} for i in range(4)], source=da.ALL
    )
    assert await db.Article.delete_many({"views": {"<": 2}}, source=da.ALL) == 2
    for e in es[:2]:
        for source in ("main", "aux"):
            held = await stored(db, e.id, source)
            assert held is not None and held[1] is True
    assert await db.Article.count(source="main") == await db.Article.count(source="aux") == 2


async def test_purge_tombstones_honours_the_retention(db: DB) -> None:
    a = await db.Article.insert({"title": "t"}, source=da.ALL)
    await a.destroy(da.ALL)
    assert await db.orm.purge_tombstones() == {"main": 0, "aux": 0}  # 7 days by default
    assert (await stored(db, a.id, "main")) == (a.revision, True)
    removed = await db.orm.purge_tombstones(older_than=timedelta(0))
    assert removed["main"] == 1 and removed["aux"] == 1
    assert await stored(db, a.id, "main") is None


# -- optimistic concurrency ---------------------------------------------------------------
async def test_check_conflict_writes_nothing_anywhere(db: DB) -> None:
    a = await db.Article.insert({"title": "t"}, source=da.ALL)
    mine = await db.Article.find(a.id)
    theirs = await db.Article.find(a.id)
    assert mine is not None and theirs is not None
    theirs.title = "theirs"
    await theirs.persist("main")
    mine.title = "mine"
    with pytest.raises(da.ConflictError) as info:
        await mine.persist(da.ALL, check=True)
    assert info.value.source == "main" and info.value.revision == theirs.revision
    assert info.value.expected == a.revision
    aux = await db.Article.find(a.id, source="aux")
    assert aux is not None and aux.title == "t" and aux.revision == a.revision
    # re-read, re-apply, and the checked write goes through to every source
    await mine.fetch("main")
    mine.title = "mine"
    await mine.persist(da.ALL, check=True)
    for source in ("main", "aux"):
        found = await db.Article.find(a.id, source=source)
        assert found is not None and found.title == "mine" and found.revision == mine.revision


async def test_check_after_a_delete_conflicts(db: DB) -> None:
    a = await db.Article.insert({"title": "t"})
    stale = await db.Article.find(a.id)
    assert stale is not None
    await a.destroy()
    stale.title = "edit"
    with pytest.raises(da.ConflictError) as info:
        await stale.persist(check=True)
    assert info.value.deleted is True
    assert await db.Article.find(a.id) is None


async def test_rows_stored_before_revisions_read_as_the_oldest(db: DB) -> None:
    skip_on_http(db)
    adapter, schema = await db.Article.__meta__.target("main")
    legacy = db.Article.spawn(title="old").to_dict()
    await adapter.insert(schema, [legacy])  # no revision, as written by an older version
    loaded = await db.Article.find(legacy["id"])
    assert loaded is not None and loaded.revision is None
    loaded.title = "new"
    await loaded.persist(check=True)  # the legacy copy is what it was loaded from
    found = await db.Article.find(legacy["id"])
    assert found is not None and found.title == "new" and found.revision is not None


# -- policies on every multi-source write ------------------------------------------------
async def test_queue_without_an_outbox_is_refused_before_any_io(db: DB) -> None:
    a = await db.Article.insert({"title": "t"})
    for call in (
        db.Article.spawn(title="x").persist(on_error="queue"),
        db.Article.update(a.id, {"title": "x"}, source=da.ALL, on_error="queue"),
        db.Article.update_many({"title": "t"}, {"title": "x"}, on_error="queue"),
        db.Article.delete(a.id, on_error="queue"),
        db.Article.delete_many({"title": "t"}, source=da.ALL, on_error="queue"),
        a.destroy(da.ALL, on_error="queue"),
    ):
        with pytest.raises(da.ConfigError, match="use_outbox"):
            await call
    found = await db.Article.find(a.id)
    assert found is not None and found.title == "t" and found.revision == a.revision
    assert await db.Article.count() == 1


async def test_model_level_update_queues_the_failed_source(db: DB, aux_down: Failing) -> None:
    await memory_outbox(db)
    a = await db.Article.insert({"title": "t", "views": 1})
    with pytest.raises(da.FanOutError) as info:
        await db.Article.update_many({"views": 1}, {"views": 2}, source=da.ALL, on_error="queue")
    assert info.value.succeeded == ["main"] and info.value.queued == ["aux"]
    assert [(p["source"], p["op"]) for p in await db.orm.outbox.pending()] == [("aux", "persist")]
    aux_down.down = False
    assert await db.orm.replay_outbox() == {"replayed": 1, "failed": 0, "dead": 0}
    for source in ("main", "aux"):
        found = await db.Article.find(a.id, source=source)
        assert found is not None and found.views == 2


async def test_model_level_delete_compensates(db: DB, aux_down: Failing) -> None:
    aux_down.down = False
    a = await db.Article.insert({"title": "t"}, source=da.ALL)
    aux_down.down = True
    with pytest.raises(da.FanOutError) as info:
        await db.Article.delete(a.id, source=da.ALL, on_error="compensate")
    assert info.value.compensated == ["main"]  # aux is still down: its undo failed
    found = await db.Article.find(a.id)
    assert found is not None and found.title == "t"
    assert found.revision is not None and a.revision is not None and found.revision > a.revision


async def test_single_source_queue_is_queued(db: DB, aux_down: Failing) -> None:
    await memory_outbox(db)
    with pytest.raises(da.ConnectionLost) as info:
        await db.Article.insert({"title": "t"}, source="aux", on_error="queue")
    assert any("queued" in note for note in info.value.__notes__)
    (entry,) = await db.orm.outbox.pending()
    assert entry["source"] == "aux" and entry[REV] is not None
    aux_down.down = False
    assert await db.orm.replay_outbox() == {"replayed": 1, "failed": 0, "dead": 0}
    assert await db.Article.count(source="aux") == 1


async def test_compensation_reaches_a_source_whose_outcome_is_unknown(
    db: DB, monkeypatch: pytest.MonkeyPatch
) -> None:
    # aux applies the write and then "loses the reply": the caller sees ConnectionLost
    adapter = db.orm.data_sources["aux"].adapter
    real = adapter.write
    lose = {"reply": True}

    async def write(
        schema: Any, rows: Sequence[Any], expect: Any = None, **hints: Any
    ) -> list[str]:
        refused = await real(schema, rows, expect, **hints)
        if lose["reply"]:
            lose["reply"] = False
            raise da.ConnectionLost("aux", "connection reset after the write")
        return refused

    monkeypatch.setattr(adapter, "write", write)
    lose["reply"] = False
    a = await db.Article.insert({"title": "old"}, source=da.ALL)
    lose["reply"] = True
    a.title = "new"
    with pytest.raises(da.FanOutError) as info:
        await a.persist(da.ALL, on_error="compensate")
    assert sorted(info.value.compensated) == ["aux", "main"]
    for source in ("main", "aux"):
        found = await db.Article.find(a.id, source=source)
        assert found is not None and found.title == "old" and found.revision == a.revision


# -- replay is revision-guarded ----------------------------------------------------------
async def test_replay_of_a_stale_entry_is_a_no_op(db: DB) -> None:
    await memory_outbox(db)
    a = await db.Article.insert({"title": "v1"})
    old = (a.id, {**a.attributes}, a.revision)
    a.title = "v2"
    await a.persist()
    await db.orm.outbox.record("Article", "persist", [old], ["main"])  # type: ignore[list-item]
    assert await db.orm.replay_outbox() == {"replayed": 1, "failed": 0, "dead": 0}
    found = await db.Article.find(a.id)
    assert found is not None and found.title == "v2" and found.revision == a.revision


async def test_replay_of_a_write_older_than_a_delete_does_not_resurrect(db: DB) -> None:
    await memory_outbox(db)
    a = await db.Article.insert({"title": "v1"})
    queued = (a.id, {**a.attributes}, a.revision)
    await a.destroy()
    await db.orm.outbox.record("Article", "persist", [queued], ["main"])  # type: ignore[list-item]
    await db.orm.replay_outbox()
    assert await db.Article.find(a.id) is None
    assert (await stored(db, a.id, "main")) == (a.revision, True)


async def test_replay_of_a_delete_wins_over_the_write_it_followed(db: DB) -> None:
    await memory_outbox(db)
    a = await db.Article.insert({"title": "v1"})
    write = (a.id, {**a.attributes}, a.revision)
    delete = (a.id, None, next_revision(a.revision))
    # delivered out of order: the delete first, then the older write
    await db.orm.outbox.record("Article", "destroy", [delete], ["main"])
    await db.orm.outbox.record("Article", "persist", [write], ["main"])  # type: ignore[list-item]
    await db.orm.replay_outbox()
    assert await db.Article.find(a.id) is None


async def test_check_on_a_batch_reports_every_conflict(db: DB) -> None:
    await db.Article.insert_many([{"title": f"t{i}"} for i in range(3)])
    mine, theirs = await db.Article.find_many(), await db.Article.find_many()
    for e in theirs[:2]:
        e.title = "theirs"
    await theirs[:2].persist()
    for e in mine:
        e.views = 7
    with pytest.raises(da.ConflictError) as info:
        await mine.persist(check=True)
    assert any("2 entities conflicted" in note for note in info.value.__notes__)
    assert info.value.entity_id == mine[0].id and info.value.revision == theirs[0].revision
    stored = {e.id: (e.title, e.views) for e in await db.Article.find_many()}
    assert stored[mine[0].id] == stored[mine[1].id] == ("theirs", 0)
    assert stored[mine[2].id] == ("t2", 7)  # the one nobody else changed went through
    assert mine[0].superseded == ["main"] and mine[2].state_in("main") is S.SYNC
