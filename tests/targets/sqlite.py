"""The ``sqlite`` target: a fresh database file (WAL, pooled) per test."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from . import Target


@asynccontextmanager
async def _open() -> AsyncIterator[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="diaspora-sqlite-") as tmp:
        yield {"path": str(Path(tmp) / "test.db"), "max_size": 4}


TARGET = Target(id="sqlite", label="sqlite", open=_open)
