"""``diaspora_async.wire``: canonical AST -> JSON query -> the same AST, values, and error mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

import diaspora_async as da
from diaspora_async import wire
from diaspora_async.query.ast import And, Equal, Exists, Not, Or, SortKey, Xor
from diaspora_async.query.parse import parse_where


@pytest.fixture(scope="module")
def fields() -> Any:
    orm = da.Diaspora()

    class Thing(orm.Model, sources=["m"]):
        name: str
        n: int = 0
        x: float | None = None
        ok: bool = False
        tags: list[str] = da.field(default_factory=list)
        stamps: list[datetime] = da.field(default_factory=list)
        meta: dict[str, Any] | None = None
        at: datetime | None = None
        blob: Any = None

    return Thing.__meta__.fields


WHEN = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)

QUERIES: list[Any] = [
    {"name": "a"},
    {"name": {"==": "a"}},
    {"name": {"!=": "a"}},
    {"name": None},
    {"name": {"!=": None}},
    {"x": {"~": True}},
    {"x": {"$exists": False}},
    {"n": {"<": 3, ">=": -1}},
    {"x": {"<=": 2.5, ">": 1}},
    {"at": {">": WHEN}},
    {"at": {"<=": "2024-05-06T09:08:09.123+02:00"}},
    {"at": WHEN},
    {"n": {"$in": [1, 2, 3]}},
    {"n": {"$in": [1, None]}},
    {"n": {"$in": []}},
    {"n": {"$nin": [1, None]}},
    {"tags": {"$contains": "x"}},
    {"stamps": {"$contains": WHEN}},
    {"name": {"$contains": "sub"}},
    {"tags": ["a", "b"]},
    {"meta": {"$equal": {"$weird": 1, "k": [1, {"a": None}]}}},
    {"meta": {"k": "v"}},
    {"blob": {"$in": [1, "1", [1], {"a": 1}, True]}},
    {"ok": True, "n": 1},
    {"$or": [{"n": 1}, {"name": "b"}]},
    {"||": [{"n": 1}, {"$and": [{"name": "b"}, {"ok": False}]}]},
    {"^^": [{"n": 1}, {"name": "b"}, {"ok": True}]},
    {"$xor": [{"n": 1}]},
    {"!": {"n": 1}},
    {"$not": {"$or": [{"n": 1}, {"x": None}]}},
    {"n": {"$or": [1, {">": 5}]}},
    {"n": {"$not": {"$in": [1, 2]}}},
    {"n": {"$xor": [{">": 1}, {"<": 5}]}},
    {"id": {"$in": ["a", "b"]}},
]


@pytest.mark.parametrize("query", QUERIES, ids=[str(q) for q in QUERIES])
def test_every_query_round_trips_through_the_json_form(fields: Any, query: Any) -> None:
    node = parse_where(query, fields, "Thing")
    sent = wire.loads(wire.dumps(wire.where_to_json(node)))  # what crosses the wire
    assert parse_where(sent, fields, "Thing") == node


def test_nodes_the_parser_never_builds_still_keep_their_meaning(fields: Any) -> None:
    everything, nothing = And(()), Or(())
    assert parse_where(wire.where_to_json(everything), fields) is None
    back = parse_where(wire.where_to_json(nothing), fields)
    assert back == Not(And(()))
    assert parse_where(wire.where_to_json(Xor(())), fields) == Not(And(()))
    assert wire.where_to_json(None) == {}


def test_remapped_names_are_used_on_the_wire() -> None:
    node = And((Equal("title", "a", "str"), Exists("views", True, "int")))
    stored = {"id": "id", "title": "heading", "views": "hits"}
    assert wire.where_to_json(node, stored) == {
        "$and": [{"heading": {"$equal": "a"}}, {"hits": {"$exists": True}}]
    }
    keys = (SortKey("views", True, "int"), SortKey("id", False, "str"))
    assert wire.sort_param(keys, stored) == "-hits,id"


def test_datetimes_are_iso_utc_milliseconds_with_z() -> None:
    paris = timezone(timedelta(hours=2))
    value = datetime(2024, 1, 1, 12, 0, 0, 999999, tzinfo=paris)
    assert wire.dumps({"at": value}) == b'{"at":"2024-01-01T10:00:00.999Z"}'
    assert wire.dumps(datetime(2024, 1, 1)) == b'"2024-01-01T00:00:00.000Z"'  # naive = UTC
    assert wire.dumps((1, 2)) == b"[1,2]"
    with pytest.raises(ValueError, match="Out of range"):
        wire.dumps(float("nan"))
    with pytest.raises(TypeError, match="cannot encode"):
        wire.dumps(object())
    with pytest.raises(ValueError, match="Infinity"):
        wire.loads("Infinity")


def test_find_params_leave_defaults_out() -> None:
    assert wire.find_params(None) == {}
    assert wire.find_params({}, "", 0, None) == {}
    assert wire.find_params({"a": 1}, "-a,id", 5, 0) == {
        "where": '{"a":1}', "sort": "-a,id", "skip": "5", "limit": "0"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("error", "status", "type_"),
    [
        (da.ValidationError("M", [("a.0", "bad"), ("b", "worse")]), 422, "ValidationError"),
        (da.QueryError("no field 'x'"), 400, "QueryError"),
        (da.UnsupportedQuery("cannot"), 400, "UnsupportedQuery"),
        (da.IntegrityError("main", "duplicate id 'x'"), 409, "IntegrityError"),
        (da.ConnectionLost("main", "down"), 503, "DataSourceError"),
        (wire.Unauthorized("who?"), 401, "Unauthorized"),
        (wire.Forbidden(), 403, "Forbidden"),
        (wire.NotFound("no"), 404, "NotFound"),
        (wire.PayloadTooLarge(), 413, "PayloadTooLarge"),
        (KeyError("boom"), 500, "InternalError"),
    ],
)
def test_errors_map_to_status_and_back(error: Exception, status: int, type_: str) -> None:
    got_status, body = wire.encode_error(error)
    assert got_status == status and body["error"]["type"] == type_
    back = wire.decode_error("api", "M", got_status, wire.dumps(body))
    expected: dict[int, type[Exception]] = {
        422: da.ValidationError, 400: da.QueryError, 409: da.IntegrityError, 404: da.ConfigError,
    }  # fmt: skip
    assert isinstance(back, expected.get(status, wire.WireError))
    if isinstance(error, da.ValidationError):
        assert isinstance(back, da.ValidationError) and back.errors == error.errors
    if isinstance(back, da.IntegrityError):
        assert str(back) == "[api] duplicate id 'x'"
    if isinstance(back, wire.WireError):
        assert (back.status, back.type, back.source) == (status, type_, "api")


def test_a_body_that_is_not_ours_still_maps() -> None:
    back = wire.decode_error("api", "M", 502, b"<html>bad gateway</html>")
    assert isinstance(back, wire.WireError) and back.status == 502
    assert "bad gateway" in str(back)
