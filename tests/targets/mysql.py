"""The ``mysql`` target: MariaDB/MySQL at ``DIASPORA_TEST_MYSQL_URL``.

Tables are dropped before and after each test by the ``db`` fixture. Several test runs
may share one server (engineers, CI jobs, xdist workers), and they all use the same table
names, so each process works in its own database ``<db>_p<pid>``, created on first use
and dropped when the process exits. Set ``DIASPORA_TEST_MYSQL_SHARED=1`` to use the URL's
database itself (for a user without CREATE DATABASE rights).
"""

from __future__ import annotations

import atexit
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiomysql

from . import Target, service_url

ENV = "DIASPORA_TEST_MYSQL_URL"
DEFAULT = "mysql://root@127.0.0.1:3306/test"

_own: dict[str, str] = {}  # server URL -> this process's database URL


def mysql_url() -> str:
    """The test server's URL (skips, or fails under CI, when it does not answer)."""
    return service_url(ENV, DEFAULT)


def _connect_args(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
        "user": parts.username or "root", "password": parts.password or "",
    }  # fmt: skip


def _drop_at_exit(url: str, db: str) -> None:
    import pymysql  # aiomysql's own dependency; synchronous, as atexit needs

    try:
        conn = pymysql.connect(**_connect_args(url), autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        finally:
            conn.close()
    except pymysql.MySQLError:
        pass  # the server went away first: nothing to clean


async def process_url() -> str:
    """A URL on this process's own database (created once), or the shared one."""
    url = mysql_url()
    if os.environ.get("DIASPORA_TEST_MYSQL_SHARED") == "1":
        return url
    if url not in _own:
        parts = urlsplit(url)
        db = f"{parts.path.lstrip('/') or 'test'}_p{os.getpid()}"
        conn = await aiomysql.connect(**_connect_args(url), autocommit=True)
        try:
            async with conn.cursor() as cur:
                await cur.execute("SET sql_notes = 0")
                await cur.execute(f"CREATE DATABASE IF NOT EXISTS `{db}`")
        finally:
            conn.close()
        atexit.register(_drop_at_exit, url, db)
        _own[url] = urlunsplit(parts._replace(path="/" + db))
    return _own[url]


@asynccontextmanager
async def _open() -> AsyncIterator[dict[str, Any]]:
    yield {"url": await process_url(), "max_size": 5}


TARGET = Target(id="mysql", label="mysql", open=_open)
