"""The pool's per-operation deadline (``timeout=``): what times out, what it raises, what
happens to the connection, and that the caller's own cancellation stays a cancellation.

The fake pool of ``test_pool.py`` stands in for a driver; a hung store is an operation
that awaits an event nobody sets. Elapsed times are bounds, not sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

import diaspora_async as da
from diaspora_async.adapters.pool_options import PoolOptions, pop_timeout
from diaspora_async.errors import ConfigError, DataSourceError, OperationTimeout
from tests.unit.test_pool import FakeConn, FakePool, check

T = 0.2


async def hang(conn: FakeConn) -> None:
    await asyncio.Event().wait()


async def answer(conn: FakeConn) -> int:
    await asyncio.sleep(0)
    return conn.n


@pytest.mark.parametrize("borrow", ["run", "acquire"])
async def test_a_hung_operation_times_out_and_its_connection_is_discarded(borrow: str) -> None:
    pool = FakePool(timeout=T)
    assert await pool.run(answer) == 0  # one idle connection, then it hangs
    start = time.monotonic()

    async def leased() -> None:
        async with pool.acquire("read") as conn:
            await hang(conn)

    with pytest.raises(OperationTimeout) as info:
        await (pool.run(hang, what="read") if borrow == "run" else leased())
    assert T <= time.monotonic() - start < T + 1.0
    err = info.value
    assert isinstance(err, DataSourceError)
    assert (err.source, err.operation, err.timeout) == ("fake", "read", T)
    assert "read timed out" in str(err) and "timeout=0.2" in str(err)
    assert isinstance(err.__cause__, asyncio.CancelledError)
    await pool.settle()
    check(pool, size=0, in_use=0, discarded=1)
    assert await pool.run(answer) == 1  # usable again, on a new connection
    await pool.close()


async def stubborn(conn: FakeConn) -> str:
    """A driver call that ignores cancellation and holds its connection for 3 T."""
    loop = asyncio.get_running_loop()
    end = loop.time() + 3 * T
    while (left := end - loop.time()) > 0:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(left)
    return "done"


async def test_the_limit_covers_waiting_for_a_connection() -> None:
    pool = FakePool(timeout=T, max_size=1, acquire_timeout=30)
    holder = asyncio.create_task(pool.run(stubborn))
    await asyncio.sleep(0.01)
    start = time.monotonic()
    with pytest.raises(OperationTimeout):
        await pool.run(answer)  # waits behind the stuck one, within the same limit
    assert time.monotonic() - start < T + 1.0
    assert await holder == "done"  # it swallowed the cancellation: its answer stands
    check(pool, in_use=0, waiting=0, idle=1, timeouts=0)
    assert await pool.run(answer) == 0
    await pool.close()


async def test_the_limit_covers_connecting_and_open() -> None:
    pool = FakePool(timeout=T, connect_timeout=30, min_size=1)
    pool.open_gate = asyncio.Event()  # the server accepts but never answers
    start = time.monotonic()
    with pytest.raises(OperationTimeout) as info:
        await pool.open()
    assert info.value.operation == "connect" and time.monotonic() - start < T + 1.0
    with pytest.raises(OperationTimeout):
        await pool.run(answer)  # connecting inside an operation
    check(pool, size=0, opening=0, in_use=0)
    pool.open_gate.set()
    assert await pool.run(answer) == 0
    await pool.close()


async def test_caller_cancellation_stays_cancelled_error() -> None:
    pool = FakePool(timeout=T)
    task = asyncio.create_task(pool.run(hang))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await pool.settle()
    check(pool, size=0, in_use=0, discarded=1)
    assert await pool.run(answer) == 1
    await pool.close()


async def test_a_caller_cancelled_at_the_deadline_is_cancelled_not_timed_out() -> None:
    pool = FakePool(timeout=T)
    inner: list[BaseException] = []

    async def op() -> None:
        try:
            async with pool.acquire() as conn:
                # Both cancellations land at once: ours (the deadline) and the caller's.
                deadlines = pool._deadlines
                ((key, (_, me)),) = deadlines._running.items()
                deadlines._running[key] = (0.0, me)  # overdue now
                deadlines._fire()
                me.cancel()
                await hang(conn)
        except BaseException as exc:
            inner.append(exc)
            raise

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(op())
    assert isinstance(inner[0], asyncio.CancelledError)
    await pool.settle()
    check(pool, in_use=0, discarded=1)
    await pool.close()


async def test_an_answer_that_beat_the_deadline_stands_and_leaves_no_cancellation() -> None:
    pool = FakePool(timeout=T)

    async def swallow(conn: FakeConn) -> str:
        with contextlib.suppress(asyncio.CancelledError):  # a driver finishing its reply
            await asyncio.sleep(T * 2)
        return "late but whole"

    assert await pool.run(swallow) == "late but whole"
    await asyncio.sleep(0.01)  # no cancellation is left pending on this task
    check(pool, in_use=0, idle=1)
    await pool.close()


async def test_many_concurrent_operations_each_get_their_own_deadline() -> None:
    pool = FakePool(timeout=T, max_size=20)
    fast = [pool.run(answer) for _ in range(50)]
    slow = [pool.run(hang) for _ in range(5)]
    results = await asyncio.gather(*fast, *slow, return_exceptions=True)
    assert all(isinstance(r, int) for r in results[:50])
    assert all(isinstance(r, OperationTimeout) for r in results[50:])
    await pool.settle()
    check(pool, in_use=0, discarded=5)
    await pool.close()


@pytest.mark.parametrize("bad", [0, -1, "soon", True, None, float("inf"), [1]])
def test_bad_timeouts_are_config_errors(bad: Any) -> None:
    with pytest.raises(ConfigError, match="'timeout'"):
        PoolOptions.from_config({"timeout": bad})
    with pytest.raises(ConfigError, match="'timeout'"):
        pop_timeout({"timeout": bad})


def test_timeout_defaults_to_30_and_accepts_numeric_strings() -> None:
    assert PoolOptions().timeout == 30.0 == pop_timeout({})
    config: dict[str, Any] = {"timeout": "2.5", "other": 1}
    assert pop_timeout(config) == 2.5 and config == {"other": 1}


ADAPTERS = [
    ("memory", {}),
    ("sqlite", {}),
    ("mysql", {"url": "mysql://root@127.0.0.1:1/db"}),
    ("redis", {"url": "redis://127.0.0.1:1/0"}),
    ("mongo", {"url": "mongodb://127.0.0.1:1/db"}),
    ("http", {"base_url": "http://127.0.0.1:1/api"}),
]


@pytest.mark.parametrize(("label", "config"), ADAPTERS, ids=[a[0] for a in ADAPTERS])
def test_every_adapter_takes_and_checks_timeout(label: str, config: dict[str, Any]) -> None:
    orm = da.Diaspora()
    ds = orm.create_data_source("ok", label, **config, timeout=2.5)  # no I/O here
    adapter: Any = ds.adapter
    pool = getattr(adapter, "_pool", None)
    seconds = adapter.timeout if pool is None else pool.options.timeout
    assert seconds == 2.5
    for bad in (0, -1, "soon", True):
        with pytest.raises(ConfigError, match="'timeout'"):
            orm.create_data_source(f"bad{bad!r}", label, **config, timeout=bad)
