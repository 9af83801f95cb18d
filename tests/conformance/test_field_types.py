"""Field types beyond JSON's on every adapter (DESIGN.md 9): enums, Literal, Decimal,
UUID, date, nested pydantic models and lists/dicts of them go in, come back of the
declared type from every store, and can be queried; NaN and infinities are refused."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

import diaspora_async as da
from tests.conftest import DB
from tests.models import Address, Color, Level, Status

REF = uuid.UUID("0192f0c4-5a6b-7c8d-9e0f-a1b2c3d4e5f6")
SINCE = datetime(2025, 6, 7, 8, 9, 10, 123000, tzinfo=UTC)


def _rows() -> list[dict[str, Any]]:
    return [
        {"name": "one", "status": Status.live, "level": Level.high, "color": Color.blue,
         "kind": "b", "price": Decimal("19.99"), "ref": REF, "day": date(2026, 3, 4),
         "address": Address(city="Lyon", zip="69001", since=SINCE),
         "stops": [Address(city="Paris"), {"city": "Nice"}], "levels": [Level.low, Level.mid],
         "by_name": {"x": Color.red}, "ratio": 0.5},
        {"name": "two", "status": "draft", "level": 1, "color": "r", "price": "0.10",
         "day": "2026-01-31", "address": {"city": "Oslo"}, "levels": [3]},
        {"name": "three"},
    ]  # fmt: skip


async def test_values_read_back_of_the_declared_type(db: DB) -> None:
    one, two, three = await db.Typed.insert_many(_rows())
    found = await db.Typed.find(one.id)
    assert found is not None and found.state_in("main") is da.EntityState.SYNC
    assert found.status is Status.live and found.level is Level.high
    assert found.color is Color.blue and found.kind == "b"
    assert found.price == Decimal("19.99") and isinstance(found.price, Decimal)
    assert found.ref == REF and isinstance(found.ref, uuid.UUID)
    assert found.day == date(2026, 3, 4) and type(found.day) is date
    assert found.address == Address(city="Lyon", zip="69001", since=SINCE)
    assert found.stops == [Address(city="Paris"), Address(city="Nice")]
    assert found.levels == [Level.low, Level.mid] and found.levels[0] is Level.low
    assert found.by_name == {"x": Color.red}
    assert found.to_dict() == one.to_dict()
    second = await db.Typed.find(two.id)
    assert second is not None
    assert (second.status, second.level, second.color) == (Status.draft, Level.low, Color.red)
    assert second.price == Decimal("0.10") and str(second.price) == "0.10"  # exact, not 0.1
    assert second.day == date(2026, 1, 31) and second.levels == [Level.high]
    defaults = await db.Typed.find(three.id)
    assert defaults is not None
    assert defaults.status is Status.draft and defaults.level is Level.low
    assert defaults.color is None and defaults.address is None and defaults.stops == []


async def test_json_form_is_json_safe(db: DB) -> None:
    one = await db.Typed.insert(_rows()[0])
    found = await db.Typed.find(one.id)
    assert found is not None
    data = found.to_dict(mode="json")
    assert data["status"] == "live" and data["level"] == 3 and data["color"] == "b"
    assert data["price"] == "19.99" and data["ref"] == str(REF) and data["day"] == "2026-03-04"
    assert data["address"] == {
        "city": "Lyon",
        "zip": "69001",
        "since": "2025-06-07T08:09:10.123000Z",
    }
    assert data["levels"] == [1, 2] and data["by_name"] == {"x": "r"}
    assert (await db.Typed.find_many()).to_dicts(mode="json") == [data]


async def test_queries_on_special_types(db: DB) -> None:
    await db.Typed.insert_many(_rows())

    async def names(query: dict[str, Any], **options: Any) -> list[str]:
        return [e.name for e in await db.Typed.find_many(query, **options)]

    assert await names({"status": Status.live}) == ["one"]
    assert await names({"status": "draft"}) == ["two", "three"]
    assert await names({"level": Level.low}) == ["two", "three"]
    assert await names({"level": {">=": Level.mid}}) == ["one"]
    assert await names({"level": {"$in": [Level.high, 1]}}) == ["one", "two", "three"]
    assert await names({"color": Color.red}) == ["two"]
    assert await names({"color": {"$nin": [Color.blue]}}) == ["two"]
    assert await names({"kind": "b"}) == ["one"]
    assert await names({"price": Decimal("19.99")}) == ["one"]
    assert await names({"price": "0.10"}) == ["two"]
    assert await names({"ref": REF}) == ["one"]
    assert await names({"ref": str(REF)}) == ["one"]
    assert await names({"day": date(2026, 3, 4)}) == ["one"]
    assert await names({"day": {"<": date(2026, 2, 1)}}) == ["two"]
    assert await names({"day": {"~": True}}, sort="-day") == ["one", "two"]
    assert await names({"levels": {"$contains": Level.mid}}) == ["one"]
    assert await names({"address": {"~": True}}, sort="level") == ["two", "one"]
    assert await names({}, sort=["-level", "name"]) == ["one", "three", "two"]


async def test_updates_store_the_encoded_form(db: DB) -> None:
    one = await db.Typed.insert({"name": "u"})
    updated = await db.Typed.update(
        one.id, {"status": Status.live, "level": 3, "day": date(2027, 1, 1), "ref": REF}
    )
    assert updated is not None and updated.status is Status.live
    assert updated.state_in("main") is da.EntityState.SYNC
    assert await db.Typed.count({"status": "live", "level": Level.high, "ref": REF}) == 1
    found = await db.Typed.find(one.id)
    assert found is not None and found.day == date(2027, 1, 1) and found.level is Level.high
    found.color = Color.blue
    found.address = Address(city="Rome")
    assert found.state_in("main") is da.EntityState.DIRTY
    assert found.diff("main") == {"color": Color.blue, "address": Address(city="Rome")}
    await found.persist()
    assert found.state_in("main") is da.EntityState.SYNC
    again = await db.Typed.find({"color": Color.blue})
    assert again is not None and again.address == Address(city="Rome")
    assert await db.Typed.delete({"level": Level.high}) == 1  # rows stay deletable


async def test_bad_values_are_refused_before_any_write(db: DB) -> None:
    for bad in (
        {"status": "gone"}, {"level": 7}, {"color": "green"}, {"kind": "c"},
        {"price": "abc"}, {"ref": "not-a-uuid"}, {"day": "yesterday"},
        {"address": {"zip": "1"}}, {"ratio": float("nan")}, {"ratio": float("inf")},
    ):  # fmt: skip
        with pytest.raises(da.ValidationError) as info:
            await db.Typed.insert({"name": "bad", **bad})
        assert next(iter(bad)) in str(info.value)
    assert await db.Typed.count() == 0


async def test_range_and_sort_on_decimal_text_are_refused(db: DB) -> None:
    with pytest.raises(da.QueryError, match="needs a number or datetime"):
        await db.Typed.find_many({"price": {">": 1}})
    with pytest.raises(da.QueryError, match="exact text"):
        await db.Typed.find_many(sort="price")
    with pytest.raises(da.QueryError, match="ref"):
        await db.Typed.find_many({"ref": "not-a-uuid"})


async def test_a_duplicate_id_in_one_batch_is_refused_alike_everywhere(db: DB) -> None:
    with pytest.raises(da.ValidationError, match=r"duplicate id 'same' \(also at \[0\]\)") as info:
        await db.Typed.insert_many([{"id": "same", "name": "a"}, {"id": "same", "name": "b"}])
    assert info.value.errors == [("[1].id", "duplicate id 'same' (also at [0])")]
    assert await db.Typed.count() == 0
