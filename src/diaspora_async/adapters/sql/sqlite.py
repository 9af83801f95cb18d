"""The ``sqlite`` adapter: SQLite through aiosqlite, on the common pool base.

Sits under a data source (``create_data_source("local", "sqlite", path="app.db")``) and
above aiosqlite. SQL comes from the shared compiler (``compile.py``, ``SQLiteDialect`` in
``dialect.py``) and the shared SQL adapter (``adapter.py``). A file database gets a pool
of aiosqlite connections (WAL mode, so readers never wait for the writer); ``":memory:"``
gets exactly one connection, opened at connect and kept until close, because each
in-memory connection is a database of its own. Each operation runs as ONE job on the
connection's worker thread (statement, fetch and, for a batch, BEGIN..COMMIT), so a
cancelled task can never leave a transaction half done and the connection is always fit
for reuse. The aiosqlite internals this needs are used only in ``_aiosqlite.py``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from queue import SimpleQueue
from typing import Any, ClassVar, TypeVar

import aiosqlite

from ...errors import ConfigError, ConnectionLost, DataSourceError, DiasporaError, IntegrityError
from ..base import Capabilities
from ..pool import Pool, PoolOptions
from ._aiosqlite import is_open, submit
from .adapter import SQLAdapter, Statement
from .dialect import SQLiteDialect

__all__ = ["SQLiteAdapter"]

T = TypeVar("T")

_TYPES = {
    "id": "TEXT",
    "str": "TEXT",
    "indexed_str": "TEXT",
    "int": "INTEGER",
    "float": "REAL",
    "bool": "INTEGER",
    "datetime": "TEXT",
    "list": "TEXT",
    "dict": "TEXT",
    "any": "TEXT",
    "rev": "TEXT",  # compared with the default BINARY collation: byte-wise, as revisions want
}


def _fetch_job(db: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    return db.execute(sql, params).fetchall()


def _run_job(
    db: sqlite3.Connection, statements: Sequence[Statement], counted: int | None = None
) -> int:
    if len(statements) == 1:
        sql, params = statements[0]
        return db.execute(sql, params).rowcount  # one statement is atomic on its own
    db.execute("BEGIN IMMEDIATE")
    try:
        counts = [db.execute(sql, params).rowcount for sql, params in statements]
        total = sum(counts[:counted])
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return total


_COMMIT = object()
_ROLLBACK = object()


class _Abandoned(Exception):
    """The task feeding a pipelined batch stopped early; the batch was rolled back."""


def _chunks_job(db: sqlite3.Connection, chunks: SimpleQueue[Any]) -> int:
    # Runs on the worker thread: statements arrive as the event loop's thread encodes them
    # (waiting on the queue and stepping SQLite both release the GIL).
    db.execute("BEGIN IMMEDIATE")
    total = 0
    try:
        while (item := chunks.get()) is not _COMMIT:
            if item is _ROLLBACK:
                raise _Abandoned
            sql, params = item
            total += db.execute(sql, params).rowcount
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return total


def _script_job(db: sqlite3.Connection, statements: list[str]) -> None:
    for sql in statements:
        db.execute(sql)


def _consume(task: asyncio.Future[Any]) -> None:
    # Whoever stopped waiting for the job (a cancelled caller) still consumes its outcome.
    if not task.cancelled():
        task.exception()


async def _run_pragmas(conn: aiosqlite.Connection, pragmas: list[str]) -> None:
    # Each cursor is closed at once: a ``journal_mode`` statement left un-reset keeps
    # the file locked, and every other connection's first statement then fails
    # "database is locked" once its busy timeout runs out.
    for pragma in pragmas:
        async with conn.execute(pragma) as cursor:
            await cursor.fetchall()


async def _set_up_file(conn: aiosqlite.Connection, pragmas: list[str], patience: float) -> None:
    """Run the connection's pragmas and put the file in WAL mode. Another process (or
    registry) setting up the same new file makes SQLite answer "locked" at once, without
    the busy handler, so retry the whole setup with backoff for ``patience`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    delay = 0.001
    while True:
        try:
            await _run_pragmas(conn, [*pragmas, "PRAGMA journal_mode = WAL"])
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or loop.time() >= deadline:
                raise
        await asyncio.sleep(delay)  # a back-off between attempts, not a synchronisation
        delay = min(delay * 2, 0.05)


class _SQLitePool(Pool[aiosqlite.Connection]):
    def __init__(
        self, source: str, options: PoolOptions, path: str, pragmas: list[str], wal: float | None
    ) -> None:
        super().__init__(source, options)
        self._path = path
        self._pragmas = pragmas
        # WAL is a property of the file, set once: the first connection switches it while
        # the pool's other connections wait (racing for the switch is "database is
        # locked" at once, whatever the busy timeout). ``wal``: seconds to keep trying when
        # another process switches the same file; None for ":memory:".
        self._wal = wal
        self._wal_set = False
        self._setup = asyncio.Lock()
        # A timed-out job still runs whole on the connection's thread (ending in COMMIT or
        # ROLLBACK), so the connection stays in a known state; the ":memory:" one IS the
        # database, so it is kept. A file's connection is replaced like any other store's
        # (a fresh thread, rather than queueing behind a job that may be stuck on a lock).
        self._keep_timed_out = wal is None

    def _file_ready(self) -> bool:
        # A method, not the attribute: the flag changes while this task awaits the lock.
        return self._wal_set

    def reset(self) -> None:
        """Check the file's journal mode again on the next open (after a close)."""
        self._wal_set = False

    async def _open(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self._path, isolation_level=None)
        try:
            if self._wal is None or self._wal_set:
                await _run_pragmas(conn, self._pragmas)
            else:
                async with self._setup:
                    if self._file_ready():  # another connection of this pool did it meanwhile
                        await _run_pragmas(conn, self._pragmas)
                    else:
                        await _set_up_file(conn, self._pragmas, self._wal)
                        self._wal_set = True
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _close(self, conn: aiosqlite.Connection) -> None:
        await conn.close()

    async def _ping(self, conn: aiosqlite.Connection) -> None:
        await conn.execute("SELECT 1")

    # A connection closed under the pool (its thread stopped) is replaced at checkout, so
    # the operation that finds it still succeeds. (No wrapper: this runs at every checkout.)
    _alive = staticmethod(is_open)

    def _reusable_after(self, exc: BaseException) -> bool:
        # Jobs run whole on the worker thread (a cancelled await does not stop them and a
        # batch always ends in COMMIT or ROLLBACK), so only a dead connection is unfit.
        # Discarding needlessly would also lose a :memory: database.
        return not isinstance(exc, ConnectionLost)


class SQLiteAdapter(SQLAdapter):
    """SQLite via aiosqlite: ``create_data_source("local", "sqlite", path="app.db")``.

    Options: ``path`` (a file, or ``":memory:"``, the default), ``busy_timeout``
    (seconds a writer waits for the file lock, default 5), and the pool options
    (``timeout``, seconds per operation, default 30; ``max_size`` defaults to 2 for a
    file and is always 1 for ``":memory:"``).

    Why 2: every connection is a worker thread, and they share the GIL. Two let one
    writer and one reader proceed together (WAL); more add thread hand-offs that cost
    more than they overlap (200 concurrent gets measured ~6% slower with 4 than with 2).
    """

    label = "sqlite"
    _pool: _SQLitePool
    extra = "sqlite"
    capabilities: ClassVar[Capabilities] = Capabilities(
        native_query=True,
        transactions=True,
        persistent=True,
        pooled=True,
        unique_indexes=True,
        write_with=True,
        keyset_paging=True,
    )
    dialect = SQLiteDialect()

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        config = dict(config)
        path = config.pop("path", ":memory:")
        if not isinstance(path, str) or not path:
            raise ConfigError(f"data source {name!r} (sqlite): path must be a file or ':memory:'")
        busy = config.pop("busy_timeout", 5)
        if isinstance(busy, bool) or not isinstance(busy, int | float) or busy < 0:
            raise ConfigError(f"data source {name!r} (sqlite): busy_timeout must be seconds >= 0")
        memory = path == ":memory:"
        config.setdefault("max_size", 2)
        if memory:
            # One connection, opened at connect() and never recycled: it IS the database.
            config.update(max_size=1, min_size=1, recycle=None)
        options = PoolOptions.from_config(config)
        super().__init__(name, config)
        pragmas = [f"PRAGMA busy_timeout = {int(busy * 1000)}"]
        if not memory:
            pragmas.append("PRAGMA synchronous = NORMAL")
        self.path = path
        self._pool = _SQLitePool(name, options, path, pragmas, None if memory else busy)

    async def connect(self) -> None:
        """Open the pool (the one connection of an in-memory database)."""
        self._pool.reset()
        await self._pool.open()

    def _types(self) -> tuple[Mapping[str, str], str, bool]:
        return _TYPES, " WITHOUT ROWID", False

    def _job(self, what: str, fn: Callable[..., T], *args: Any) -> Coroutine[Any, Any, T]:
        # Pool.run, not ``async with acquire()`` + ``translate_errors()``: this is every
        # operation's path, and the lease and the guard cost an object and four calls
        # (two of them coroutines), measured at ~2% of a single-row write.
        return self._pool.run(submit, fn, *args, translate=self.translated, what=what)

    # Plain functions handing back the pool's coroutine: no coroutine of their own.
    def _fetch(self, sql: str, params: Sequence[Any]) -> Coroutine[Any, Any, list[Sequence[Any]]]:
        return self._job("read", _fetch_job, sql, params)

    def _run(
        self, statements: Sequence[Statement], counted: int | None = None
    ) -> Coroutine[Any, Any, int]:
        return self._job("write", _run_job, statements, counted)

    async def _run_chunks(self, statements: Iterator[Statement]) -> int:
        # One job on the worker thread takes the statements from a queue, so this thread
        # encodes chunk k+1 while SQLite writes chunk k. The queue always gets its end
        # (commit, or rollback if encoding failed or this task was cancelled), so the
        # worker never waits forever and the batch is all or nothing.
        async with self._pool.acquire("write") as conn:
            with self.translate_errors():
                chunks: SimpleQueue[Any] = SimpleQueue()
                job = submit(conn, _chunks_job, chunks)
                job.add_done_callback(_consume)
                end = _ROLLBACK
                try:
                    for statement in statements:
                        if job.done():  # it failed: its error is raised below
                            break
                        chunks.put(statement)
                    end = _COMMIT
                finally:
                    chunks.put(end)
                result: int = await job
                return result

    async def _script(self, statements: list[str]) -> None:
        await self._job("schema change", _script_job, statements)

    def translate_error(self, exc: Exception) -> DiasporaError:
        """sqlite3/aiosqlite errors -> ours (duplicate key, closed connection)."""
        msg = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, sqlite3.IntegrityError):
            return IntegrityError(self.name, msg)
        closed = isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc)
        if closed or (isinstance(exc, ValueError) and "closed" in str(exc)):
            return ConnectionLost(self.name, msg)
        return DataSourceError(self.name, msg)
