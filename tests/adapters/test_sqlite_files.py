"""Opening SQLite files: a new file with several pooled connections, from one process or two.

Switching a file to WAL takes an exclusive lock; connections that race for it get
"database is locked" without waiting for the busy timeout. These tests open fresh files
the way services do (several pooled connections, several workers) and must never fail.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

import diaspora_async as da

pytestmark = pytest.mark.sqlite

_WORKER = """
import asyncio, sys
import diaspora_async as da

async def main(folder: str, count: int) -> None:
    for i in range(count):
        orm = da.Diaspora()
        orm.create_data_source("main", "sqlite", path=f"{folder}/f{i}.db", min_size=4, max_size=4)
        async with orm:
            await orm.data_sources["main"].ping()
    print("ok")

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_fresh_files_with_four_pooled_connections_always_open(tmp_path: Path) -> None:
    for i in range(200):
        orm = da.Diaspora()
        path = tmp_path / f"fresh{i}.db"
        orm.create_data_source("main", "sqlite", path=str(path), min_size=4, max_size=4)
        async with orm:
            assert orm.data_sources["main"].stats()["size"] == 4
        assert path.exists()


async def test_two_registries_open_one_new_file_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    orms = []
    for _ in range(2):
        orm = da.Diaspora()
        orm.create_data_source("main", "sqlite", path=path, min_size=4, max_size=4)
        orms.append(orm)
    await asyncio.gather(*(orm.connect() for orm in orms))
    try:
        for orm in orms:
            await orm.data_sources["main"].ping()
    finally:
        await asyncio.gather(*(orm.close() for orm in orms))


async def test_two_processes_open_the_same_new_files_at_once(tmp_path: Path) -> None:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WORKER,
            str(tmp_path),
            "30",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 60)
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
        assert out.decode().strip() == "ok"
