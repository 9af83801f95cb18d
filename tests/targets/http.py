"""The http target: the ``http`` adapter -> our REST server in process -> memory.

Requests go through ``httpx.ASGITransport`` straight into ``create_app``, so the whole
protocol (query-string encoding, JSON values, error mapping) is exercised without a
socket. The server side is a registry of its own with ``main`` and ``aux`` on memory and
the same standard models, so every collection the suite touches exists there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

import diaspora_async as da
from diaspora_async.server import create_app
from tests.models import declare_standard_models

from . import Target

BASE_URL = "http://diaspora.test/api"


@asynccontextmanager
async def server_orm() -> AsyncIterator[da.Diaspora]:
    """A connected server-side registry mirroring the standard models, on memory.

    The client's ``Remapped`` model renames ``title``/``views`` in its ``main`` source,
    which here is the REST API: so the API's fields are ``heading``/``hits``, and the
    server serves its own model under that collection with those names.
    """
    orm = da.Diaspora()
    orm.create_data_source("main", "memory")
    orm.create_data_source("aux", "memory")
    declare_standard_models(orm)

    class RemappedOnServer(orm.Model, sources=["main"], collection="Remapped"):
        heading: str
        hits: int = 0

    async with orm:
        yield orm


SERVED = ["Article", "Doc", "RemappedOnServer", "Typed"]


def server_app(orm: da.Diaspora) -> Any:
    """The app the targets serve: the test suite drops collections, so empty deletes are on."""
    return create_app(orm, SERVED, prefix="/api", allow_empty_query=True)


@asynccontextmanager
async def _open() -> AsyncIterator[dict[str, Any]]:
    async with server_orm() as orm:
        yield {"base_url": BASE_URL, "transport": httpx.ASGITransport(app=server_app(orm))}


TARGET = Target(id="http", label="http", open=_open)
