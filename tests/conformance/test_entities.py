"""Entity lifecycle on every adapter: states, diffs, fetch/destroy, events, EntitySet."""

from __future__ import annotations

from typing import Any

import pytest

import diaspora_async as da
from tests.conftest import DB

S = da.EntityState


async def test_states_through_a_lifecycle(db: DB) -> None:
    a = db.Article.spawn(title="t")
    assert a.state is S.ORPHAN and a.state_in("main") is S.ORPHAN and a.last_data_source is None
    await a.persist()
    assert a.state is S.SYNC and a.state_in("main") is S.SYNC and a.state_in("aux") is S.ORPHAN
    assert a.last_data_source == "main"
    a.views = 3
    assert a.state is S.DIRTY and a.diff("main") == {"views": 3}
    await a.persist()
    assert a.state is S.SYNC and a.diff("main") == {}
    await a.destroy()
    assert a.state is S.ORPHAN and await db.Article.find(a.id) is None


async def test_in_place_edits_are_seen_as_changes(db: DB) -> None:
    a = await db.Article.insert({"title": "t", "tags": ["a"], "meta": {"k": [1]}})
    a.tags.append("b")
    a.meta["k"].append(2)
    assert a.state_in("main") is S.DIRTY
    assert a.diff("main") == {"tags": ["a", "b"], "meta": {"k": [1, 2]}}
    await a.persist()
    found = await db.Article.find(a.id)
    assert found is not None and found.tags == ["a", "b"] and found.meta == {"k": [1, 2]}


async def test_a_write_from_an_older_read_conflicts_with_check_or_wins_whole(db: DB) -> None:
    a = await db.Article.insert({"title": "t", "views": 1})
    one, two = await db.Article.find(a.id), await db.Article.find(a.id)
    assert one is not None and two is not None and one.revision == two.revision == a.revision
    one.title = "changed by one"
    await one.persist()
    two.views = 2
    with pytest.raises(da.ConflictError) as info:
        await two.persist(check=True)  # two read a revision the store no longer holds
    assert info.value.expected == a.revision and info.value.revision == one.revision
    found = await db.Article.find(a.id)
    assert found is not None and (found.title, found.views) == ("changed by one", 1)
    assert two.revision == a.revision  # nothing was written: two stands where it stood
    # Without check, the later write wins as a whole: one revision is one state.
    await two.persist()
    found = await db.Article.find(a.id)
    assert found is not None and (found.title, found.views) == ("t", 2)
    assert found.revision == two.revision and two.revision > one.revision  # type: ignore[operator]


async def test_fetch_reloads_and_orphan_fetch_fails(db: DB) -> None:
    a = await db.Article.insert({"title": "t"})
    await db.Article.update(a.id, {"views": 50})
    assert a.views == 0
    await a.fetch()
    assert a.views == 50 and a.state is S.SYNC
    with pytest.raises(da.EntityStateError):
        await db.Article.spawn(title="x").fetch()
    await db.Article.delete(a.id)
    with pytest.raises(da.EntityStateError):
        await a.fetch()
    assert a.state_in("main") is S.ORPHAN


async def test_destroy_orphan_fails_before_any_io(db: DB) -> None:
    a = db.Article.spawn(title="t")
    with pytest.raises(da.EntityStateError):
        await a.destroy()
    with pytest.raises(da.EntityStateError):
        await a.destroy(da.ALL)


async def test_validation_error_writes_nothing(db: DB) -> None:
    a = db.Article.spawn(title=3, views="lots", status="unknown", tags=[1, "ok"])
    with pytest.raises(da.ValidationError) as info:
        await a.persist(["main", "aux"])
    paths = {p for p, _ in info.value.errors}
    assert paths == {"title", "views", "status", "tags.0"}
    assert "views" in str(info.value)
    assert a.state is S.ORPHAN
    assert await db.Article.count() == 0 and await db.Article.count(source="aux") == 0


async def test_values_are_cast_on_persist(db: DB) -> None:
    a = db.Article.spawn(title="t", views="42", score=1, tags=("x",))
    await a.persist()
    assert a.views == 42 and a.score == 1.0 and a.tags == ["x"]
    found = await db.Article.find(a.id)
    assert found is not None and found.views == 42 and found.tags == ["x"]


async def test_spawn_rejects_unknown_attributes(db: DB) -> None:
    with pytest.raises(da.ValidationError):
        db.Article.spawn(title="t", nope=1)
    a = db.Article.spawn(title="t")
    with pytest.raises(AttributeError):
        a.nope = 1


async def test_events_run_in_documented_order(db: DB) -> None:
    calls: list[tuple[str, str]] = []

    def recorder(name: str) -> Any:
        async def hook(entity: Any, source: str) -> None:
            calls.append((name, source))

        return hook

    for event in ("before_persist", "before_validate", "after_validate",
                  "before_persist_create", "before_persist_update", "after_persist_create",
                  "after_persist_update", "after_persist", "before_fetch", "after_fetch",
                  "before_destroy", "after_destroy"):  # fmt: skip
        db.Article.on(event, recorder(event))
    db.Article.on("after_persist", lambda e, s: calls.append(("plain after_persist", s)))

    a = db.Article.spawn(title="t")
    await a.persist()
    assert [c for c, _ in calls] == [
        "before_persist", "before_validate", "after_validate", "before_persist_create",
        "after_persist_create", "after_persist", "plain after_persist",
    ]  # fmt: skip
    assert {s for _, s in calls} == {"main"}
    calls.clear()
    a.views = 1
    await a.persist()
    assert [c for c, _ in calls] == [
        "before_persist", "before_validate", "after_validate", "before_persist_update",
        "after_persist_update", "after_persist", "plain after_persist",
    ]  # fmt: skip
    calls.clear()
    await a.fetch()
    await a.destroy()
    assert [c for c, _ in calls] == [
        "before_fetch",
        "after_fetch",
        "before_destroy",
        "after_destroy",
    ]
    calls.clear()
    await db.Article.spawn(title="quiet").persist(skip_events=True)
    assert calls == []


async def test_failing_before_hook_aborts_with_nothing_written(db: DB) -> None:
    def refuse(entity: Any, source: str) -> None:
        if entity.title == "forbidden":
            raise PermissionError("no")

    db.Article.on("before_persist_create", refuse)
    with pytest.raises(PermissionError):
        await db.Article.insert({"title": "forbidden"})
    assert await db.Article.count() == 0
    await db.Article.insert({"title": "fine"})
    assert await db.Article.count() == 1


async def test_hooks_can_change_the_entity_before_validation(db: DB) -> None:
    def stamp(entity: Any, source: str) -> None:
        entity.views = "7"  # cast by the validation that follows

    db.Article.on("before_validate", stamp)
    a = await db.Article.insert({"title": "t"})
    assert a.views == 7
    assert (await db.Article.find(a.id)).views == 7  # type: ignore[union-attr]


async def test_entity_set_bulk_operations(db: DB) -> None:
    existing = await db.Article.insert({"title": "old", "views": 1})
    existing.views = 2
    batch = da.EntitySet(
        db.Article, [existing, *db.Article.spawn_many([{"title": f"n{i}"} for i in range(3)])]
    )
    assert len(batch) == 4 and batch[0] is existing and len(batch[1:]) == 3
    await batch.persist()
    assert all(e.state is S.SYNC for e in batch)
    assert sorted(e.views for e in await db.Article.find_many()) == [0, 0, 0, 2]
    await batch.update({"status": "live"})
    assert await db.Article.count({"status": "live"}) == 4
    await db.Article.update_many({}, {"views": 9}, allow_empty_query=True)
    await batch.fetch()
    assert [e.views for e in batch] == [9, 9, 9, 9]
    assert batch.to_dicts()[0]["id"] == existing.id
    await batch[:2].destroy()
    assert await db.Article.count() == 2


async def test_entity_set_persist_validates_everything_first(db: DB) -> None:
    batch = db.Article.spawn_many([{"title": "ok"}, {"title": "bad", "views": "x"}])
    with pytest.raises(da.ValidationError) as info:
        await batch.persist()
    assert [p for p, _ in info.value.errors] == ["[1].views"]
    assert await db.Article.count() == 0
