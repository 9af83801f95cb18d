"""The workload ``test_crash.py`` kills: ``python -m tests.faults.crash_worker CONFIG LOG SEED``.

Builds the registry from the JSON configuration ``CONFIG`` (a model ``CrashItem`` on
every store, ``on_error="queue"``, an outbox), then runs ``TASKS`` concurrent loops of
creates, updates and destroys on their own entities, forever: the parent ends it with
SIGKILL. After each operation that RETURNED (or raised ``FanOutError`` with every failed
source queued: the contract counts that as returned too) it appends one JSON line
``{"op", "id", "rev", "name", "n"}`` to ``LOG`` and fsyncs it, so what the log holds at
the kill is exactly what callers were told had happened. Nothing is logged before the
call returns: an operation in flight at the kill is not in the log.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from typing import Any

import diaspora_async as da

TASKS = 4
"""Concurrent loops: at most this many operations are in flight when the kill lands."""


class Log:
    """The append-only, fsynced record of returned operations."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def returned(self, op: str, e: Any) -> None:
        line = {"op": op, "id": e.id, "rev": e.revision, "name": e.name, "n": e.n}
        # One write() per line on an O_APPEND file: a kill never leaves half a line
        # between two, and fsync makes it durable before the next operation starts.
        os.write(self.fd, (json.dumps(line) + "\n").encode())
        os.fsync(self.fd)


async def loop(Item: Any, log: Log, seed: int) -> None:
    rng = random.Random(seed)
    held: dict[str, Any] = {}
    step = 0
    while True:
        step += 1
        draw = rng.random()
        if len(held) < 3 or draw < 0.4:
            op, e = "create", Item.spawn(name=f"s{seed}-{step}", n=0)
            call = e.persist(da.ALL)
        elif draw < 0.8:
            entity_id = rng.choice(list(held))
            if rng.random() < 0.5:  # the natural code: load from one store, persist to all
                fresh = await Item.find(entity_id, source="local")
                assert fresh is not None, "local always holds a live entity"
                held[entity_id] = fresh
            op, e = "update", held[entity_id]
            e.n += 1
            e.name = f"s{seed}-{step}"
            call = e.persist(da.ALL)
        else:
            op, e = "destroy", held.pop(rng.choice(list(held)))
            call = e.destroy(da.ALL)
        try:
            await call
        except da.FanOutError as exc:
            if set(exc.failed) - set(exc.queued):
                raise  # a part that was neither done nor queued: not "returned"
        if op != "destroy":
            held[e.id] = e
        log.returned(op, e)


async def main(config: str, log_path: str, seed: int) -> None:
    orm = da.Diaspora.from_config(config)
    Item = orm.models["CrashItem"]
    log = Log(log_path)
    async with orm:
        await asyncio.gather(*(loop(Item, log, seed * 100 + t) for t in range(TASKS)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
