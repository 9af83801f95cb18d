"""The defaults ``Adapter`` gives every adapter for the revision contract, and the memory
adapter's ``write_with`` (the reference of the transactional outbox)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import diaspora_async as da
from diaspora_async.adapters.base import DELETED, REV, Adapter, CollectionSchema
from diaspora_async.adapters.memory import MemoryAdapter
from diaspora_async.fields import MISSING, build_field
from diaspora_async.revisions import next_revision

SCHEMA = CollectionSchema("T", "t", {"name": build_field("name", str, MISSING)})
OTHER = CollectionSchema("O", "o", {"name": build_field("name", str, MISSING)})


async def test_the_default_patch_patches_nothing_and_write_with_is_a_config_error() -> None:
    adapter = MemoryAdapter("m", {})
    rev = next_revision()
    assert await Adapter.patch(adapter, SCHEMA, [("a", {"name": "x"}, rev, None)]) == ["a"]
    with pytest.raises(da.ConfigError, match="write_with is False"):
        await Adapter.write_with(adapter, SCHEMA, [], [])


async def test_the_default_drop_takes_the_tombstones_too() -> None:
    adapter = MemoryAdapter("m", {})
    r1, r2 = next_revision(), next_revision()
    await adapter.write(SCHEMA, [{"id": "a", REV: r1, "name": "x"}])
    await adapter.write(SCHEMA, [{"id": "b", REV: r2, DELETED: datetime.now(UTC)}])
    await Adapter.drop(adapter, SCHEMA)  # delete_where(None) + purge of every tombstone
    assert await adapter.revisions(SCHEMA, ["a", "b"]) == {}


async def test_memory_write_with_is_all_or_nothing() -> None:
    adapter = MemoryAdapter("m", {})
    r1 = next_revision()
    await adapter.insert(OTHER, [{"id": "i1", "name": "taken"}])
    with pytest.raises(da.IntegrityError):
        await adapter.write_with(
            SCHEMA, [{"id": "a", REV: r1, "name": "x"}], [(OTHER, [{"id": "i1", "name": "y"}])]
        )
    assert await adapter.get(SCHEMA, ["a"]) == []  # the write did not happen either
    assert await adapter.write_with(SCHEMA, [], [(OTHER, [{"id": "i2", "name": "z"}])]) == []
    assert [r["id"] for r in await adapter.get(OTHER, ["i1", "i2"])] == ["i1", "i2"]
