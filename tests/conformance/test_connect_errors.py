"""A store that refuses the credentials or the database fails fast and says why.

Each case connects through a loopback TCP proxy to the real service and counts the
connections it accepted: a refusal is ``AccessDenied`` (not ``ConnectionLost``) after
exactly one connection attempt, since retrying cannot help.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

import diaspora_async as da
from tests.faults.proxy import FaultProxy as Proxy
from tests.targets.mysql import mysql_url
from tests.targets.redis import redis_url


def _via(url: str, port: int, user: str | None, password: str | None, path: str | None) -> str:
    """``url`` pointed at the proxy's ``port``, with credentials or path replaced if given."""
    parts = urlsplit(url)
    user = parts.username if user is None else user
    password = parts.password if password is None else password
    auth = "" if user is None and password is None else f"{user or ''}:{password or ''}@"
    netloc = f"{auth}127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc, path=parts.path if path is None else path))


async def _check(
    label: str,
    url: str,
    *,
    words: tuple[str, ...],
    user: str | None = None,
    password: str | None = None,
    path: str | None = None,
    **config: object,
) -> None:
    for min_size in (0, 3):  # one attempt, whatever the pool opens at connect
        await _check_once(label, url, words, user, password, path, min_size=min_size, **config)


async def _check_once(
    label: str,
    url: str,
    words: tuple[str, ...],
    user: str | None,
    password: str | None,
    path: str | None,
    **config: object,
) -> None:
    parts = urlsplit(url)
    proxy = Proxy(parts.hostname or "127.0.0.1", parts.port or 0)
    async with proxy.running() as port:
        orm = da.Diaspora()
        target = _via(url, port, user, password, path)
        orm.create_data_source("main", label, url=target, connect_timeout=5, **config)
        try:
            with pytest.raises(da.AccessDenied) as info:
                await orm.connect()
        finally:
            await orm.close()
    exc = info.value
    assert isinstance(exc, da.DataSourceError)
    assert not isinstance(exc, da.ConnectionLost)
    assert exc.source == "main"
    text = str(exc)
    for word in words:
        assert word in text, text
    assert "retrying cannot help" in text
    assert proxy.accepted == 1, f"{proxy.accepted} connection attempts, expected exactly 1"


@pytest.mark.mysql
@pytest.mark.parametrize("driver", ["aiomysql", "asyncmy"])
async def test_mysql_wrong_password(driver: str) -> None:
    url = mysql_url()
    user = urlsplit(url).username or "root"
    await _check(
        "mysql", url, user=user, password="definitely-wrong", driver=driver,
        words=("bad credentials", "1045", "Access denied"),
    )  # fmt: skip


@pytest.mark.mysql
@pytest.mark.parametrize("driver", ["aiomysql", "asyncmy"])
async def test_mysql_unknown_database(driver: str) -> None:
    await _check(
        "mysql", mysql_url(), path="/da_no_such_database_x", driver=driver,
        words=("unknown database", "da_no_such_database_x"),
    )  # fmt: skip


@pytest.mark.redis
async def test_redis_wrong_password() -> None:
    await _check(
        "redis", redis_url(), user="nouser", password="wrong", path="/0",
        words=("bad credentials",),
    )  # fmt: skip


@pytest.mark.redis
async def test_redis_db_out_of_range() -> None:
    await _check("redis", redis_url(), path="/99", words=("no such db number", "out of range"))


@pytest.mark.redis
async def test_redis_unreachable_is_still_connection_lost() -> None:
    # Nothing listens on the port (the proxy is gone): not a refusal, so ConnectionLost.
    proxy = Proxy("127.0.0.1", 1)
    async with proxy.running() as port:
        pass
    orm = da.Diaspora()
    orm.create_data_source("main", "redis", url=f"redis://127.0.0.1:{port}/0", connect_timeout=2)
    try:
        with pytest.raises(da.ConnectionLost):
            await orm.connect()
    finally:
        await orm.close()
