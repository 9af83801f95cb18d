"""The one async connection pool every networked adapter borrows its connections from.

It sits between an adapter and its driver: user code -> Model/Entity -> data source ->
adapter -> this pool -> driver (aiomysql, redis.asyncio, pymongo, httpx). An adapter
subclasses ``Pool`` and supplies ``_open``/``_close`` (optionally ``_ping``/``_alive``);
the pool owns sizing, FIFO waiting with a timeout, checkout health checks and shutdown.
Adapters borrow with ``async with pool.acquire() as conn`` or, on a per-operation path,
``await pool.run(call, *args, translate=...)`` (the same borrow without a lease object).
Each borrow is one operation bounded by ``options.timeout`` (``pool_lease.py``).
Bookkeeping lives in synchronous methods and every await sits outside them, so a task
cancelled at any await point leaves the counters right, and a connection in an unknown
state (its block raised, its ping was cut short) is closed in the background, never reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, TypeVar

from .. import errors
from ..errors import ConnectionLost, DiasporaError, OperationTimeout, PoolTimeout
from .pool_entries import FIT, PING, UNFIT
from .pool_entries import Entry as _Entry
from .pool_entries import Slot as _Slot
from .pool_lease import Deadlines, Lease, expire
from .pool_options import PoolOptions

__all__ = ["Pool", "PoolOptions"]

C = TypeVar("C")
T = TypeVar("T")


class Pool(ABC, Generic[C]):
    """Async pool of driver connections of type ``C``; networked adapters subclass it.

    Borrow with ``async with pool.acquire() as conn:``. Leaving the block normally returns
    the connection; if the block raises, it is closed unless ``_reusable_after`` says it
    is still in a known state; if it outlived ``options.timeout``, it is closed.

    Args:
        source: the data source's name, carried by every error the pool raises.
        options: sizing and timeouts.
        classify: the adapter's ``classify_connect_error``: turns what ``_open`` raised
            into our error (e.g. ``AccessDenied``, which is never retried); without it, a
            failed open is ``ConnectionLost``.
    """

    def __init__(
        self,
        source: str,
        options: PoolOptions,
        *,
        classify: Callable[[Exception], DiasporaError] | None = None,
    ) -> None:
        self.source = source
        self.options = options
        self._classify = classify
        self._idle: deque[_Entry[C]] = deque()  # right end = last returned (LIFO keeps warm)
        self._borrowed: set[_Entry[C]] = set()  # owned by a task, also while being pinged
        self._opening: set[_Slot] = set()  # slots whose _open() runs or is granted
        self._waiters: deque[asyncio.Future[_Entry[C] | _Slot]] = deque()
        self._closers: set[asyncio.Task[None]] = set()
        self._drained: asyncio.Event | None = None  # set when close() has nothing out
        self._closed = self._started = False
        # Bumped by close(): an open or check-out that began before it must not hand its
        # connection to the pool reopened afterwards.
        self._generation = 0
        self._counts = {"opened": 0, "discarded": 0, "timeouts": 0}
        self._deadlines = Deadlines(options.timeout)  # every operation's ``timeout``

    # --- subclass hooks ---------------------------------------------------------------

    @abstractmethod
    async def _open(self) -> C:
        """Open one connection; any non-Diaspora exception becomes ``ConnectionLost``."""

    @abstractmethod
    async def _close(self, conn: C) -> None:
        """Close one connection gracefully; the pool swallows its errors."""

    async def _ping(self, conn: C) -> None:
        """Round-trip to the server at checkout; raise if the connection is dead."""

    def _alive(self, conn: C) -> bool:
        """Cheap synchronous check at checkout (e.g. has the socket been closed?)."""
        return True

    # Reuse a connection whose operation timed out? Only one a cancelled await cannot
    # disturb and nothing can replace (SQLite's ":memory:"); else its state is unknown.
    _keep_timed_out = False

    def _reusable_after(self, exc: BaseException) -> bool:
        """Whether a connection whose block raised ``exc`` may be reused.

        Default: True only for ``IntegrityError``, ``QueryError`` and ``ValidationError``
        (the server answered, or no I/O happened); anything else, ``ConnectionLost`` and
        ``CancelledError`` included, may leave a reply half-read, so the connection is
        closed. Adapters override this for their driver's errors.
        """
        return isinstance(exc, errors.IntegrityError | errors.QueryError | errors.ValidationError)

    def _clock(self) -> float:
        """Seconds for connection ages (recycle, health checks); tests replace it."""
        return time.monotonic()

    # --- public API -------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once ``close()`` has been called."""
        return self._closed

    async def open(self) -> None:
        """Open ``min_size`` connections (one, then the rest at once); idempotent.

        A pool whose ``close()`` has finished can be opened again (a registry that is
        connected, closed and connected again reuses its adapters).

        Raises:
            ConnectionLost: the pool is still closing, or a connection could not be opened
                (those that did open stay idle; calling ``open()`` again retries).
        """
        if self._closed and not (self._borrowed or self._opening or self._closers):
            self._closed = self._started = False
            self._drained = None
        self._raise_if_closed()
        if self._started:
            return
        self._started = True
        missing = self.options.min_size - self._size()
        try:
            if missing > 0:
                # One first: a refusal (bad password) is one attempt, not min_size, and
                # one-time setup (SQLite's WAL switch) runs before the rest open together.
                await self._warm()
                missing -= 1
            results = await asyncio.gather(
                *(self._warm() for _ in range(missing)), return_exceptions=True
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        except BaseException:
            self._started = False  # failed or cancelled: the next open() tries again
            raise

    def acquire(self, what: str | None = None) -> AbstractAsyncContextManager[C]:
        """Borrow a connection for one operation: ``async with pool.acquire() as conn: ...``.

        ``what`` names the operation in ``OperationTimeout`` (e.g. ``"read"``).

        Raises:
            PoolTimeout: on entering, nothing could be borrowed or opened within
                ``acquire_timeout``.
            ConnectionLost: on entering, the pool is closed or opening a connection failed.
            OperationTimeout: entering plus the block outlived ``options.timeout``.
        """
        return Lease(self, what)

    async def run(
        self,
        call: Callable[..., Awaitable[T]],
        *args: Any,
        translate: Callable[[BaseException], BaseException] | None = None,
        what: str | None = None,
    ) -> T:
        """``async with acquire(what) as conn: return await call(conn, *args)``, for an
        adapter's per-operation path: no lease object and no enter/exit coroutines.

        ``translate`` turns what ``call`` raised into the adapter's error before the
        pool judges reuse (``_reusable_after``); the original is its ``__cause__``.
        """
        key = self._deadlines.start()
        entry = None  # until checked out: nothing to give back, nothing to translate
        try:
            entry = self._take_ready() or await self._checkout()
            result = await call(entry.conn, *args)
        except BaseException as exc:
            late = self._timed_out(what) if self._deadlines.overdue(key) else None
            ours = exc if translate is None or entry is None else translate(exc)
            if entry is not None:
                self._give_back(entry, late or ours)
            if late is not None:
                raise late from exc
            if ours is exc:
                raise
            raise ours from exc
        self._deadlines.finish(key)
        self._give_back(entry, None)
        return result

    async def close(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - API
        """Stop lending, close idle connections, wait for borrowed ones; idempotent.

        Waiters get ``ConnectionLost``. Borrowed connections are closed as they come back;
        those still out after ``timeout`` are closed under their borrower.

        Args:
            timeout: seconds to wait for borrowed connections (``options.close_timeout``).
        """
        if not self._closed:
            self._closed = True
            self._generation += 1
            for fut in self._waiters:
                if not fut.done():
                    fut.set_exception(self._closed_error())
            self._waiters.clear()
            while self._idle:
                self._spawn_close(self._idle.pop().conn)
        if self._borrowed or self._opening:
            self._drained = self._drained or asyncio.Event()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(
                    self.options.close_timeout if timeout is None else timeout
                ):
                    await self._drained.wait()
        for entry in self._borrowed:
            self._spawn_close(entry.conn)
        self._borrowed.clear()  # a late return is then a no-op
        self._opening.clear()  # a late _open() result is closed by _checkout's closed check
        while self._closers:
            await asyncio.wait(set(self._closers))  # unlike gather(), never cancels them

    def stats(self) -> dict[str, int]:
        """A synchronous snapshot of the bookkeeping.

        Returns:
            ``size`` (= idle + in_use + opening), ``in_use`` (borrowed, or being checked
            out), ``idle``, ``opening``, ``waiting``, ``max_size``, ``closing`` (closes
            still running) and the totals ``opened``, ``discarded`` (closed because a
            check failed or their block raised) and ``timeouts``.
        """
        return {
            "size": self._size(),
            "in_use": len(self._borrowed),
            "idle": len(self._idle),
            "opening": len(self._opening),
            "waiting": sum(not f.done() for f in self._waiters),
            "max_size": self.options.max_size,
            "closing": len(self._closers),
            **self._counts,
        }

    # --- checkout: the awaits; each one undoes its own bookkeeping on any exit -----------

    async def _checkout(self) -> _Entry[C]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.acquire_timeout
        generation = self._generation
        while True:
            self._raise_if_closed()
            if loop.time() >= deadline:
                raise self._timeout_error()
            grant = self._take_idle() or self._reserve() or await self._wait(deadline)
            if isinstance(grant, _Slot):
                entry = await self._connect(grant, deadline)
            elif await self._usable(grant, deadline):
                entry = grant
            else:
                continue  # it was discarded: take or open another
            if self._closed or generation != self._generation:  # close() began meanwhile
                self._put_back(entry)
                raise self._closed_error()
            return entry

    async def _wait(self, deadline: float) -> _Entry[C] | _Slot:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[_Entry[C] | _Slot] = loop.create_future()
        self._waiters.append(fut)
        # A bare timer failing the future: under load most acquires wait, and this is
        # cheaper than an asyncio.timeout() scope per waiter.
        timer = loop.call_at(deadline, expire, fut)
        try:
            return await fut
        except BaseException as exc:
            if not fut.done() or fut.cancelled():
                fut.cancel()
                with contextlib.suppress(ValueError):  # _next_waiter may have dropped it
                    self._waiters.remove(fut)
            elif fut.exception() is None:
                # Handed a connection or slot, but cancelled (or timed out) before resuming:
                # pass it on rather than leak it.
                grant = fut.result()
                if isinstance(grant, _Slot):
                    self._release_slot(grant)
                else:
                    self._put_back(grant)
            if isinstance(exc, TimeoutError):
                raise self._timeout_error() from None
            raise
        finally:
            timer.cancel()

    async def _connect(self, slot: _Slot, deadline: float) -> _Entry[C]:
        limit = min(asyncio.get_running_loop().time() + self.options.connect_timeout, deadline)
        scope = asyncio.timeout_at(limit)
        generation = self._generation
        try:
            async with scope:
                conn = await self._open()
        except BaseException as exc:
            self._release_slot(slot)
            if isinstance(exc, TimeoutError) and scope.expired():
                if limit >= deadline:
                    raise self._timeout_error() from exc
                timeout = self.options.connect_timeout
                raise ConnectionLost(self.source, f"no connection within {timeout:g} s") from exc
            if isinstance(exc, DiasporaError) or not isinstance(exc, Exception):
                raise
            raise self._connect_error(exc) from exc
        self._counts["opened"] += 1
        if generation != self._generation:  # the pool closed (and maybe reopened) meanwhile
            self._spawn_close(conn)
            self._release_slot(slot)  # lets a close() waiting for this open finish
            raise self._closed_error()
        self._opening.discard(slot)  # if close() began meanwhile, the caller closes it
        now = self._clock()
        entry = _Entry(conn, now, now)
        self._borrowed.add(entry)
        return entry

    def _connect_error(self, exc: Exception) -> DiasporaError:
        """What a failed ``_open`` raises: the adapter's classification (one attempt; an
        ``AccessDenied`` is final), else ``ConnectionLost``."""
        if self._classify is not None:
            with contextlib.suppress(Exception):  # a buggy classifier must not hide exc
                return self._classify(exc)
        return ConnectionLost(self.source, f"could not connect: {exc!r}")

    def _fitness(self, entry: _Entry[C]) -> int:
        """``FIT``, ``PING`` (idle long enough for a health check) or ``UNFIT``."""
        opts, now = self.options, self._clock()
        try:
            alive = self._alive(entry.conn)
        except Exception:
            alive = False
        if not alive or (opts.recycle is not None and now - entry.created >= opts.recycle):
            return UNFIT
        if opts.health_check_interval is None or now - entry.last_used < opts.health_check_interval:
            return FIT
        return PING

    def _take_ready(self) -> _Entry[C] | None:
        """The usual checkout, without an await: the newest idle connection if it is fit
        as it is; otherwise None and ``_checkout`` decides (ping, discard, open, wait)."""
        if self._closed or not self._idle or self._fitness(self._idle[-1]) != FIT:
            return None
        return self._take_idle()

    async def _usable(self, entry: _Entry[C], deadline: float) -> bool:
        """Check a connection taken from idle; if unfit, discard it and return False."""
        fitness = self._fitness(entry)
        if fitness == UNFIT:
            self._discard(entry)
            return False
        if fitness == FIT:
            return True
        limit = min(asyncio.get_running_loop().time() + self.options.connect_timeout, deadline)
        try:
            async with asyncio.timeout_at(limit):
                await self._ping(entry.conn)
        except BaseException as exc:
            self._discard(entry)  # a failed or interrupted ping leaves it in an unknown state
            if not isinstance(exc, Exception):
                raise
            return False
        return True

    async def _warm(self) -> None:
        slot = self._reserve()  # reserved here: a task cancelled before it starts holds none
        if slot is not None:
            key = self._deadlines.start()  # an operation too: a hung server fails in time
            try:
                entry = await self._connect(slot, math.inf)
            except BaseException as exc:
                if self._deadlines.overdue(key):
                    raise self._timed_out("connect") from exc
                raise
            self._deadlines.finish(key)
            self._put_back(entry)

    # --- bookkeeping: synchronous, so no cancellation can land halfway through ----------

    def _size(self) -> int:
        return len(self._idle) + len(self._borrowed) + len(self._opening)

    def _take_idle(self) -> _Entry[C] | None:
        if not self._idle:
            return None
        entry = self._idle.pop()
        self._borrowed.add(entry)
        return entry

    def _reserve(self) -> _Slot | None:
        if self._size() >= self.options.max_size:
            return None
        slot = _Slot()
        self._opening.add(slot)
        return slot

    def _next_waiter(self) -> asyncio.Future[_Entry[C] | _Slot] | None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():  # skip waiters cancelled but not yet resumed
                return fut
        return None

    def _put_back(self, entry: _Entry[C]) -> None:
        """Return a connection in a known state: to the first waiter, else to idle."""
        if entry not in self._borrowed:
            return  # close() already closed it
        entry.last_used = self._clock()  # idle time, for health checks, starts now
        if self._closed:
            self._borrowed.discard(entry)
            self._spawn_close(entry.conn)
            self._check_drained()
        elif self._waiters and (fut := self._next_waiter()):
            fut.set_result(entry)  # stays borrowed: ownership moves to the waiter
        else:
            self._borrowed.discard(entry)
            self._idle.append(entry)

    def _give_back(self, entry: _Entry[C], exc: BaseException | None) -> None:
        """End a borrow: return the connection, or close it if ``exc`` (what the borrower's
        block raised) may have left it in an unknown state (``_reusable_after``)."""
        reuse = exc is None
        if isinstance(exc, OperationTimeout):
            reuse = self._keep_timed_out
        elif exc is not None:
            with contextlib.suppress(Exception):  # a buggy override must not leak the slot
                reuse = self._reusable_after(exc)
        if reuse:
            self._put_back(entry)
        else:
            self._discard(entry)

    def _discard(self, entry: _Entry[C]) -> None:
        """Close a connection in a bad or unknown state and free its slot."""
        if entry in self._borrowed:
            self._borrowed.discard(entry)
            self._counts["discarded"] += 1
            self._spawn_close(entry.conn)
            self._slot_freed()

    def _release_slot(self, slot: _Slot) -> None:
        if slot in self._opening:
            self._opening.discard(slot)
            self._slot_freed()

    def _slot_freed(self) -> None:
        if self._closed:
            self._check_drained()
        elif fut := self._next_waiter():  # FIFO: the first waiter opens in the freed slot
            slot = _Slot()
            self._opening.add(slot)
            fut.set_result(slot)

    def _check_drained(self) -> None:
        if self._drained is not None and not self._borrowed and not self._opening:
            self._drained.set()

    def _spawn_close(self, conn: C) -> None:
        # A task of its own: the cancellation that condemned the connection must neither
        # interrupt its close nor be held up by it. close() awaits these.
        task = asyncio.get_running_loop().create_task(self._close_quietly(conn))
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def _close_quietly(self, conn: C) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.options.close_timeout):
                await self._close(conn)

    def _raise_if_closed(self) -> None:
        if self._closed:
            raise self._closed_error()

    def _closed_error(self) -> ConnectionLost:
        return ConnectionLost(self.source, "pool is closed")

    def _timed_out(self, what: str | None) -> OperationTimeout:
        return OperationTimeout(self.source, self._deadlines.seconds, what)

    def _timeout_error(self) -> PoolTimeout:
        self._counts["timeouts"] += 1
        opts = self.options
        return PoolTimeout(
            self.source,
            f"no connection free after {opts.acquire_timeout:g} s "
            f"(max_size={opts.max_size}, in use={len(self._borrowed)})",
        )
