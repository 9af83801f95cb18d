"""The ``mysql_asyncmy`` target: the ``mysql`` target's server and database, through asyncmy.

The two MySQL drivers differ in what they report after a statement (the adapter reads the
insert id of its guarded upserts), so the conformance suite runs on both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from . import Target
from .mysql import process_url


@asynccontextmanager
async def _open() -> AsyncIterator[dict[str, Any]]:
    yield {"url": await process_url(), "max_size": 5, "driver": "asyncmy"}


TARGET = Target(id="mysql_asyncmy", label="mysql", open=_open)
