"""The ``mysql`` adapter: MySQL 8 / MariaDB through aiomysql (or asyncmy), on the common pool.

Sits under a data source (``create_data_source("main", "mysql", url=...)``) and above the
driver. SQL comes from the shared compiler (``compile.py``, ``MySQLDialect`` in
``dialect.py``) and the shared SQL adapter (``adapter.py``); this module only opens
connections (autocommit, utf8mb4, UTC session time zone, FOUND_ROWS so UPDATE counts
matched rows), runs statements, and translates driver errors at one boundary
(``translate_errors`` right inside each ``acquire()``, so the pool sees our errors). The
driver's own pool is not used: connections live in our ``Pool`` subclass, which drops any
connection whose block failed at the connection level and keeps it after a plain server
error (e.g. a duplicate key).

``write``'s guarded upserts (``MySQLDialect.upsert``) report a refused row through the
statement's insert id (``cursor.lastrowid``, public in both drivers), because affected
rows cannot tell a refused row from an inserted one; ``_upsert`` reads that flag.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from ...errors import (
    AccessDenied,
    ConfigError,
    ConnectionLost,
    DataSourceError,
    DiasporaError,
    IntegrityError,
)
from ..base import Capabilities
from ..pool import Pool, PoolOptions
from .adapter import SQLAdapter, Statement
from .dialect import MySQLDialect

__all__ = ["MySQLAdapter"]

_FOUND_ROWS = 2  # CLIENT.FOUND_ROWS: UPDATE reports matched rows, not changed rows
_DUPLICATE = {1062, 1169, 1586, 1022}
# Server gone, connection lost/killed, server shutting down, packets out of order.
_LOST = {1053, 1927, 2003, 2006, 2013, 2014, 2045, 2055}
# Refused at connect: access denied (credentials), no access to / no such database.
_DENIED = {1044: "no access to the database", 1045: "bad credentials", 1049: "unknown database"}

_TYPES = {
    "id": "VARCHAR(64)",
    "str": "LONGTEXT",
    "indexed_str": "VARCHAR(768)",  # 768 x 4 bytes = InnoDB's 3072-byte key limit
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "datetime": "DATETIME(6)",
    "json_index_prefix": "255",
    # Fixed-width lowercase hex, compared byte-wise (a case-insensitive collation would
    # still order them right, but binary is what revisions.py promises).
    "rev": "CHAR(24) CHARACTER SET ascii COLLATE ascii_bin",
}
# Integer overflow raised on purpose by an upsert meeting another row's unique value
# (``MySQLDialect.upsert``): the expression text in the message carries this marker.
_UNIQUE_MARK = "18446744073709551615 + "


_Read = Callable[[Any, int], int]


def _affected(cur: Any, affected: int) -> int:
    return int(affected)


def _refused(cur: Any, affected: int) -> int:
    """An upsert's refusal flag: bit 0 of the insert id (``MySQLDialect.upsert``)."""
    return int(cur.lastrowid or 0) & 1


def _nothing(cur: Any, affected: int) -> int:
    """A statement whose outcome is not counted (``write_with``'s inserts)."""
    return 0


def _unmatched(cur: Any, affected: int) -> int:
    """A one-row UPDATE that matched nothing (FOUND_ROWS: matched rows are counted)."""
    return 1 - int(affected)


def _version(text: str) -> tuple[int, ...]:
    """``"8.0.35-log"`` -> ``(8, 0, 35)``; what does not parse counts as (0,)."""
    parts = []
    for part in text.split("-")[0].split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts) or (0,)


def _errno(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


async def _settle(task: asyncio.Task[Any] | None, cancel: bool) -> None:
    """Wait for ``task`` (cancelled first if ``cancel``) and consume its outcome."""
    if task is None:
        return
    if cancel:
        task.cancel()
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()


class _Driver:
    """The small difference between aiomysql and asyncmy: how to connect, liveness."""

    def __init__(self, name: str) -> None:
        if name not in ("aiomysql", "asyncmy"):
            raise ConfigError(f"mysql driver must be 'aiomysql' or 'asyncmy', got {name!r}")
        self.name = name
        try:
            self.module = importlib.import_module(name)
        except ImportError as exc:  # ModuleNotFoundError, or a broken install
            extra = "mysql" if name == "aiomysql" else "asyncmy"
            raise ConfigError(
                f"the mysql adapter's driver {name!r} is not installed: "
                f"pip install 'diaspora_async[{extra}]'"
            ) from exc

    async def connect(self, settings: Mapping[str, Any], seconds: float) -> Any:
        db_key = "db" if self.name == "aiomysql" else "database"
        return await self.module.connect(
            host=settings["host"], port=settings["port"], user=settings["user"],
            password=settings["password"], **{db_key: settings["db"]},
            autocommit=True, charset="utf8mb4", client_flag=_FOUND_ROWS,
            init_command="SET time_zone = '+00:00', sql_notes = 0", connect_timeout=seconds,
        )  # fmt: skip

    async def cursor(self, conn: Any) -> Any:
        """A buffered cursor: execute() reads the whole reply, so it needs no close()."""
        if self.name == "aiomysql":
            return await conn.cursor()
        return conn.cursor()

    def alive(self, conn: Any) -> bool:
        # A server-side KILL or restart closes the socket: the reader has seen EOF.
        reader = getattr(conn, "_reader", None)  # aiomysql
        if reader is not None and reader.at_eof():
            return False
        proto = getattr(conn, "_proto", None)  # asyncmy
        if proto is not None and proto.eof:
            return False
        connected = getattr(conn, "connected", None)
        if connected is not None:
            return bool(connected)
        return not conn.closed


class _MySQLPool(Pool[Any]):
    def __init__(
        self,
        source: str,
        options: PoolOptions,
        driver: _Driver,
        settings: dict[str, Any],
        classify: Callable[[Exception], DiasporaError] | None = None,
    ) -> None:
        super().__init__(source, options, classify=classify)
        self._driver = driver
        self._settings = settings

    async def _open(self) -> Any:
        return await self._driver.connect(self._settings, self.options.connect_timeout)

    async def _close(self, conn: Any) -> None:
        try:
            await conn.ensure_closed()  # polite COM_QUIT
        finally:
            conn.close()

    async def _ping(self, conn: Any) -> None:
        await conn.ping(reconnect=False)

    def _alive(self, conn: Any) -> bool:
        return self._driver.alive(conn)

    def _reusable_after(self, exc: BaseException) -> bool:
        # A server error reply (code < 2000) leaves the protocol in step; a client-side
        # error (2xxx), a timeout or a cancellation may have left a reply half read.
        if super()._reusable_after(exc):
            return True
        if isinstance(exc, DataSourceError) and not isinstance(exc, ConnectionLost):
            code = _errno(exc.__cause__) if exc.__cause__ is not None else None
            return code is not None and 1000 <= code < 2000 and code not in _LOST
        return False


def _settings(name: str, config: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "db": None,
    }  # fmt: skip
    url = config.pop("url", None)
    if url is not None:
        parts = urlsplit(str(url))
        if parts.scheme not in ("mysql", "mariadb", "mysql+aiomysql", "mysql+asyncmy"):
            raise ConfigError(f"data source {name!r} (mysql): url must be mysql://..., got {url!r}")
        settings.update(
            host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
            user=unquote(parts.username or "root"), password=unquote(parts.password or ""),
            db=parts.path.lstrip("/") or None,
        )  # fmt: skip
    if "database" in config:
        config["db"] = config.pop("database")
    for key in ("host", "port", "user", "password", "db"):
        if key in config:
            settings[key] = config.pop(key)
    if not settings["db"]:
        raise ConfigError(f"data source {name!r} (mysql): no database given (url path or db=)")
    try:
        settings["port"] = int(settings["port"])
    except (TypeError, ValueError):
        raise ConfigError(f"data source {name!r} (mysql): bad port {settings['port']!r}") from None
    return settings


class MySQLAdapter(SQLAdapter):
    """MySQL / MariaDB: ``create_data_source("main", "mysql", url="mysql://u:p@h:3306/db")``.

    Options: ``url`` or ``host``/``port``/``user``/``password``/``db``, ``driver``
    (``"aiomysql"``, the default, or ``"asyncmy"``), and the pool options (``timeout``,
    seconds per operation, default 30; ``min_size``, ``max_size``, ``acquire_timeout``,
    ``connect_timeout``, ``recycle``, ``health_check_interval``, ``close_timeout``).
    Neither driver bounds a reply's wait, so ``timeout`` is what stops a hung server.
    """

    label = "mysql"
    extra = "mysql"
    capabilities: ClassVar[Capabilities] = Capabilities(
        native_query=True,
        transactions=True,
        persistent=True,
        pooled=True,
        unique_indexes=True,
        write_with=True,
        keyset_paging=True,
    )
    dialect = MySQLDialect()

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        config = dict(config)
        driver = _Driver(str(config.pop("driver", "aiomysql")))
        settings = _settings(name, config)
        options = PoolOptions.from_config(config)
        super().__init__(name, config)
        self.driver = driver.name
        self._driver = driver
        self._pool = _MySQLPool(name, options, driver, settings, self.classify_connect_error)
        self._mariadb = True
        self._version = ""

    # -- lifecycle ---------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the pool and read the server's version and packet limit."""
        await self._pool.open()
        try:
            ((version, packet),) = await self._fetch("SELECT VERSION(), @@max_allowed_packet", ())
        except BaseException:
            await self._pool.close()
            raise
        self._version = str(version)
        self._mariadb = "mariadb" in self._version.lower()
        # Escaping can double a string and UTF-8 takes up to 4 bytes a character.
        self._max_chars = max(64 * 1024, min(int(packet) // 8, 4 * 1024 * 1024))

    def _types(self) -> tuple[Mapping[str, str], str, bool]:
        # MariaDB's JSON is LONGTEXT + JSON_VALID (utf8mb4_bin), so the canonical text is
        # kept verbatim; MySQL 8's binary JSON would rewrite it, so plain text there.
        nopad = "utf8mb4_nopad_bin" if self._mariadb else "utf8mb4_0900_bin"
        json = "JSON" if self._mariadb else "LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        types = {**_TYPES, "list": json, "dict": json, "any": json}
        # MySQL >= 8.0.20 warns on VALUES(col) (and aiomysql then asks SHOW WARNINGS, a
        # round trip); row aliases exist from 8.0.19, never in MariaDB.
        if not self._mariadb and _version(self._version) >= (8, 0, 19):
            types["upsert_alias"] = "`_new`"
        return types, f" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={nopad}", True

    # -- the one error boundary --------------------------------------------------------
    def translate_error(self, exc: Exception) -> DiasporaError:
        """Driver errors -> ours: duplicate key, lost connection, anything else."""
        code = _errno(exc)
        msg = f"{type(exc).__name__}: {exc}"
        if code in _DUPLICATE:
            return IntegrityError(self.name, msg)
        if code == 1690 and _UNIQUE_MARK in str(exc):
            return IntegrityError(self.name, f"duplicate value for a unique field ({msg})")
        lost = code in _LOST or type(exc).__name__ == "InterfaceError"
        if lost or isinstance(exc, ConnectionError | OSError | asyncio.IncompleteReadError):
            return ConnectionLost(self.name, msg)
        return DataSourceError(self.name, msg)

    def classify_connect_error(self, exc: Exception) -> DiasporaError:
        """Access denied (1045), no access to (1044) or unknown database (1049) ->
        ``AccessDenied`` (not retried); anything else -> ``ConnectionLost``."""
        what = _DENIED.get(_errno(exc) or 0)
        if what is not None:
            return AccessDenied(
                self.name,
                f"server refused the connection ({what}): {type(exc).__name__}: {exc}; "
                "check the url's user, password and database (retrying cannot help)",
            )
        return super().classify_connect_error(exc)

    # -- driver primitives -------------------------------------------------------------
    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        try:
            return await self._fetch_once(sql, params)
        except ConnectionLost:
            # A read is safe to repeat: the dead connection is gone, try a fresh one.
            if self._pool.closed:
                raise
            return await self._fetch_once(sql, params)

    async def _fetch_once(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        async with self._pool.acquire("read") as conn:
            with self.translate_errors():
                cur = await self._driver.cursor(conn)
                await cur.execute(sql, params)
                rows: list[Sequence[Any]] = await cur.fetchall()
                return rows

    def _run(
        self, statements: Sequence[Statement], counted: int | None = None
    ) -> Coroutine[Any, Any, int]:
        return self._execute(statements, counted, _affected)

    async def _upsert(self, statements: Sequence[Statement] | Iterator[Statement], n: int) -> bool:
        # Affected rows cannot tell an insert (1) from a refused row (1, FOUND_ROWS): the
        # upsert flags a refusal in its insert id instead (``MySQLDialect.upsert``).
        if isinstance(statements, Iterator):
            return bool(await self._run_chunks(statements, _refused))
        return bool(await self._execute(statements, None, _refused))

    async def _upsert_with(
        self, upserts: Sequence[Statement], extra: Sequence[Statement], n: int
    ) -> bool:
        reads = [_refused] * len(upserts) + [_nothing] * len(extra)
        return bool(await self._execute([*upserts, *extra], None, reads))

    async def _run_each(self, statements: Sequence[tuple[Statement, bool]]) -> bool:
        reads = [_refused if upsert else _unmatched for _, upsert in statements]
        return bool(await self._execute([s for s, _ in statements], None, reads))

    async def _execute(
        self,
        statements: Sequence[Statement],
        counted: int | None,
        read: _Read | Sequence[_Read],
    ) -> int:
        """Run ``statements`` (a transaction if several); sum ``read(cursor, affected)``
        of the first ``counted`` (None: all), ``read`` being one or one per statement."""
        reads = [read] * len(statements) if callable(read) else read
        async with self._pool.acquire("write") as conn:
            with self.translate_errors():
                cur = await self._driver.cursor(conn)
                if len(statements) == 1:
                    sql, params = statements[0]
                    return reads[0](cur, await cur.execute(sql, params))
                # One round trip for the whole transaction: BEGIN, the statements and
                # COMMIT sent as one multi-statement query (both drivers connect with
                # CLIENT.MULTI_STATEMENTS; the values are escaped by the driver, as for
                # any query), each statement's outcome read from its own result set. A
                # statement that fails stops the server there, before COMMIT.
                text = ";".join(["BEGIN", *(cur.mogrify(s, p) for s, p in statements), "COMMIT"])
                try:
                    await cur.execute(text)
                    counts = []
                    for fn in reads:
                        await cur.nextset()
                        counts.append(fn(cur, cur.rowcount))
                    await cur.nextset()  # COMMIT's
                except Exception:
                    await conn.rollback()
                    raise
                return sum(counts[:counted])

    async def _run_chunks(self, statements: Iterator[Statement], read: _Read | None = None) -> int:
        # One transaction, pipelined: while the server writes chunk k, this task encodes
        # chunk k+1 (the drivers' escaping is client-side and costs about as much as the
        # server's insert), so a bulk insert takes little more than the server's time.
        async with self._pool.acquire("write") as conn:
            with self.translate_errors():
                cur = await self._driver.cursor(conn)
                await conn.begin()
                sending: asyncio.Task[int] | None = None
                total = 0
                fn = read or _affected
                try:
                    for sql, params in statements:
                        text = cur.mogrify(sql, params)
                        if sending is not None:
                            total += fn(cur, await sending)
                        sending = asyncio.ensure_future(cur.execute(text))
                        # One turn of the loop: the task writes the statement and waits
                        # for the reply; the next chunk is encoded meanwhile.
                        await asyncio.sleep(0)
                    if sending is not None:
                        total += fn(cur, await sending)
                except BaseException as exc:
                    # The connection must be idle before it is rolled back or discarded.
                    await _settle(sending, cancel=not isinstance(exc, Exception))
                    if isinstance(exc, Exception):
                        await conn.rollback()
                    raise  # cancelled: the pool discards the connection
                await conn.commit()
                return total

    async def _script(self, statements: list[str]) -> None:
        async with self._pool.acquire("schema change") as conn:
            with self.translate_errors():
                cur = await self._driver.cursor(conn)
                for sql in statements:
                    await cur.execute(sql)
