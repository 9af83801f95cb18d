"""``Adapter.write_with`` (the transactional outbox, DESIGN.md 6.2), for every target whose
capabilities say it can: a write and inserts into another collection commit together or
not at all, refusals are reported as by ``write``, and the store is usable after."""

from __future__ import annotations

import pytest

import diaspora_async as da
from diaspora_async.adapters.base import REV
from tests.conformance.test_write_contract import article, revs, row
from tests.conftest import DB

pytestmark = pytest.mark.needs("write_with")


async def test_a_write_and_its_inserts_commit_together(db: DB) -> None:
    adapter, schema = await article(db)
    _, docs = await db.Doc.__meta__.target("main")
    await adapter.ensure_schema(docs)
    r1, r2, r3 = revs(3)
    await adapter.write(schema, [row("b", r3, title="newer")])
    refused = await adapter.write_with(
        schema,
        [row("a", r1, title="one"), row("b", r2, title="older")],
        [(docs, [{"id": "i1", "name": "intent 1"}, {"id": "i2", "name": "intent 2"}])],
    )
    assert refused == ["b"]  # stale, as ``write`` would say; the rest committed
    got = {r["id"]: (r["title"], r[REV]) for r in await adapter.get(schema, ["a", "b"])}
    assert got == {"a": ("one", r1), "b": ("newer", r3)}
    assert sorted(r["name"] for r in await adapter.get(docs, ["i1", "i2"])) == [
        "intent 1",
        "intent 2",
    ]


async def test_a_failing_insert_takes_the_write_back_and_the_store_stays_usable(db: DB) -> None:
    adapter, schema = await article(db)
    _, docs = await db.Doc.__meta__.target("main")
    await adapter.ensure_schema(docs)
    await adapter.insert(docs, [{"id": "taken", "name": "first"}])
    r1, r2 = revs(2)
    for _ in range(3):  # repeatedly: a connection left mid-transaction would show
        with pytest.raises(da.IntegrityError):
            await adapter.write_with(
                schema,
                [row("a", r1, title="never")],
                [(docs, [{"id": "new", "name": "x"}, {"id": "taken", "name": "again"}])],
            )
        assert await adapter.get(schema, ["a"]) == []
        assert [r["name"] for r in await adapter.get(docs, ["new", "taken"])] == ["first"]
    # A unique value taken by another entity fails the write itself: nothing commits.
    await adapter.write(schema, [row("x", r1, slug="s")])
    with pytest.raises(da.IntegrityError):
        await adapter.write_with(
            schema, [row("y", r2, slug="s")], [(docs, [{"id": "after", "name": "y"}])]
        )
    assert await adapter.get(docs, ["after"]) == [] and await adapter.get(schema, ["y"]) == []
    assert await adapter.write(schema, [row("a", r2, title="works")]) == []
    assert [r["title"] for r in await adapter.get(schema, ["a"])] == ["works"]
