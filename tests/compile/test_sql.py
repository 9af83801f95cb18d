"""Snapshots of the SQL the shared compiler emits, for the SQLite and MySQL dialects.

Each case spells out the expected WHERE text and bound parameters for both dialects, so a
change to the compiler shows up here as a readable diff. No database is needed: the
adapters build plans without I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import diaspora_async as da
from diaspora_async.adapters.sql.mysql import MySQLAdapter
from diaspora_async.adapters.sql.plan import TablePlan
from diaspora_async.adapters.sql.sqlite import SQLiteAdapter
from diaspora_async.adapters.sql.upsert import WritePlan
from diaspora_async.errors import QueryError
from diaspora_async.query.ast import Equal, Query, SortKey
from diaspora_async.query.parse import parse_query, parse_where

WHEN = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def writes(plan: TablePlan) -> WritePlan:
    """The table's guarded upserts, as the adapter builds them."""
    return WritePlan(plan, plan.alias)


@pytest.fixture(scope="module")
def model() -> Any:
    orm = da.Diaspora()
    orm.create_data_source("m", "memory")

    class T(orm.Model, sources={"m": {"n": "n`col"}}, collection="t"):
        s: str | None = None
        n: int | None = None
        f: float | None = None
        b: bool | None = None
        d: datetime | None = None
        tags: list[str] = da.field(default_factory=list)
        o: dict[str, Any] | None = None
        a: Any = None
        k: str = da.field(default="x", index=True)
        u: str | None = da.field(default=None, unique=True)

    return T


@pytest.fixture(scope="module")
def plans(model: Any) -> dict[str, TablePlan]:
    schema = model.__meta__.schema_for("m")
    sqlite = SQLiteAdapter("s", {})
    mysql = MySQLAdapter("m", {"url": "mysql://root@127.0.0.1/test"})
    return {"sqlite": sqlite.plan(schema), "mysql": mysql.plan(schema)}


SQ_EACH = "EXISTS (SELECT 1 FROM json_each({c}) WHERE {t})"
MY_EACH = (
    "EXISTS (SELECT 1 FROM JSON_TABLE({c}, '$[*]' COLUMNS (v JSON PATH '$')) AS jt WHERE jt.v = %s)"
)
MY_NUM = "JSON_TYPE(`a`) IN ('INTEGER', 'UNSIGNED INTEGER', 'DOUBLE', 'DECIMAL')"

# (query, (sqlite sql, sqlite params), (mysql sql, mysql params))
CASES: list[tuple[dict[str, Any], tuple[str, list[Any]], tuple[str, list[Any]]]] = [
    ({"s": "x"}, ('"s" = ?', ["x"]), ("`s` = %s", ["x"])),
    ({"s": {"==": "x"}}, ('"s" = ?', ["x"]), ("`s` = %s", ["x"])),
    ({"s": {"!=": "x"}}, ('"s" <> ?', ["x"]), ("`s` <> %s", ["x"])),
    ({"s": None}, ('"s" IS NULL', []), ("`s` IS NULL", [])),
    ({"s": {"~": True}}, ('"s" IS NOT NULL', []), ("`s` IS NOT NULL", [])),
    ({"s": {"$exists": False}}, ('"s" IS NULL', []), ("`s` IS NULL", [])),
    ({"n": {"<": 5}}, ('"n`col" < ?', [5]), ("`n``col` < %s", [5])),
    ({"n": {"<=": 5}}, ('"n`col" <= ?', [5]), ("`n``col` <= %s", [5])),
    ({"f": {">": 1.5}}, ('"f" > ?', [1.5]), ("`f` > %s", [1.5])),
    ({"f": {">=": 0}}, ('"f" >= ?', [0.0]), ("`f` >= %s", [0.0])),
    (
        {"d": {">": WHEN}},
        ('"d" > ?', ["2024-01-02 03:04:05.678000"]),
        ("`d` > %s", [datetime(2024, 1, 2, 3, 4, 5, 678000)]),
    ),
    ({"b": True}, ('"b" = ?', [True]), ("`b` = %s", [True])),
    ({"n": {"$in": [1, 2]}}, ('"n`col" IN (?, ?)', [1, 2]), ("`n``col` IN (%s, %s)", [1, 2])),
    (
        {"s": {"$in": ["a", None]}},
        ('("s" IN (?) OR "s" IS NULL)', ["a"]),
        ("(`s` IN (%s) OR `s` IS NULL)", ["a"]),
    ),
    ({"n": {"$nin": [1]}}, ('"n`col" NOT IN (?)', [1]), ("`n``col` NOT IN (%s)", [1])),
    ({"n": {"$nin": []}}, ('"n`col" IS NOT NULL', []), ("`n``col` IS NOT NULL", [])),
    (
        {"s": {"$contains": "ab"}},
        ('instr("s", ?) > 0', ["ab"]),
        ("LOCATE(CAST(%s AS BINARY), CAST(`s` AS BINARY)) > 0", ["ab"]),
    ),
    (
        {"tags": {"$contains": "a"}},
        (SQ_EACH.format(c='"tags"', t="type = 'text' AND value = ?"), ["a"]),
        (MY_EACH.format(c="`tags`"), ['"a"']),
    ),
    (
        {"tags": {"$contains": "a\x00"}},
        (SQ_EACH.format(c='"tags"', t="type = 'text' AND \"tags\" -> fullkey = ?"), ['"a\\u0000"']),
        (MY_EACH.format(c="`tags`"), ['"a\\u0000"']),
    ),
    ({"tags": ["b", "a"]}, ('"tags" = ?', ['["b","a"]']), ("`tags` = %s", ['["b","a"]'])),
    (
        {"o": {"b": 1.0, "a": [True]}},
        ('"o" = ?', ['{"a":[true],"b":1}']),
        ("`o` = %s", ['{"a":[true],"b":1}']),
    ),
    (
        {"o": {"$equal": {"$gt": ""}}},
        ('"o" = ?', ['{"$gt":""}']),
        ("`o` = %s", ['{"$gt":""}']),
    ),
    ({"a": [1, {"z": 1}]}, ('"a" = ?', ['[1,{"z":1}]']), ("`a` = %s", ['[1,{"z":1}]'])),
    ({"a": "1"}, ('"a" = ?', ['"1"']), ("`a` = %s", ['"1"'])),
    (
        {"a": {">": 2}},
        ("(json_type(\"a\") IN ('integer', 'real') AND json_extract(\"a\", '$') > ?)", [2]),
        (f"({MY_NUM} AND CAST(`a` AS DOUBLE) > %s)", [2]),
    ),
    ({"a": {"<": WHEN}}, ("0", []), ("0", [])),
    (
        {"a": {"$contains": True}},
        (
            "((json_type(\"a\") IN ('array') AND " + SQ_EACH.format(c='"a"', t="type = ?") + "))",
            ["true"],
        ),
        ("((JSON_TYPE(`a`) IN ('ARRAY') AND " + MY_EACH.format(c="`a`") + "))", ["true"]),
    ),
    (
        {"a": {"$contains": 1}},
        (
            "((json_type(\"a\") IN ('array') AND "
            + SQ_EACH.format(c='"a"', t="type IN ('integer', 'real') AND value = ?")
            + "))",
            [1],
        ),
        ("((JSON_TYPE(`a`) IN ('ARRAY') AND " + MY_EACH.format(c="`a`") + "))", ["1"]),
    ),
    (
        {"a": {"$contains": [1, 2]}},
        (
            "((json_type(\"a\") IN ('array') AND "
            + SQ_EACH.format(c='"a"', t="type = ? AND value = ?")
            + "))",
            ["array", "[1,2]"],
        ),
        ("((JSON_TYPE(`a`) IN ('ARRAY') AND " + MY_EACH.format(c="`a`") + "))", ["[1,2]"]),
    ),
    (
        {"a": {"$contains": "x"}},
        (
            "((json_type(\"a\") IN ('array') AND "
            + SQ_EACH.format(c='"a"', t="type = 'text' AND value = ?")
            + ") OR (json_type(\"a\") IN ('text') AND instr(json_extract(\"a\", '$'), ?) > 0))",
            ["x", "x"],
        ),
        (
            "((JSON_TYPE(`a`) IN ('ARRAY') AND "
            + MY_EACH.format(c="`a`")
            + ") OR (JSON_TYPE(`a`) IN ('STRING') AND "
            "LOCATE(CAST(%s AS BINARY), CAST(JSON_UNQUOTE(`a`) AS BINARY)) > 0))",
            ['"x"', "x"],
        ),
    ),
    (
        {"s": "x", "n": 1},
        ('("s" = ? AND "n`col" = ?)', ["x", 1]),
        ("(`s` = %s AND `n``col` = %s)", ["x", 1]),
    ),
    (
        {"$or": [{"s": "x"}, {"n": None}]},
        ('("s" = ? OR "n`col" IS NULL)', ["x"]),
        ("(`s` = %s OR `n``col` IS NULL)", ["x"]),
    ),
    (
        {"$not": {"s": "x"}},
        ('NOT (COALESCE("s" = ?, 0))', ["x"]),
        ("NOT (COALESCE(`s` = %s, 0))", ["x"]),
    ),
    (
        {"$not": {"$or": [{"s": "x"}, {"n": None}]}},
        ('NOT ((COALESCE("s" = ?, 0) OR "n`col" IS NULL))', ["x"]),
        ("NOT ((COALESCE(`s` = %s, 0) OR `n``col` IS NULL))", ["x"]),
    ),
    (
        {"$xor": [{"s": "x"}, {"n": 1}]},
        ('((COALESCE("s" = ?, 0)) + (COALESCE("n`col" = ?, 0))) = 1', ["x", 1]),
        ("((COALESCE(`s` = %s, 0)) + (COALESCE(`n``col` = %s, 0))) = 1", ["x", 1]),
    ),
    (
        {"s": {"$and": [{"!=": "a"}, {"!": "b"}]}},
        ('("s" <> ? AND NOT (COALESCE("s" = ?, 0)))', ["a", "b"]),
        ("(`s` <> %s AND NOT (COALESCE(`s` = %s, 0)))", ["a", "b"]),
    ),
]


@pytest.mark.parametrize(("query", "sqlite", "mysql"), CASES, ids=[repr(c[0]) for c in CASES])
def test_where(
    model: Any,
    plans: dict[str, TablePlan],
    query: dict[str, Any],
    sqlite: tuple[str, list[Any]],
    mysql: tuple[str, list[Any]],
) -> None:
    node = parse_where(query, model.__meta__.fields, "T")
    # every condition is on live rows: tombstones (``_del`` set) never match
    assert plans["sqlite"].where(node) == (f' WHERE {sqlite[0]} AND "_del" IS NULL', sqlite[1])
    assert plans["mysql"].where(node) == (f" WHERE {mysql[0]} AND `_del` IS NULL", mysql[1])


def test_find_sort_skip_limit(model: Any, plans: dict[str, TablePlan]) -> None:
    fields = model.__meta__.fields
    sq_cols = '"id", "s", "n`col", "f", "b", "d", "tags", "o", "a", "k", "u", "_rev"'
    my_cols = "`id`, `s`, `n``col`, `f`, `b`, `d`, `tags`, `o`, `a`, `k`, `u`, `_rev`"
    query = parse_query({"s": "x"}, fields, "T", sort=["-n", "s"], skip=2, limit=10)
    assert plans["sqlite"].find(query) == (
        "SELECT " + sq_cols + ' FROM "t" WHERE "s" = ? AND "_del" IS NULL '
        'ORDER BY "n`col" DESC, "s" ASC, "id" ASC LIMIT ? OFFSET ?',
        ["x", 10, 2],
    )
    assert plans["mysql"].find(query) == (
        "SELECT " + my_cols + " FROM `t` WHERE `s` = %s AND `_del` IS NULL "
        "ORDER BY `n``col` DESC, `s` ASC, `id` ASC LIMIT %s OFFSET %s",
        ["x", 10, 2],
    )
    skip_only = Query(None, parse_query(None, fields, sort="d").sort, 3, None)
    assert plans["sqlite"].find(skip_only) == (
        "SELECT " + sq_cols + ' FROM "t" WHERE "_del" IS NULL '
        'ORDER BY "d" ASC, "id" ASC LIMIT -1 OFFSET ?',
        [3],
    )
    assert plans["mysql"].find(skip_only) == (
        "SELECT " + my_cols + " FROM `t` WHERE `_del` IS NULL "
        "ORDER BY `d` ASC, `id` ASC LIMIT 18446744073709551615 OFFSET %s",
        [3],
    )
    no_options = Query(None, (), 0, None)
    assert plans["sqlite"].find(no_options) == (
        "SELECT " + sq_cols + ' FROM "t" WHERE "_del" IS NULL',
        [],
    )


def test_count_delete_get(plans: dict[str, TablePlan]) -> None:
    where = Equal("s", "x", "str")
    assert plans["sqlite"].count(where) == (
        'SELECT COUNT(*) FROM "t" WHERE "s" = ? AND "_del" IS NULL',
        ["x"],
    )
    assert plans["mysql"].count(None) == ("SELECT COUNT(*) FROM `t` WHERE `_del` IS NULL", [])
    assert plans["mysql"].delete_where(where) == (
        "DELETE FROM `t` WHERE `s` = %s AND `_del` IS NULL",
        ["x"],
    )
    # live rows first (their count is the result), then any tombstones of those ids
    assert plans["sqlite"].delete(["a", "b", "a"]) == (
        [
            ('DELETE FROM "t" WHERE "id" IN (?, ?) AND "_del" IS NULL', ["a", "b"]),
            ('DELETE FROM "t" WHERE "id" IN (?, ?) AND "_del" IS NOT NULL', ["a", "b"]),
        ],
        1,
    )
    ((sql, params),) = plans["mysql"].get(["a"])
    assert sql.endswith(" FROM `t` WHERE `id` = %s AND `_del` IS NULL") and params == ["a"]


def test_update_groups_by_changes_object(plans: dict[str, TablePlan]) -> None:
    shared = {"n": 1, "s": None}
    other = {"d": WHEN}
    stmts = plans["mysql"].update([("a", shared), ("b", other), ("c", shared)])
    assert stmts == [
        (
            "UPDATE `t` SET `n``col` = %s, `s` = %s WHERE `id` IN (%s, %s) AND `_del` IS NULL",
            [1, None, "a", "c"],
        ),
        (
            "UPDATE `t` SET `d` = %s WHERE `id` = %s AND `_del` IS NULL",
            [datetime(2024, 1, 2, 3, 4, 5, 678000), "b"],
        ),
    ]
    ((sql, params),) = plans["sqlite"].update([("a", {"tags": ["x"], "o": {"b": 2, "a": 1}})])
    assert sql == 'UPDATE "t" SET "tags" = ?, "o" = ? WHERE "id" = ? AND "_del" IS NULL'
    assert params == ['["x"]', '{"a":1,"b":2}', "a"]
    with pytest.raises(QueryError):
        plans["sqlite"].update([("a", {"x'; DROP TABLE t; --": 1})])


def test_insert_is_multi_row_and_chunked(plans: dict[str, TablePlan]) -> None:
    rows = [{"id": f"r{i}", "s": "x", "b": True, "d": WHEN} for i in range(3)]
    ((sql, params),) = plans["sqlite"].insert(rows)
    assert sql.startswith('INSERT INTO "t" ("id", "s", "n`col", ')
    assert sql.count("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)") == 3
    assert params[:6] == ["r0", "x", None, None, True, "2024-01-02 03:04:05.678000"]
    many = [{"id": f"r{i}"} for i in range(7000)]  # 77,000 parameters > 32,766
    assert [len(p) // 11 for _, p in plans["sqlite"].insert(many)] == [2978, 2978, 1044]
    big = [{"id": f"r{i}", "s": "x" * 1000} for i in range(10)]
    assert [len(p) // 11 for _, p in plans["mysql"].insert(big, max_chars=3000)] == [2] * 5


def test_ddl(plans: dict[str, TablePlan]) -> None:
    assert plans["sqlite"].ddl == [
        'CREATE TABLE IF NOT EXISTS "t" ("id" TEXT NOT NULL PRIMARY KEY, "s" TEXT, '
        '"n`col" INTEGER, "f" REAL, "b" INTEGER, "d" TEXT, "tags" TEXT, "o" TEXT, "a" TEXT, '
        '"k" TEXT, "u" TEXT, "_rev" TEXT, "_del" TEXT) WITHOUT ROWID',
        'CREATE INDEX IF NOT EXISTS "ix_t_k" ON "t" ("k")',
        'CREATE UNIQUE INDEX IF NOT EXISTS "ux_t_u" ON "t" ("u")',
    ]
    assert plans["mysql"].ddl == [
        "CREATE TABLE IF NOT EXISTS `t` (`id` VARCHAR(64) NOT NULL PRIMARY KEY, `s` LONGTEXT, "
        "`n``col` BIGINT, `f` DOUBLE, `b` BOOLEAN, `d` DATETIME(6), `tags` JSON, `o` JSON, "
        "`a` JSON, `k` VARCHAR(768), `u` VARCHAR(768), "
        "`_rev` CHAR(24) CHARACTER SET ascii COLLATE ascii_bin, `_del` DATETIME(6), "
        "KEY `ix_t_k` (`k`), "
        "UNIQUE KEY `ux_t_u` (`u`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 "
        "COLLATE=utf8mb4_nopad_bin"
    ]
    assert plans["mysql"].drop() == "DROP TABLE IF EXISTS `t`"


def test_unknown_field_is_refused_before_io(plans: dict[str, TablePlan]) -> None:
    hostile = "x'; DROP TABLE t; --"
    for plan in plans.values():
        with pytest.raises(QueryError):
            plan.where(Equal(hostile, 1, "int"))
        with pytest.raises(QueryError):
            plan.order_by((SortKey(hostile, False, "str"),))


def _small_plans() -> dict[str, TablePlan]:
    orm = da.Diaspora()
    orm.create_data_source("m", "memory")

    class W(orm.Model, sources=["m"], collection="w"):
        s: str | None = None
        u: str | None = da.field(default=None, unique=True)

    schema = W.__meta__.schema_for("m")
    mysql8 = MySQLAdapter("m", {"url": "mysql://root@127.0.0.1/test"})
    mysql8._mariadb, mysql8._version = False, "8.0.35"  # what connect() finds on MySQL 8
    return {
        "sqlite": SQLiteAdapter("s", {}).plan(schema),
        "mariadb": MySQLAdapter("m", {"url": "mysql://root@127.0.0.1/test"}).plan(schema),
        "mysql8": mysql8.plan(schema),
    }


def test_write_is_one_guarded_upsert() -> None:
    plans = _small_plans()
    rev = "0" * 24
    live = {"id": "a", "_rev": rev, "s": "x", "u": None}
    tomb = {"id": "b", "_rev": rev, "_del": WHEN}
    ((sql, params),) = writes(plans["sqlite"]).write([live, tomb], None)
    assert sql == (
        'INSERT INTO "w" ("id", "s", "u", "_rev", "_del") VALUES (?, ?, ?, ?, ?), '
        '(?, ?, ?, ?, ?) ON CONFLICT ("id") DO UPDATE SET "s" = excluded."s", '
        '"u" = excluded."u", "_del" = excluded."_del", "_rev" = excluded."_rev" '
        """WHERE COALESCE("w"."_rev", '') < excluded."_rev\""""
    )
    assert params == ["a", "x", None, rev, None, "b", None, None, rev, "2024-01-02 03:04:05.678000"]
    # live rows only: the deletion time is the literal NULL
    ((sql, params),) = writes(plans["sqlite"]).write([live], None)
    assert "VALUES (?, ?, ?, ?, NULL) ON CONFLICT" in sql and params == ["a", "x", None, rev]
    guard = "IF(COALESCE(`_rev`, '') < VALUES(`_rev`), 2, 1)"
    flag = f"IF(LAST_INSERT_ID((LAST_INSERT_ID() & 1) | {guard}), `id`, `id`)"
    ((sql, _),) = writes(plans["mariadb"]).write([live, live], None)
    assert sql == (
        "INSERT INTO `w` (`id`, `s`, `u`, `_rev`, `_del`) VALUES "
        "(IF(LAST_INSERT_ID(0), NULL, %s), %s, %s, %s, NULL), (%s, %s, %s, %s, NULL) "
        "ON DUPLICATE KEY UPDATE `id` = "
        f"IF(`id` = VALUES(`id`), {flag}, 18446744073709551615 + LENGTH(`id`)), "
        "`s` = IF(LAST_INSERT_ID() & 2, VALUES(`s`), `s`), "
        "`u` = IF(LAST_INSERT_ID() & 2, VALUES(`u`), `u`), "
        "`_del` = IF(LAST_INSERT_ID() & 2, VALUES(`_del`), `_del`), "
        "`_rev` = IF(LAST_INSERT_ID() & 2, VALUES(`_rev`), `_rev`)"
    )
    ((sql, _),) = writes(plans["mysql8"]).write([live], None)
    assert "NULL) AS `_new` ON DUPLICATE KEY UPDATE `id` = IF(`id` = `_new`.`id`, " in sql
    assert "VALUES(" not in sql.split(" ON ")[1]


def test_expectations_are_one_statement_per_row() -> None:
    plans = _small_plans()
    rev, old = "1" * 24, "0" * 24
    rows = [{"id": "a", "_rev": rev, "s": "x"}, {"id": "b", "_rev": rev, "_del": WHEN}]
    (upsert, is_upsert), (update, is_update) = writes(plans["sqlite"]).expecting(rows, [None, old])
    assert is_upsert and not is_update
    assert upsert[0].endswith(
        """WHERE "w"."_del" IS NOT NULL AND COALESCE("w"."_rev", '') < excluded."_rev\""""
    )
    assert update == (
        'UPDATE "w" SET "s" = ?, "u" = ?, "_rev" = ?, "_del" = ? WHERE "id" = ? '
        """AND "_del" IS NULL AND COALESCE("_rev", '') = ?""",
        [None, None, rev, "2024-01-02 03:04:05.678000", "b", old],
    )


def test_a_patch_updates_the_changed_fields_of_the_base_revision_only() -> None:
    plans = _small_plans()
    base, new = "0" * 24, "1" * 24
    sql, params = plans["sqlite"].patch_one("a", {"s": "y"}, new, base)
    assert sql == (
        'UPDATE "w" SET "s" = ?, "_rev" = ? WHERE "id" = ? AND "_del" IS NULL '
        """AND COALESCE("_rev", '') = ?"""
    )
    assert params == ["y", new, "a", base]
    sql, _ = plans["mariadb"].patch_one("a", {"s": "y"}, new, "")
    assert sql.startswith("UPDATE `w` SET `s` = %s, `_rev` = %s WHERE `id` = %s")
