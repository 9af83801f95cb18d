"""The ``mongo`` target: the adapter's own ``AsyncMongoClient``, built from ``url=``.

The server is ``DIASPORA_TEST_MONGO_URL`` (default: the SecantusDB wire-protocol server
that ``scripts/mongo-server.sh start`` runs on 127.0.0.1:27018). Each opening uses a
database of its own (the URL's database name plus a random suffix), so runs never see
each other's collections, and drops it on exit.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from pymongo import AsyncMongoClient

from . import Target, service_url

ENV = "DIASPORA_TEST_MONGO_URL"
DEFAULT_URL = "mongodb://127.0.0.1:27018/diaspora_test"


def mongo_url() -> str:
    """The test server's URL (skips, or fails under CI, when it does not answer)."""
    return service_url(ENV, DEFAULT_URL)


def unique_database(url: str) -> str:
    """A database name no other run uses, based on the URL's database name."""
    base = urlsplit(url).path.lstrip("/") or "diaspora_test"
    return f"{base}_{uuid.uuid4().hex[:12]}"


def with_database(url: str, database: str) -> str:
    """``url`` with its path replaced by ``/database`` (query options kept)."""
    return urlsplit(url)._replace(path="/" + database).geturl()


@asynccontextmanager
async def scratch_database() -> AsyncIterator[tuple[str, str]]:
    """Yield ``(server url, fresh database name)``; the database is dropped on exit."""
    url = mongo_url()
    database = unique_database(url)
    try:
        yield url, database
    finally:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
        try:
            await client.drop_database(database)
        finally:
            await client.close()


@asynccontextmanager
async def _open() -> AsyncIterator[dict[str, Any]]:
    async with scratch_database() as (url, database):
        yield {"url": with_database(url, database), "max_size": 10}


TARGET = Target(id="mongo", label="mongo", open=_open)
