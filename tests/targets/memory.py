"""The reference target: the in-memory adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from . import Target


@asynccontextmanager
async def _open() -> AsyncIterator[dict[str, Any]]:
    yield {}


TARGET = Target(id="memory", label="memory", open=_open)
