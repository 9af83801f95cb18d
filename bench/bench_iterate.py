"""Model.iterate over a large SQLite table against a raw keyset pager (issue 17).

The table holds ``DIASPORA_BENCH_ITERATE_ROWS`` rows (default 1,000,000) of the SQL
benchmark's model. Ours: ``async for e in Model.iterate(batch_size=B)`` (entities). Raw:
aiosqlite paging ``WHERE id > ? ORDER BY id LIMIT B`` on its own connection and decoding
each row into a dict the same way (JSON list, datetime). Both sides are alternated twice.
Printed beside the ratio: ours' mean batch time in the first and in the last tenth of the
stream (flat when paging is by position; OFFSET grows linearly) and the RSS growth over
the whole stream (entities are not kept). Run: ``python bench/run.py --only iterate``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import diaspora_async as da
from bench._common import Result, interleaved
from bench.bench_sql import COLS, _doc, _models, _on_cpu, _placement, _raw_sqlite

ROWS = int(os.environ.get("DIASPORA_BENCH_ITERATE_ROWS", "1000000"))
BATCH = int(os.environ.get("DIASPORA_BENCH_ITERATE_BATCH", "1000"))
CHUNK = 50_000


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def _fill(model: Any) -> None:
    for start in range(0, ROWS, CHUNK):
        await model.insert_many([_doc(i) for i in range(start, min(start + CHUNK, ROWS))])


async def main() -> list[Result]:
    """One line: iterate over ROWS rows, ours against the raw keyset pager."""
    loop_cpu, worker_cpu = _placement()
    with tempfile.TemporaryDirectory(prefix="bench-iterate-") as tmp, _on_cpu(loop_cpu):
        path = str(Path(tmp) / "iterate.db")
        orm = da.Diaspora()
        orm.create_data_source("local", "sqlite", path=path, min_size=2)
        ours, _ = _models(orm, "local")
        with _on_cpu(worker_cpu):
            await orm.connect()
            db = await _raw_sqlite(path)
        try:
            print(f"  filling {ROWS:,} rows ...", flush=True)
            await _fill(ours)
            cols = ", ".join(f'"{c}"' for c in COLS)
            page = f'SELECT {cols} FROM "BenchOurs" WHERE "id" > ? ORDER BY "id" LIMIT ?'
            batches: list[float] = []
            rss: list[float] = []

            async def ours_iterate(_: int) -> None:
                before, n, mark = _rss_mb(), 0, time.perf_counter()
                batches.clear()
                async for _e in ours.iterate(batch_size=BATCH):
                    n += 1
                    if n % BATCH == 0:
                        now = time.perf_counter()
                        batches.append(now - mark)
                        mark = now
                assert n == ROWS, n
                rss.append(_rss_mb() - before)

            async def raw_iterate(_: int) -> None:
                last, n = "", 0
                while True:
                    async with db.execute(page, (last, BATCH)) as cur:
                        rows = await cur.fetchall()
                    for row in rows:
                        d = dict(zip(COLS, row, strict=True))
                        d["tags"] = json.loads(d["tags"])
                        d["created"] = datetime.fromisoformat(d["created"]).replace(tzinfo=UTC)
                        n += 1
                    if len(rows) < BATCH:
                        break
                    last = rows[-1][0]
                assert n == ROWS, n

            result = await interleaved(
                "sqlite", f"iterate {ROWS:,} (rows/s)", ours_iterate, raw_iterate, 2, ROWS, 0.80
            )
            tenth = max(1, len(batches) // 10)
            first = sum(batches[:tenth]) / tenth * 1e3
            final = sum(batches[-tenth:]) / tenth * 1e3
            print(
                f"  iterate: batch of {BATCH} first tenth {first:.2f} ms, last tenth "
                f"{final:.2f} ms ({final / first:.2f}x); RSS growth {max(rss):.1f} MB"
            )
            return [result]
        finally:
            await db.close()
            await orm.close()
