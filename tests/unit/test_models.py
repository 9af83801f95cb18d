"""Model declaration, the dict form, spawning, ids and the validator."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest

import diaspora_async as da
from diaspora_async.fields import to_utc
from diaspora_async.ids import new_id


def make_orm() -> da.Diaspora:
    orm = da.Diaspora()
    orm.create_data_source("mem", "memory")
    return orm


def test_ids_are_time_ordered_uuid7() -> None:
    ids = [new_id() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(
        re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", i)
        for i in ids
    )


def test_to_utc() -> None:
    assert to_utc(datetime(2026, 1, 1, 12)) == datetime(2026, 1, 1, 12, tzinfo=UTC)
    got = to_utc(datetime(2026, 1, 1, 12, 0, 0, 999999, tzinfo=timezone(timedelta(hours=-5))))
    assert got == datetime(2026, 1, 1, 17, 0, 0, 999000, tzinfo=UTC) and got.tzinfo is UTC


def test_class_declaration_compiles_fields() -> None:
    orm = make_orm()

    class Post(orm.Model, sources="mem", collection="posts"):
        counter: ClassVar[int] = 0
        title: str
        body: str | None = None
        tags: list[str] = da.field(default_factory=list)
        rank: int = da.field(default=1, validate=lambda v: v > 0, index=True)

        def shout(self) -> str:
            return self.title.upper()

    meta = Post.__meta__
    assert list(meta.fields) == ["title", "body", "tags", "rank"]
    assert meta.collection == "posts" and meta.source_names == ("mem",)
    assert (
        meta.fields["rank"].index and meta.fields["body"].nullable and meta.fields["title"].required
    )
    p = Post.spawn({"title": "hi"}, rank=3)
    assert isinstance(p, Post) and p.shout() == "HI" and p.tags == [] and p.rank == 3
    assert p.attributes == {"title": "hi", "body": None, "tags": [], "rank": 3}
    assert Post.spawn(title="a").tags is not Post.spawn(title="b").tags
    p.rank = 0
    with pytest.raises(da.ValidationError, match="rank"):
        p.validate()
    assert orm.models["Post"] is Post


def test_reserved_and_bad_declarations() -> None:
    orm = make_orm()
    with pytest.raises(da.ConfigError, match="reserved"):

        class A(orm.Model, sources="mem"):
            persist: int = 0

    with pytest.raises(da.ConfigError, match="unsupported attribute type"):

        class B(orm.Model, sources="mem"):
            x: complex

    with pytest.raises(
        da.ConfigError, match=r"derive models from orm\.Model \(or da\.Model with registry=orm\)"
    ):

        class C(da.Model):
            x: int

    with pytest.raises(da.ConfigError, match="unknown field 'nope'"):

        class D(orm.Model, sources={"mem": {"nope": "x"}}):
            x: int

    class E(orm.Model, sources="mem"):
        x: int

    with pytest.raises(da.ConfigError, match="already declared"):

        class E(orm.Model, sources="mem"):  # type: ignore[no-redef]
            x: int


def test_spawn_checks_ids_and_names() -> None:
    orm = make_orm()

    class Note(orm.Model, sources="mem"):
        text: str

    assert Note.spawn(id="my-id", text="t").id == "my-id"
    with pytest.raises(da.ValidationError, match="id"):
        Note.spawn(id=5, text="t")
    with pytest.raises(da.ValidationError, match="nope"):
        Note.spawn(text="t", nope=1)


async def test_dict_form_matches_the_seed() -> None:
    orm = make_orm()
    seen: list[str] = []
    Contact = orm.declare_model(
        "Contact",
        {
            "sources": ["mem"],
            "attributes": {
                "phone": "string",
                "name": {"type": "string", "required": True},
                "age": {"type": "integer", "default": 18, "validate": lambda v: v >= 0},
                "kind": {"type": "string", "enum": ["friend", "work"], "default": "friend"},
                "emails": {"type": "array", "of": "string", "default": []},
                "address": {
                    "type": "object",
                    "attributes": {"city": {"type": "string", "required": True}},
                },
                "seen": "datetime",
                "extra": "any",
            },
            "methods": {"greet": lambda self: f"hi {self.name}"},
            "static_methods": {"kinds": lambda cls: ["friend", "work"]},
            "lifecycle_events": {"after_persist": lambda e, s: seen.append(s)},
        },
    )
    async with orm:
        c = await Contact.insert(
            {"name": "Ann", "address": {"city": "Oslo"}, "seen": "2026-01-01T00:00:00Z"}
        )
        assert c.greet() == "hi Ann" and Contact.kinds() == ["friend", "work"]
        assert c.age == 18 and c.emails == [] and c.seen == datetime(2026, 1, 1, tzinfo=UTC)
        assert seen == ["mem"]
        with pytest.raises(da.ValidationError) as info:
            await Contact.insert({"name": "Bob", "kind": "enemy", "age": -1, "address": {}})
        assert {p for p, _ in info.value.errors} == {"kind", "age", "address.city"}
        found = await Contact.find({"phone": None, "age": {">=": 18}})
        assert found is not None and found.id == c.id


@pytest.mark.parametrize(
    ("description", "message"),
    [
        ({"attributes": {"x": "bogus"}}, "unknown type 'bogus'"),
        ({"attributes": {"x": {"type": "string", "wat": 1}}}, "unknown key"),
        ({"attributes": {"x": 5}}, "a type name or a dict"),
        ({"nonsense": 1}, "unknown key"),
        ({"lifecycle_events": {"before_lunch": print}}, "unknown lifecycle event"),
        ({"methods": {"m": 5}}, "must be callable"),
    ],
)
def test_dict_form_errors(description: dict[str, Any], message: str) -> None:
    with pytest.raises(da.ConfigError, match=message):
        make_orm().declare_model("Bad", {"sources": ["mem"], **description})


async def test_registry_keyword_is_the_typed_spelling_of_orm_model() -> None:
    orm = make_orm()

    class Typed(da.Model, registry=orm, sources=["mem"]):
        title: str

    assert orm.models["Typed"] is Typed and Typed.__meta__.registry is orm
    async with orm:
        t = await Typed.insert({"title": "x"})
        assert (await Typed.find(t.id)) is not None
