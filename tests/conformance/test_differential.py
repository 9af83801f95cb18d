"""Differential run: on every target, seeded random data and queries give the memory answers.

One seeded generator (``Generator``) draws rows and queries from pools of tricky values
(bools vs numbers, ``1`` vs ``1.0``, integers past 2**53, trailing spaces, code-point
order, nested lists, dicts whose keys look like operators, hostile strings, missing
values under ``$not``/``$xor``); the same rows go into the target and into a reference
registry whose ``main`` is the memory adapter, and every query, sort and page must give
the reference's ids in the reference's order, and the same counts.

The Redis adapter's own tests run the same generator over a model whose every field is
indexed (``tests/adapters/test_redis.py``), so its index paths are checked the same way.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import diaspora_async as da
from tests.conftest import DB
from tests.models import declare_standard_models

SEED = 20261204
T0 = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
HOSTILE = "x'; DROP TABLE t; --"
MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Field:
    """One field of the model under test: its kind (which operators apply) and values.

    ``kind`` is one of ``str``, ``num`` (int or float), ``dt``, ``bool``, ``list``
    (of strings), ``dict``, ``any``. ``values`` are what rows hold (``None`` means the
    field is missing); queries draw their operands from them too, plus ``extra``.
    """

    kind: str
    values: Sequence[Any]
    extra: Sequence[Any] = ()
    required: bool = False
    stored: bool = True  # False: queried only (``id``: rows get ``<prefix>NNN``)
    ops: Sequence[str] = ()  # overrides the kind's operators


@dataclass
class Generator:
    """Seeded rows and queries for one model's fields."""

    fields: dict[str, Field]
    seed: int = SEED
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def _value(self, f: Field) -> Any:
        if f.kind == "list":
            return self.rng.choices(list(f.values), k=self.rng.randrange(4))
        value = self.rng.choice(list(f.values))
        if value is None and f.required:
            return self._value(f)
        return value

    def rows(self, n: int, prefix: str = "r") -> list[dict[str, Any]]:
        """``n`` rows with ids ``<prefix>000``...; ``None`` values are left out."""
        out = []
        for i in range(n):
            row: dict[str, Any] = {"id": f"{prefix}{i:03d}"}
            for name, f in self.fields.items():
                if not f.stored:
                    continue
                value = self._value(f)
                if value is not None:
                    row[name] = value
            out.append(row)
        return out

    def _operand(self, f: Field, comparable: bool = False) -> Any:
        if f.kind == "list":
            return self._value(f)
        pool = [v for v in [*f.values, *f.extra] if v is not None]
        if comparable:  # < > take a number or a datetime
            pool = [v for v in pool if isinstance(v, int | float | datetime)]
            pool = [v for v in pool if not isinstance(v, bool)]
        return self.rng.choice(pool)

    def _element(self, f: Field) -> Any:
        pool = [v for v in [*f.values, *f.extra] if v is not None]
        return self.rng.choice(pool)

    def condition(self, name: str) -> dict[str, Any]:
        """One condition on field ``name``, with an operator its kind supports."""
        f, rng = self.fields[name], self.rng
        ops = {
            "str": ["==", "!=", "~", "$in", "$nin", "$contains", "!"],
            "num": ["==", "!=", "~", "$in", "$nin", "<", "<=", ">", ">=", "!", "range"],
            "dt": ["==", "!=", "~", "$in", "<", "<=", ">", ">=", "range"],
            "bool": ["==", "!=", "~", "$in", "!"],
            "list": ["==", "$contains", "~", "!"],
            "dict": ["$equal", "!=", "~", "$in", "$nin"],
            "any": ["$equal", "$contains", "$in", "$nin", ">", "<", "~", "!"],
        }[f.kind]
        op = rng.choice(list(f.ops or ops))
        if op == "~":
            return {name: {"~": rng.random() < 0.5}}
        if op in ("$in", "$nin"):
            pool = [v for v in [*f.values, *f.extra] if v is not None or rng.random() < 0.3]
            return {name: {op: rng.sample(pool, min(len(pool), rng.randrange(1, 4)))}}
        if op == "$contains":
            if f.kind == "str":
                text = self._operand(f)
                start = rng.randrange(len(text) + 1)
                return {name: {"$contains": text[start : start + rng.randrange(3)]}}
            if f.kind == "list":
                return {name: {"$contains": self._element(Field("str", f.values))}}
            return {name: {"$contains": self._element(f)}}
        if op == "!":
            inner = self.condition(name)[name]
            if not isinstance(inner, dict) or f.kind in ("list", "any"):
                inner = {"$equal": inner} if not isinstance(inner, dict) else inner
            return {name: {"!": inner}}
        if op == "range":
            lo, hi = sorted([self._operand(f, True), self._operand(f, True)])
            return {name: {">=": lo, "<": hi}}
        operand = self._operand(f, comparable=op in ("<", "<=", ">", ">="))
        if op == "==":
            return {name: operand}
        return {name: {op: operand}}

    def query(self, depth: int = 0) -> dict[str, Any]:
        """A condition, or ``$and``/``$or``/``$xor``/``$not`` of a few (nested once)."""
        rng = self.rng
        shape = rng.randrange(6) if depth == 0 else 0
        if shape <= 1:
            return self.condition(rng.choice(list(self.fields)))
        if shape == 2:
            return {"$not": self.query(depth + 1)}
        op = {3: "$and", 4: "$or", 5: "$xor"}[shape]
        return {op: [self.query(depth + 1) for _ in range(rng.randrange(2, 4))]}

    def sort(self, keys: Sequence[str]) -> Any:
        """``None``, one key or two, each ascending or descending."""
        rng = self.rng
        picked = rng.sample(list(keys), rng.randrange(3))
        signed = [("-" if rng.random() < 0.5 else "") + k for k in picked]
        if not signed:
            return None
        return signed[0] if len(signed) == 1 else signed

    def page(self) -> tuple[int, int | None]:
        return self.rng.choice([(0, None), (0, None), (3, 5), (0, 1), (7, 20)])


async def check_against_reference(
    model: Any, reference: Any, gen: Generator, sort_keys: Sequence[str], queries: int
) -> None:
    """Every generated query, sort and page: ``model``'s ids equal ``reference``'s, in order."""
    for _ in range(queries):
        query = gen.query()
        sort = gen.sort(sort_keys)
        skip, limit = gen.page()
        ours = await model.find_many(query, sort=sort, skip=skip, limit=limit)
        ref = await reference.find_many(query, sort=sort, skip=skip, limit=limit)
        assert [e.id for e in ours] == [e.id for e in ref], (query, sort, skip, limit)
        assert await model.count(query) == await reference.count(query), query
    stored = {e.id: e.to_dict() for e in await model.find_many()}
    expected = {e.id: e.to_dict() for e in await reference.find_many()}
    assert stored == expected


STRINGS = ["a", "a ", "A", "ä", "😀", "", "B", "b", "ab", "é", "a b", HOSTILE, "`q`", '"d"', "%_"]
NUMBERS = [-5, 0, 1, 2, 3, 7, 10, 2**53, 2**53 + 1, 2**60]
ANY_VALUES: list[Any] = [
    None, 1, True, "1", 1.0, 5, "", "xyz", ".*", [1.0, 2], [[1, 2]], [[1, 2], 3], [True], [1],
    [1, True, "x", [1, 2], {"z": 1}], {"k": "v"}, {"a": 1}, {"a.b": 1}, {"b": 1, "a": 2},
    {"$where": "sleep(1000)"}, {"$gt": ""}, {"$ne": None}, {"x": {"$in": [1]}},
    {"$expr": {"$eq": [1, 1]}}, [{"$gt": ""}, 1],
]  # fmt: skip

ARTICLE_FIELDS = {
    "title": Field("str", STRINGS, extra=["zz"], required=True),
    "views": Field("num", NUMBERS, extra=[-4]),
    "score": Field("num", [None, -0.5, 0.0, 1.0, 1.5, 2.0, 3.25, 1e300], extra=[0, 2]),
    "draft": Field("bool", [True, False]),
    "tags": Field("list", ["a", "b", "A", "a b", "é", "1", "true", HOSTILE, "`q`", '"d"']),
    "meta": Field(
        "dict",
        [
            None,
            {},
            {"k": 1},
            {"k": 1.0, "j": [1]},
            {"k": [True, 1]},
            {"k": "1"},
            {"k": True},
            {"$gt": ""},
            {"$where": "sleep(1000)"},
            {"a.b": 1},
            {"b": 1, "a": 2},
            {"x": {"$in": [1]}},
        ],
        extra=[{"a": 2, "b": 1}],
    ),
    "published": Field(
        "dt",
        [
            None,
            T0,
            T0 + MS,
            T0 - MS,
            T0 + timedelta(days=400),
            datetime(1999, 12, 31, tzinfo=UTC),
        ],
        extra=[T0 + 2 * MS],
    ),
    "status": Field("str", ["draft", "live", "gone"]),
}

DOC_FIELDS = {
    "name": Field("str", STRINGS, required=True),
    "data": Field("any", ANY_VALUES, extra=[2, "x"]),
    "rank": Field("num", [None, *NUMBERS], extra=[-4]),
}


@pytest.fixture
async def reference() -> AsyncIterator[dict[str, Any]]:
    """The standard models on a registry whose ``main`` is the memory adapter."""
    orm = da.Diaspora()
    orm.create_data_source("main", "memory")
    orm.create_data_source("aux", "memory")
    models = declare_standard_models(orm)
    async with orm:
        yield models


async def test_seeded_queries_give_the_memory_answers(db: DB, reference: dict[str, Any]) -> None:
    for name, fields, n, sort_keys in (
        ("Article", ARTICLE_FIELDS, 60, ["title", "views", "score", "draft", "published"]),
        ("Doc", DOC_FIELDS, 50, ["name", "rank"]),
    ):
        gen = Generator(fields)
        rows = gen.rows(n, prefix=name[0].lower())
        await db.models[name].insert_many(rows)
        await reference[name].insert_many(rows)
        await check_against_reference(db.models[name], reference[name], gen, sort_keys, 120)
