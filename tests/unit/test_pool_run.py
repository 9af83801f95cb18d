"""``Pool.run``: one borrow around one call, with the adapter's error translation
deciding whether the connection is reused (the fake pool comes from test_pool)."""

from __future__ import annotations

import pytest

from diaspora_async.errors import ConnectionLost, IntegrityError

from .test_pool import FakeConn, FakePool, check


def _translate(exc: BaseException) -> BaseException:
    if isinstance(exc, OSError):
        return ConnectionLost("fake", "socket gone")
    if isinstance(exc, LookupError):
        return IntegrityError("fake", "duplicate")
    return exc


async def test_run_returns_the_result_and_the_connection() -> None:
    pool = FakePool(max_size=2)
    seen: list[FakeConn] = []

    async def call(conn: FakeConn, plus: int) -> int:
        check(pool, in_use=1, idle=0)
        seen.append(conn)
        return conn.n + plus

    assert await pool.run(call, 41, translate=_translate) == 41
    assert await pool.run(call, 1) == 1
    assert seen[0] is seen[1]  # returned to idle and lent again, not reopened
    check(pool, size=1, idle=1, in_use=0, opened=1)
    await pool.close()


async def test_run_judges_reuse_by_the_translated_error() -> None:
    pool = FakePool(max_size=1)

    async def lost(conn: FakeConn) -> None:
        raise OSError("reset by peer")

    async def duplicate(conn: FakeConn) -> None:
        raise KeyError("k")

    with pytest.raises(IntegrityError) as dup:
        await pool.run(duplicate, translate=_translate)
    assert isinstance(dup.value.__cause__, KeyError)
    check(pool, size=1, idle=1, discarded=0)  # the server answered: kept

    with pytest.raises(ConnectionLost) as gone:
        await pool.run(lost, translate=_translate)
    assert isinstance(gone.value.__cause__, OSError)
    await pool.settle()
    check(pool, size=0, idle=0, discarded=1)  # unknown state: closed, slot freed
    assert pool.conns[0].closed

    async def fine(conn: FakeConn) -> int:
        return conn.n

    assert await pool.run(fine, translate=_translate) == 1  # a fresh connection
    await pool.close()


async def test_run_without_translation_raises_as_is_and_discards() -> None:
    pool = FakePool(max_size=1)

    async def boom(conn: FakeConn) -> None:
        raise RuntimeError("driver bug")

    with pytest.raises(RuntimeError, match="driver bug"):
        await pool.run(boom)
    await pool.settle()
    check(pool, size=0, discarded=1)
    await pool.close()
