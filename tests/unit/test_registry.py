"""The registry: sources by name, adapters by label, lazy drivers, connect/close."""

from __future__ import annotations

import subprocess
import sys

import pytest

import diaspora_async as da
from diaspora_async import adapters


def test_import_needs_no_driver() -> None:
    code = (
        "import sys, diaspora_async as da\n"
        "orm = da.Diaspora(); orm.create_data_source('m', 'memory')\n"
        "bad = [m for m in ('aiosqlite', 'aiomysql', 'asyncmy', 'redis', 'pymongo', 'motor',"
        " 'httpx', 'starlette') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_adapter_subpackages_need_no_driver() -> None:
    # The sql/, redis/ and mongo/ packages (and their driver-free modules) import with
    # every driver missing; only resolve() of a label loads the driver module.
    code = (
        "import sys\n"
        "for m in ('aiosqlite', 'aiomysql', 'asyncmy', 'redis', 'pymongo', 'motor'):\n"
        "    sys.modules[m] = None\n"
        "import diaspora_async.adapters.sql, diaspora_async.adapters.sql.plan\n"
        "import diaspora_async.adapters.redis, diaspora_async.adapters.redis.layout\n"
        "import diaspora_async.adapters.mongo, diaspora_async.adapters.mongo.filter\n"
        "from diaspora_async import ConfigError\n"
        "from diaspora_async.adapters import resolve\n"
        "for label, extra in (('sqlite', 'sqlite'), ('redis', 'redis'), ('mongo', 'mongo')):\n"
        "    try:\n"
        "        resolve(label)\n"
        "    except ConfigError as exc:\n"
        '        assert f"diaspora_async[{extra}]" in str(exc), exc\n'
        "    else:\n"
        "        raise AssertionError(label)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_server_wire_is_the_root_wire_module() -> None:
    import diaspora_async.server.wire as old_path

    from diaspora_async import wire
    from diaspora_async.server import wire as attribute

    assert old_path is wire and attribute is wire


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        adapters.BUILTIN, "fancy", ("tests.unit._needs_missing_driver", "X", "fancy")
    )
    with pytest.raises(da.ConfigError, match=r"pip install 'diaspora_async\[fancy\]'"):
        da.Diaspora().create_data_source("f", "fancy")


def test_config_errors() -> None:
    orm = da.Diaspora()
    with pytest.raises(da.ConfigError, match="unknown adapter 'nope'"):
        orm.create_data_source("x", "nope")
    with pytest.raises(da.ConfigError, match="unknown option"):
        orm.create_data_source("x", "memory", colour="blue")
    orm.create_data_source("x", "memory")
    with pytest.raises(da.ConfigError, match="already exists"):
        orm.create_data_source("x", "memory")
    with pytest.raises(da.ConfigError, match="must subclass"):
        orm.register_adapter("thing", dict)  # type: ignore[arg-type]
    assert list(orm.data_sources) == ["x"]


async def test_unknown_source_fails_at_connect_naming_model_and_source() -> None:
    orm = da.Diaspora()
    orm.create_data_source("main", "memory")

    class Post(orm.Model, sources=["main", "cahce"]):
        title: str

    with pytest.raises(da.UnknownDataSource, match=r"model Post uses data source 'cahce'"):
        await orm.connect()


async def test_use_before_connect_is_a_clear_error() -> None:
    orm = da.Diaspora()
    orm.create_data_source("main", "memory")

    class Post(orm.Model, sources="main"):
        title: str

    with pytest.raises(da.ConfigError, match="not connected"):
        await Post.insert({"title": "t"})
    async with orm:
        await Post.insert({"title": "t"})
    with pytest.raises(da.ConfigError, match="not connected"):
        await Post.count()


async def test_query_errors_come_before_any_io() -> None:
    orm = da.Diaspora()  # never connected: any I/O would raise ConfigError instead
    orm.create_data_source("main", "memory")

    class Post(orm.Model, sources="main"):
        views: int = 0

    with pytest.raises(da.QueryError):
        await Post.find_many({"views": {"<": "x"}})
    with pytest.raises(da.QueryError):
        await Post.delete_many({})
    with pytest.raises(da.ValidationError):
        await Post.update_many({"views": 1}, {"views": "x"})
    with pytest.raises(da.ValidationError):
        await Post.insert({"views": "x"}, source="main")


async def test_stats_shape() -> None:
    orm = da.Diaspora()
    ds = orm.create_data_source("main", "memory")
    assert {"size", "in_use", "idle", "waiting"} <= ds.stats().keys()
    assert ds.capabilities.native_query and not ds.capabilities.persistent
