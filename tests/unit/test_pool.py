"""Pool bookkeeping under reuse, exhaustion, failures, cancellation and shutdown.

A fake connection factory whose open/ping/close can be held on ``asyncio.Event`` gates or
made to fail stands in for a driver; every test ends by checking that the counters match
what the fake saw (each opened connection is idle, borrowed or closed).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from diaspora_async.adapters.pool import Pool, PoolOptions
from diaspora_async.errors import (
    AccessDenied,
    ConfigError,
    ConnectionLost,
    DiasporaError,
    IntegrityError,
    PoolTimeout,
    QueryError,
)


class FakeConn:
    def __init__(self, n: int) -> None:
        self.n = n
        self.closed = False
        self.alive = True
        self.ping_ok = True
        self.busy = False  # set while a borrower holds it: catches double lending
        self.poisoned = False  # its block was cut short: must never be lent again


class FakePool(Pool[FakeConn]):
    def __init__(self, **options: Any) -> None:
        options.setdefault("health_check_interval", None)
        super().__init__("fake", PoolOptions(**options))
        self.conns: list[FakeConn] = []
        self.now = 0.0  # the pool's clock for connection ages
        self.open_gate: asyncio.Event | None = None
        self.ping_gate: asyncio.Event | None = None
        self.open_started = asyncio.Event()
        self.ping_started = asyncio.Event()
        self.open_error: BaseException | None = None
        self.pings = 0
        self.yields = 0  # extra sleep(0)s inside open/ping, for the stress test
        self.rng: random.Random | None = None  # stress test: random open/ping failures
        self.cancel_points: dict[str, int] = {}  # stress test: where cancellations landed
        self.inside: dict[str, set[asyncio.Task[Any]]] = {}  # stress test: who is where

    async def _step(self, where: str) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.inside.setdefault(where, set()).add(task)
        try:
            for _ in range(self.yields):
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            self.cancel_points[where] = self.cancel_points.get(where, 0) + 1
            raise
        finally:
            self.inside[where].discard(task)
        if self.rng is not None and self.rng.random() < 0.05:
            raise OSError(f"random {where} failure")

    def _clock(self) -> float:
        return self.now

    async def _open(self) -> FakeConn:
        self.open_started.set()
        if self.open_gate is not None:
            await self.open_gate.wait()
        await self._step("open")
        if self.open_error is not None:
            raise self.open_error
        conn = FakeConn(len(self.conns))
        self.conns.append(conn)
        return conn

    async def _close(self, conn: FakeConn) -> None:
        assert not conn.closed, "closed twice"
        await asyncio.sleep(0)
        conn.closed = True

    async def _ping(self, conn: FakeConn) -> None:
        self.pings += 1
        self.ping_started.set()
        if self.ping_gate is not None:
            await self.ping_gate.wait()
        await self._step("ping")
        if not conn.ping_ok:
            raise OSError("gone")

    def _alive(self, conn: FakeConn) -> bool:
        return conn.alive

    @property
    def n_closed(self) -> int:
        return sum(c.closed for c in self.conns)

    async def settle(self) -> None:
        """Let background closes finish (they are tracked tasks, not timing)."""
        while self._closers:
            await asyncio.wait(set(self._closers))


def check(pool: FakePool, **expected: int) -> None:
    """Assert stats match ``expected`` and the fake's view of every connection."""
    stats = pool.stats()
    assert {k: stats[k] for k in expected} == expected
    assert stats["size"] == stats["idle"] + stats["in_use"] + stats["opening"]
    idle = {id(e.conn) for e in pool._idle}
    borrowed = {id(e.conn) for e in pool._borrowed}
    for conn in pool.conns:
        places = (id(conn) in idle) + (id(conn) in borrowed) + conn.closed
        assert places == 1, f"conn {conn.n}: idle/borrowed/closed = {places}"
    assert len(pool.conns) - pool.n_closed == stats["idle"] + stats["in_use"]


async def spin(cond: Any) -> None:
    """Yield to the loop until ``cond()``: ordering, not timing (bounded for safety)."""
    for _ in range(1000):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


async def hold(pool: FakePool, entered: asyncio.Event, release: asyncio.Event) -> FakeConn:
    async with pool.acquire() as conn:
        entered.set()
        await release.wait()
    return conn


# --- sizing and reuse ---------------------------------------------------------------------


async def test_open_warms_min_size_and_is_idempotent() -> None:
    pool = FakePool(min_size=3, max_size=5)
    await pool.open()
    await pool.open()
    assert len(pool.conns) == 3
    check(pool, size=3, idle=3, in_use=0, opened=3)
    async with pool.acquire() as conn:
        assert conn in pool.conns
    assert len(pool.conns) == 3
    await pool.close()


async def test_idle_connection_is_reused() -> None:
    pool = FakePool(max_size=5)
    async with pool.acquire() as first:
        check(pool, size=1, in_use=1, idle=0)
    async with pool.acquire() as second:
        pass
    assert second is first
    check(pool, size=1, idle=1, in_use=0, opened=1, discarded=0)
    await pool.close()


async def test_max_size_holds_under_50_borrowers() -> None:
    pool = FakePool(max_size=5)
    gate = asyncio.Event()
    current = peak = 0

    async def borrower() -> None:
        nonlocal current, peak
        async with pool.acquire() as conn:
            assert not conn.busy
            conn.busy = True
            current += 1
            peak = max(peak, current)
            await gate.wait()
            await asyncio.sleep(0)
            current -= 1
            conn.busy = False

    tasks = [asyncio.create_task(borrower()) for _ in range(50)]
    await spin(lambda: pool.stats()["waiting"] == 45)
    check(pool, size=5, in_use=5, idle=0, waiting=45)
    gate.set()
    await asyncio.gather(*tasks)
    assert peak == 5
    assert len(pool.conns) == 5
    check(pool, size=5, idle=5, in_use=0, waiting=0, opened=5)
    await pool.close()


async def test_handover_does_not_count_as_idle_time() -> None:
    pool = FakePool(max_size=1, health_check_interval=30)
    entered, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(hold(pool, entered, release))
    await entered.wait()
    done = asyncio.Event()
    done.set()
    waiter = asyncio.create_task(hold(pool, asyncio.Event(), done))
    await spin(lambda: pool.stats()["waiting"] == 1)
    pool.now = 100  # held, not idle, all this time
    release.set()
    assert await holder is await waiter
    assert pool.pings == 0
    check(pool, size=1, idle=1)
    await pool.close()


async def test_cancelled_open_can_be_retried() -> None:
    pool = FakePool(min_size=2)
    pool.open_gate = asyncio.Event()
    task = asyncio.create_task(pool.open())
    await pool.open_started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    check(pool, size=0, opening=0)
    pool.open_gate.set()
    await pool.open()
    check(pool, size=2, idle=2)
    await pool.close()


# --- exhaustion -----------------------------------------------------------------------------


async def test_pool_timeout_when_exhausted_then_usable() -> None:
    pool = FakePool(max_size=1, acquire_timeout=0.05)
    entered, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(hold(pool, entered, release))
    await entered.wait()
    start = time.monotonic()
    with pytest.raises(PoolTimeout, match=r"after 0\.05 s \(max_size=1, in use=1\)") as info:
        async with pool.acquire():
            pass
    assert 0.04 <= time.monotonic() - start < 1.0
    assert info.value.source == "fake"
    check(pool, size=1, in_use=1, idle=0, waiting=0, timeouts=1)
    release.set()
    conn = await holder
    async with pool.acquire() as again:
        assert again is conn
    check(pool, size=1, idle=1, in_use=0, waiting=0)
    await pool.close()


async def test_acquire_timeout_bounds_a_slow_open() -> None:
    pool = FakePool(acquire_timeout=0.05, connect_timeout=5)
    pool.open_gate = asyncio.Event()  # never set
    start = time.monotonic()
    with pytest.raises(PoolTimeout):
        async with pool.acquire():
            pass
    assert time.monotonic() - start < 1.0
    check(pool, size=0, opening=0, timeouts=1)


# --- cancellation at every await point ------------------------------------------------------


async def test_cancel_while_waiting() -> None:
    pool = FakePool(max_size=1)
    entered, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(hold(pool, entered, release))
    await entered.wait()
    waiter = asyncio.create_task(hold(pool, asyncio.Event(), asyncio.Event()))
    await spin(lambda: pool.stats()["waiting"] == 1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    check(pool, size=1, in_use=1, idle=0, waiting=0)
    assert not pool._waiters
    release.set()
    await holder
    check(pool, size=1, in_use=0, idle=1, waiting=0)
    await pool.close()


async def test_cancel_while_opening() -> None:
    pool = FakePool(max_size=1)
    pool.open_gate = asyncio.Event()
    task = asyncio.create_task(hold(pool, asyncio.Event(), asyncio.Event()))
    await pool.open_started.wait()
    check(pool, size=1, opening=1, in_use=0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    check(pool, size=0, opening=0, in_use=0, idle=0, waiting=0)
    pool.open_gate.set()
    async with pool.acquire():
        check(pool, size=1, in_use=1)
    await pool.close()


async def test_cancel_while_pinging_discards_the_connection() -> None:
    pool = FakePool(health_check_interval=0)
    async with pool.acquire() as conn:
        pass
    pool.ping_gate = asyncio.Event()
    task = asyncio.create_task(hold(pool, asyncio.Event(), asyncio.Event()))
    await pool.ping_started.wait()
    check(pool, size=1, in_use=1, idle=0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await pool.settle()
    assert conn.closed  # the ping was cut short: its reply may still be on the wire
    check(pool, size=0, in_use=0, idle=0, waiting=0, discarded=1)
    pool.ping_gate = None
    async with pool.acquire() as fresh:
        assert fresh is not conn
    await pool.close()


async def test_cancel_inside_block_closes_never_reuses() -> None:
    pool = FakePool(max_size=1)
    entered = asyncio.Event()
    task = asyncio.create_task(hold(pool, entered, asyncio.Event()))
    await entered.wait()
    waiter = asyncio.create_task(hold(pool, asyncio.Event(), asyncio.Event()))
    await spin(lambda: pool.stats()["waiting"] == 1)
    waiter.cancel()  # its slot is free again below; nothing should be granted to it
    task.cancel()
    for t in (task, waiter):
        with pytest.raises(asyncio.CancelledError):
            await t
    await pool.settle()
    assert pool.conns[0].closed
    check(pool, size=0, in_use=0, idle=0, waiting=0, opening=0, discarded=1)
    async with pool.acquire() as conn:
        assert conn is not pool.conns[0]
    await pool.close()


async def test_waiter_cancelled_just_after_handover_gives_connection_back() -> None:
    pool = FakePool(max_size=1)
    entered, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(hold(pool, entered, release))
    await entered.wait()
    waiter = asyncio.create_task(hold(pool, asyncio.Event(), asyncio.Event()))
    await spin(lambda: pool.stats()["waiting"] == 1)
    release.set()
    await spin(lambda: holder.done())  # the holder's exit handed the conn to the waiter ...
    assert pool._borrowed
    assert not pool._idle
    waiter.cancel()  # ... which is cancelled before it could resume
    with pytest.raises(asyncio.CancelledError):
        await waiter
    conn = holder.result()
    assert not conn.closed  # never used by the waiter, so it is clean: back to idle
    check(pool, size=1, in_use=0, idle=1, waiting=0)
    await pool.close()


async def test_waiter_cancelled_just_after_slot_grant_releases_slot() -> None:
    pool = FakePool(max_size=1)
    entered, release = asyncio.Event(), asyncio.Event()

    async def failing_holder() -> None:
        async with pool.acquire():
            entered.set()
            await release.wait()
            raise RuntimeError("boom")

    holder = asyncio.create_task(failing_holder())
    await entered.wait()
    waiter = asyncio.create_task(hold(pool, asyncio.Event(), asyncio.Event()))
    await spin(lambda: pool.stats()["waiting"] == 1)
    release.set()
    await spin(lambda: holder.done())  # discard granted the freed slot to the waiter
    stats = pool.stats()
    assert (stats["opening"], stats["waiting"], stats["in_use"]) == (1, 0, 0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    with pytest.raises(RuntimeError):
        await holder
    await pool.settle()
    check(pool, size=0, in_use=0, idle=0, waiting=0, opening=0, opened=1)
    await pool.close()


async def test_random_stress_with_cancellations() -> None:
    rng = random.Random(20240601)
    pool = FakePool(max_size=10, health_check_interval=0, recycle=30, acquire_timeout=30)
    pool.yields = 3
    pool.rng = rng  # 5 % of opens and pings fail
    in_block = pool.inside.setdefault("block", set())
    peak = 0
    cancelled_in_acquire = 0

    async def worker(i: int) -> None:
        nonlocal peak, cancelled_in_acquire
        lease = pool.acquire()
        try:
            conn = await lease.__aenter__()
        except asyncio.CancelledError:
            cancelled_in_acquire += 1
            raise
        try:
            assert not conn.closed
            assert not conn.poisoned  # never lent again after a cut-short block
            assert not conn.busy
            conn.busy = True
            peak = max(peak, sum(c.busy for c in pool.conns))
            me = asyncio.current_task()
            assert me is not None
            in_block.add(me)
            try:
                for _ in range(i % 5):
                    await asyncio.sleep(0)
                if i % 7 == 0:
                    raise IntegrityError("fake", "dup")  # keeps the connection
                if i % 11 == 0:
                    raise RuntimeError("bad")  # discards it
            except asyncio.CancelledError:
                conn.poisoned = True
                raise
            finally:
                conn.busy = False
                in_block.discard(me)
        except BaseException as exc:
            await lease.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        await lease.__aexit__(None, None, None)

    tasks = [asyncio.create_task(worker(i)) for i in range(200)]
    order = {t: i for i, t in enumerate(tasks)}  # sets iterate by hash: sort for determinism
    while not all(t.done() for t in tasks):
        await asyncio.sleep(0)
        if pool.now < 50:
            pool.now += 1  # ages move: some connections pass recycle=30
        if rng.random() < 0.4:  # cancel someone at a random kind of await point
            busy = set().union(*pool.inside.values())
            waiting = [t for t in tasks if not t.done() and t not in busy]
            where = rng.choice(["open", "ping", "block", "waiting"])
            group = (
                waiting
                if where == "waiting"
                else sorted(pool.inside.get(where, ()), key=order.__getitem__)
            )
            if group:
                rng.choice(group).cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    await pool.settle()
    allowed = asyncio.CancelledError | IntegrityError | RuntimeError | ConnectionLost
    assert all(r is None or isinstance(r, allowed) for r in results), results
    # the seed really cancels at every await point, and enough work still completes
    assert sum(c.poisoned for c in pool.conns) > 0
    assert cancelled_in_acquire - sum(pool.cancel_points.values()) > 0  # while waiting
    assert pool.cancel_points.get("open", 0) > 0
    assert pool.cancel_points.get("ping", 0) > 0
    assert sum(r is None for r in results) > 50
    stats = pool.stats()
    assert stats["in_use"] == stats["waiting"] == stats["opening"] == 0
    assert stats["size"] == stats["idle"] <= 10
    assert 1 < peak <= 10
    assert len(pool.conns) - pool.n_closed == stats["size"]
    assert all(c.closed for c in pool.conns if c.poisoned)
    check(pool)
    await pool.close()
    check(pool, size=0)
    assert all(c.closed for c in pool.conns)


# --- what an exception in the block does ----------------------------------------------------


async def test_reusable_after_keeps_on_integrity_error() -> None:
    pool = FakePool()
    with pytest.raises(IntegrityError):
        async with pool.acquire() as conn:
            raise IntegrityError("fake", "duplicate id")
    with pytest.raises(QueryError):
        async with pool.acquire() as again:
            raise QueryError("bad")
    assert again is conn
    assert not conn.closed
    check(pool, size=1, idle=1, discarded=0)
    await pool.close()


@pytest.mark.parametrize("exc", [ConnectionLost("fake", "reset"), RuntimeError("bug")])
async def test_reusable_after_discards_on_other_errors(exc: Exception) -> None:
    pool = FakePool()
    with pytest.raises(type(exc)):
        async with pool.acquire() as conn:
            raise exc
    await pool.settle()
    assert conn.closed
    check(pool, size=0, idle=0, in_use=0, discarded=1)
    async with pool.acquire() as fresh:
        assert fresh is not conn
    await pool.close()


# --- dead connections -----------------------------------------------------------------------


async def test_not_alive_is_replaced() -> None:
    pool = FakePool()
    async with pool.acquire() as conn:
        pass
    conn.alive = False
    async with pool.acquire() as fresh:
        assert fresh is not conn
    await pool.settle()
    assert conn.closed
    check(pool, size=1, idle=1, discarded=1, opened=2)
    await pool.close()


async def test_failed_ping_after_interval_is_replaced() -> None:
    pool = FakePool(health_check_interval=30)
    async with pool.acquire() as conn:
        pass
    conn.ping_ok = False
    pool.now = 29  # idle for less than the interval: no ping, same connection
    async with pool.acquire() as same:
        assert same is conn
    assert pool.pings == 0
    pool.now = 60
    async with pool.acquire() as fresh:
        assert fresh is not conn
    assert pool.pings == 1
    await pool.settle()
    assert conn.closed
    check(pool, size=1, idle=1, discarded=1)
    await pool.close()


async def test_recycle_age_replaces() -> None:
    pool = FakePool(recycle=100)
    async with pool.acquire() as conn:
        pass
    pool.now = 99
    async with pool.acquire() as same:
        assert same is conn
    pool.now = 100
    async with pool.acquire() as fresh:
        assert fresh is not conn
    await pool.settle()
    assert conn.closed
    check(pool, size=1, idle=1, discarded=1)
    await pool.close()


# --- opening fails --------------------------------------------------------------------------


async def test_open_failure_is_connection_lost_with_cause() -> None:
    pool = FakePool(max_size=1)
    pool.open_error = OSError("refused")
    with pytest.raises(ConnectionLost, match="refused") as info:
        async with pool.acquire():
            pass
    assert info.value.__cause__ is pool.open_error
    check(pool, size=0, opening=0)
    pool.open_error = None
    async with pool.acquire():  # the slot was released: max_size=1 still allows one
        pass
    await pool.close()


async def test_open_diaspora_error_is_not_wrapped() -> None:
    pool = FakePool()
    pool.open_error = ConnectionLost("fake", "auth failed")
    with pytest.raises(ConnectionLost) as info:
        async with pool.acquire():
            pass
    assert info.value is pool.open_error
    check(pool, size=0, opening=0)


async def test_open_failure_is_classified_by_the_adapter_once() -> None:
    pool = FakePool(max_size=1)
    asked: list[Exception] = []

    def classify(exc: Exception) -> DiasporaError:
        asked.append(exc)
        return AccessDenied("fake", f"refused: {exc}")

    pool._classify = classify
    pool.open_error = OSError("bad password")
    with pytest.raises(AccessDenied, match="bad password") as info:
        async with pool.acquire():
            pass
    assert info.value.__cause__ is pool.open_error
    assert asked == [pool.open_error]  # one attempt, one question
    check(pool, size=0, opening=0)


async def test_a_failing_classifier_falls_back_to_connection_lost() -> None:
    pool = FakePool()

    def classify(exc: Exception) -> DiasporaError:
        raise RuntimeError("buggy")

    pool._classify = classify
    pool.open_error = OSError("refused")
    with pytest.raises(ConnectionLost, match="refused"):
        async with pool.acquire():
            pass
    check(pool, size=0, opening=0)


async def test_connect_timeout() -> None:
    pool = FakePool(connect_timeout=0.05)
    pool.open_gate = asyncio.Event()  # never set
    start = time.monotonic()
    with pytest.raises(ConnectionLost, match=r"within 0\.05 s") as info:
        async with pool.acquire():
            pass
    assert time.monotonic() - start < 1.0
    assert isinstance(info.value.__cause__, TimeoutError)
    check(pool, size=0, opening=0, timeouts=0)


async def test_open_failure_in_warmup() -> None:
    pool = FakePool(min_size=2)
    pool.open_error = OSError("down")
    with pytest.raises(ConnectionLost):
        await pool.open()
    check(pool, size=0)
    pool.open_error = None
    await pool.open()  # a failed open() can be retried
    check(pool, size=2, idle=2)
    await pool.close()


# --- close ----------------------------------------------------------------------------------


async def test_close_waits_for_borrowed_connection() -> None:
    pool = FakePool(min_size=1, max_size=2)
    await pool.open()
    entered, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(hold(pool, entered, release))
    await entered.wait()
    async with pool.acquire() as idle_conn:
        pass
    closer = asyncio.create_task(pool.close(timeout=30))
    await spin(lambda: idle_conn.closed and pool.stats()["closing"] == 0)
    assert pool.closed
    assert not pool.conns[0].closed  # still borrowed: close() waits for it
    assert not closer.done()
    release.set()
    conn = await holder
    await closer
    assert conn.closed
    assert idle_conn.closed
    check(pool, size=0, in_use=0, idle=0)


async def test_close_force_closes_what_is_not_returned() -> None:
    pool = FakePool()
    entered = asyncio.Event()
    holder = asyncio.create_task(hold(pool, entered, asyncio.Event()))
    await entered.wait()
    start = time.monotonic()
    await pool.close(timeout=0.05)
    assert time.monotonic() - start < 1.0
    assert pool.conns[0].closed
    check(pool, size=0, in_use=0)
    holder.cancel()  # its exit after the forced close must not disturb anything
    with pytest.raises(asyncio.CancelledError):
        await holder
    check(pool, size=0, in_use=0, idle=0, discarded=0)


async def test_close_wakes_waiters_and_refuses_acquire() -> None:
    pool = FakePool(max_size=1, close_timeout=0.05)
    entered = asyncio.Event()
    holder = asyncio.create_task(hold(pool, entered, asyncio.Event()))
    await entered.wait()
    waiter = asyncio.create_task(hold(pool, asyncio.Event(), asyncio.Event()))
    await spin(lambda: pool.stats()["waiting"] == 1)
    await pool.close()
    opened = len(pool.conns)
    with pytest.raises(ConnectionLost, match="pool is closed"):
        await waiter
    with pytest.raises(ConnectionLost, match="pool is closed"):
        async with pool.acquire():
            pass
    await pool.close()  # idempotent
    assert len(pool.conns) == opened  # nothing was opened for the refused calls
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder
    check(pool, size=0, waiting=0, in_use=0)


async def test_open_finishing_after_forced_close_is_closed() -> None:
    pool = FakePool()
    pool.open_gate = asyncio.Event()
    task = asyncio.create_task(hold(pool, asyncio.Event(), asyncio.Event()))
    await pool.open_started.wait()
    await pool.close(timeout=0.01)
    check(pool, size=0, opening=0)
    pool.open_gate.set()
    with pytest.raises(ConnectionLost, match="pool is closed"):
        await task
    await pool.settle()
    assert pool.conns[0].closed
    check(pool, size=0)


async def test_open_finishing_while_close_waits_is_closed_not_lent() -> None:
    pool = FakePool()
    pool.open_gate = asyncio.Event()
    released = asyncio.Event()
    released.set()
    task = asyncio.create_task(hold(pool, asyncio.Event(), released))
    await pool.open_started.wait()
    closer = asyncio.create_task(pool.close(timeout=30))
    await spin(lambda: pool.closed)
    check(pool, size=1, opening=1)  # close() waits for the open in flight
    pool.open_gate.set()
    with pytest.raises(ConnectionLost, match="pool is closed"):
        await task
    await closer
    assert pool.conns[0].closed
    check(pool, size=0, opening=0, in_use=0)


# --- options --------------------------------------------------------------------------------


def test_from_config_pops_and_coerces() -> None:
    config: dict[str, Any] = {
        "url": "mysql://x",
        "max_size": "5",
        "min_size": 2,
        "acquire_timeout": "0.5",
        "recycle": None,
    }
    opts = PoolOptions.from_config(config)
    assert config == {"url": "mysql://x"}
    assert opts == PoolOptions(min_size=2, max_size=5, acquire_timeout=0.5, recycle=None)
    assert isinstance(opts.max_size, int)
    assert PoolOptions.from_config({}) == PoolOptions()


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"max_size": 0}, "max_size"),
        ({"min_size": 6, "max_size": 5}, "min_size"),
        ({"min_size": -1}, "min_size"),
        ({"acquire_timeout": -1}, "acquire_timeout"),
        ({"connect_timeout": "0"}, "connect_timeout"),
        ({"close_timeout": "soon"}, "close_timeout"),
        ({"max_size": "2.5"}, "max_size"),
        ({"max_size": True}, "max_size"),
        ({"recycle": 0}, "recycle"),
        ({"health_check_interval": -5}, "health_check_interval"),
    ],
)
def test_from_config_rejects_bad_values(config: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=repr(key)):
        PoolOptions.from_config(config)


async def test_a_closed_pool_opens_again_with_fresh_connections() -> None:
    pool = FakePool(min_size=1)
    await pool.open()
    first = pool.conns[0]
    await pool.close()
    assert first.closed and pool.closed
    await pool.open()  # a registry connected, closed and connected again
    assert not pool.closed
    async with pool.acquire() as conn:
        assert conn is not first and not conn.closed
    check(pool, size=1, in_use=0, idle=1)
    await pool.close()


async def test_an_open_in_flight_across_close_and_reopen_is_not_handed_out() -> None:
    pool = FakePool(max_size=2)
    pool.open_gate = asyncio.Event()
    late = asyncio.create_task(hold(pool, asyncio.Event(), asyncio.Event()))
    await spin(lambda: pool.stats()["opening"] == 1)
    closing = asyncio.create_task(pool.close(timeout=0.01))
    await closing
    await pool.open()
    pool.open_gate.set()  # the old open finishes now, after the reopen
    with pytest.raises(ConnectionLost, match="pool is closed"):
        await late
    await spin(lambda: pool.stats()["closing"] == 0)
    assert all(c.closed for c in pool.conns)  # the late connection was closed, not kept
    check(pool, size=0, in_use=0, idle=0)
    async with pool.acquire() as conn:
        assert not conn.closed
    await pool.close()
