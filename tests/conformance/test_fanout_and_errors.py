"""Fan-out over two sources (the target and memory) and every error type."""

from __future__ import annotations

from typing import Any

import pytest

import diaspora_async as da
from tests.conftest import DB

S = da.EntityState


async def test_persist_to_both_sources(db: DB) -> None:
    a = db.Article.spawn(title="t")
    await a.persist(["main", "aux"])
    assert a.state_in("main") is S.SYNC and a.state_in("aux") is S.SYNC
    a.views = 5
    await a.persist(da.ALL)
    for source in ("main", "aux"):
        found = await db.Article.find(a.id, source=source)
        assert found is not None and found.views == 5 and found.last_data_source == source
    await a.destroy(da.ALL)
    assert a.state is S.ORPHAN
    assert await db.Article.count(source="main") == await db.Article.count(source="aux") == 0


async def test_one_failing_source_does_not_hide_the_other(db: DB) -> None:
    taken = await db.Article.insert({"title": "already in aux", "slug": "s"}, source="aux")
    a = db.Article.spawn(title="new", slug="s")  # aux (memory) enforces unique slugs
    with pytest.raises(da.FanOutError) as info:
        await a.persist(["main", "aux"])
    err = info.value
    assert err.succeeded == ["main"] and list(err.failed) == ["aux"]
    assert isinstance(err.failed["aux"], da.IntegrityError)
    assert isinstance(err, ExceptionGroup) and err.exceptions == (err.failed["aux"],)
    assert a.state_in("main") is S.SYNC and a.state_in("aux") is S.ORPHAN
    assert (await db.Article.find(a.id, source="main")).title == "new"  # type: ignore[union-attr]
    assert await db.Article.find(a.id, source="aux") is None
    assert (await db.Article.find(taken.id, source="aux")).slug == "s"  # type: ignore[union-attr]


async def test_hook_failing_for_one_source_fails_that_source_only(db: DB) -> None:
    def refuse_aux(entity: Any, source: str) -> None:
        if source == "aux":
            raise RuntimeError("aux refused")

    db.Article.on("before_persist", refuse_aux)
    a = db.Article.spawn(title="t")
    with pytest.raises(da.FanOutError) as info:
        await a.persist(da.ALL)
    assert info.value.succeeded == ["main"]
    assert isinstance(info.value.failed["aux"], RuntimeError)
    assert a.state_in("main") is S.SYNC and a.state_in("aux") is S.ORPHAN


async def test_compensate_undoes_what_succeeded(db: DB) -> None:
    await db.Article.insert({"title": "in aux", "slug": "s"}, source="aux")
    a = db.Article.spawn(title="new", slug="s")
    with pytest.raises(da.FanOutError) as info:
        await a.persist(["main", "aux"], on_error="compensate")
    # aux refused outright (a unique value): nothing landed there, nothing to undo
    assert info.value.compensated == ["main"]
    assert a.state_in("main") is S.ORPHAN
    assert await db.Article.find(a.id, source="main") is None
    # the undo is a newer tombstone: a late replay of the create cannot bring it back
    adapter, schema = await db.Article.__meta__.target("main")
    (held,) = (await adapter.revisions(schema, [a.id])).values()
    assert held[1] is True and a.revision is not None and held[0] == a.revision


async def test_compensate_restores_what_an_update_replaced(db: DB) -> None:
    a = await db.Article.insert({"title": "old", "views": 1}, source=da.ALL)
    loaded = a.revision
    await db.Article.insert({"title": "holds the slug", "slug": "s"}, source="aux")
    a.title, a.views, a.slug = "new", 2, "s"
    with pytest.raises(da.FanOutError) as info:
        await a.persist(da.ALL, on_error="compensate")
    assert info.value.succeeded == ["main"] and info.value.compensated == ["main"]
    assert isinstance(info.value.failed["aux"], da.IntegrityError)
    stored = await db.Article.find(a.id, source="main")
    assert stored is not None and (stored.title, stored.views, stored.slug) == ("old", 1, None)
    # written back with a revision newer than the undone write's (it supersedes it)
    assert stored.revision is not None and loaded is not None and stored.revision > loaded
    assert stored.revision == a.revision
    # The entity knows both hold the old values: its change is pending there.
    assert a.state_in("main") is S.DIRTY
    assert a.diff("main") == {"title": "new", "views": 2, "slug": "s"}
    assert a.state_in("aux") is S.DIRTY


async def test_reads_fall_back_along_the_chain(db: DB) -> None:
    only_main = await db.Article.insert({"title": "main only"})
    in_aux = await db.Article.insert({"title": "aux copy"}, source="aux")
    found = await db.Article.find(only_main.id, source=["aux", "main"])
    assert found is not None and found.last_data_source == "main"
    found = await db.Article.find(in_aux.id, source=["aux", "main"])
    assert found is not None and found.last_data_source == "aux"
    assert await db.Article.find("nowhere", source=["aux", "main"]) is None


async def test_model_level_writes_fan_out(db: DB) -> None:
    es = await db.Article.insert_many(
        [{"title": f"t{i}", "views": i} for i in range(4)], source=da.ALL
    )
    assert all(e.state_in("aux") is S.SYNC for e in es)
    await db.Article.update_many({"views": {">": 1}}, {"status": "live"}, source=["main", "aux"])
    assert await db.Article.count({"status": "live"}, source="aux") == 2
    assert await db.Article.count({"status": "live"}, source="main") == 2
    assert await db.Article.delete_many({"views": {"<": 2}}, source=da.ALL) == 2
    assert await db.Article.count(source="aux") == await db.Article.count(source="main") == 2


@pytest.mark.parametrize(
    "query",
    [
        {"nope": 1},
        {"views": {"$gt": 1}},
        {"views": {"<": 1, "$less": 2}},
        {"$or": [{"views": 1}], "||": [{"views": 2}]},
        {"views": {"<": "10"}},
        {"title": {">": "a"}},
        {"views": {"<": True}},
        {"views": "abc"},
        {"views": {"$in": 5}},
        {"views": {"$exists": "yes"}},
        {"tags": {"$contains": 5}},
        {"draft": {"$contains": "x"}},
        {"$or": []},
        {"$or": {"views": 1}},
        {"$bogus": []},
        {"views": {"==": 1, "oops": 2}},
        {"published": {">": "not a date"}},
        [("views", 1)],
    ],
    ids=lambda q: repr(q),
)
async def test_bad_queries_raise_query_error_before_io(db: DB, query: Any) -> None:
    await db.Article.insert({"title": "keep", "views": 1})
    with pytest.raises(da.QueryError):
        await db.Article.find_many(query)
    with pytest.raises(da.QueryError):
        await db.Article.count(query)
    with pytest.raises(da.QueryError):
        await db.Article.delete_many(query)
    with pytest.raises(da.QueryError):
        await db.Article.update_many(query, {"views": 2})
    assert (await db.Article.find_many()).to_dicts()[0]["views"] == 1


async def test_empty_query_updates_and_deletes_need_consent(db: DB) -> None:
    await db.Article.insert_many([{"title": "a"}, {"title": "b"}])
    for call in (
        db.Article.delete_many({}), db.Article.delete(None), db.Article.update_many({}, {"views": 1}),
        db.Article.update(None, {"views": 1}),
    ):  # fmt: skip
        with pytest.raises(da.QueryError):
            await call
    assert await db.Article.count({"views": 0}) == 2
    assert len(await db.Article.update_many({}, {"views": 1}, allow_empty_query=True)) == 2


async def test_bad_changes_raise_validation_error_and_write_nothing(db: DB) -> None:
    a = await db.Article.insert({"title": "t"})
    with pytest.raises(da.ValidationError):
        await db.Article.update(a.id, {"views": "many"})
    with pytest.raises(da.ValidationError):
        await db.Article.update_many({"title": "t"}, {"nope": 1})
    with pytest.raises(da.ValidationError):
        await db.Article.update(a.id, {"status": "weird"})
    assert (await db.Article.find(a.id)).to_dict() == a.to_dict()  # type: ignore[union-attr]


async def test_unknown_source_names(db: DB) -> None:
    with pytest.raises(da.UnknownDataSource, match="nope"):
        await db.Article.spawn(title="t").persist("nope")
    with pytest.raises(da.UnknownDataSource):
        await db.Article.find_many(source=["main", "nope"])
    with pytest.raises(da.UnknownDataSource, match="aux"):
        await db.Doc.insert({"name": "n"}, source="aux")  # Doc does not use aux
    assert await db.Article.count() == 0


def test_error_tree() -> None:
    for cls in (da.ValidationError, da.QueryError, da.EntityStateError, da.UnknownDataSource,
                da.ConfigError, da.DataSourceError, da.ConnectionLost, da.PoolTimeout,
                da.IntegrityError, da.FanOutError, da.UnsupportedQuery):  # fmt: skip
        assert issubclass(cls, da.DiasporaError)
    assert issubclass(da.ConnectionLost, da.DataSourceError)
    assert issubclass(da.PoolTimeout, da.DataSourceError)
    assert issubclass(da.FanOutError, ExceptionGroup)


async def test_sync_copies_missing_and_changed_entities(db: DB) -> None:
    offline = await db.Article.insert_many(
        [{"title": f"t{i}", "views": i} for i in range(7)], source="aux"
    )
    await db.Article.insert({"id": offline[0].id, "title": "t0", "views": 0})  # already equal
    # written to main after aux's copy: a newer revision, which sync must not overwrite
    await db.Article.insert({"id": offline[1].id, "title": "newer in main", "views": 1})
    # copied to main, then changed in aux: aux holds the newer revision
    await db.Article.insert({"id": offline[2].id, "title": "t2", "views": 2})
    offline[2].views = 20
    await offline[2].persist("aux")
    reports: list[int] = []
    report = await db.Article.sync(
        "aux", "main", batch_size=3, progress=lambda r: reports.append(r.total)
    )
    assert (report.created, report.updated, report.unchanged) == (4, 1, 2)
    assert reports == [3, 6, 7]
    main = {e.id: e.to_dict() for e in await db.Article.find_many(source="main")}
    aux = {e.id: e.to_dict() for e in await db.Article.find_many(source="aux")}
    assert main.pop(offline[1].id)["title"] == "newer in main"
    assert aux.pop(offline[1].id)["title"] == "t1"
    assert main == aux
    again = await db.Article.sync("aux", "main", {"views": {">": 3}})
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
