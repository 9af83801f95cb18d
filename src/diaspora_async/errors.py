"""Every error diaspora_async raises; the one place to look when catching.

Sits beside every layer: the query parser and models raise the "you used it wrong" and
"the data is bad" errors before any I/O, adapters translate their driver's exceptions to
``DataSourceError`` subclasses at one boundary (keeping the original as ``__cause__``),
and the fan-out layer gathers per-source failures into ``FanOutError``.

The tree::

    DiasporaError
    ├── ConfigError             bad configuration, unknown adapter, missing driver extra
    │   └── UnknownDataSource   a source name nobody declared
    ├── ValidationError         attribute values that do not fit the model (ValueError too)
    ├── QueryError              malformed query or options (ValueError too)
    │   └── UnsupportedQuery    a store cannot express a query node
    ├── EntityStateError        the operation does not fit the entity's state
    ├── ConflictError           persist(check=True): another writer changed the entity
    ├── DataSourceError         a store failed; carries ``.source``
    │   ├── ConnectionLost      the connection broke or could not be made
    │   ├── PoolTimeout         no connection could be borrowed in time
    │   ├── OperationTimeout    one operation outlived the source's ``timeout=``:
    │   │                       a write's outcome is unknown
    │   ├── AccessDenied        the store refused the credentials or the database:
    │   │                       not retried, retrying cannot help
    │   └── IntegrityError      a unique constraint refused the write
    └── FanOutError             one or more sources of a multi-source write failed;
                                an ``ExceptionGroup`` with ``.succeeded`` and ``.failed``
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "AccessDenied",
    "ConfigError",
    "ConflictError",
    "ConnectionLost",
    "DataSourceError",
    "DiasporaError",
    "EntityStateError",
    "FanOutError",
    "IntegrityError",
    "OperationTimeout",
    "PoolTimeout",
    "QueryError",
    "UnknownDataSource",
    "UnsupportedQuery",
    "ValidationError",
]


class DiasporaError(Exception):
    """Root of every error raised by diaspora_async."""


class ConfigError(DiasporaError):
    """A data source, model or configuration file is declared wrongly."""


class UnknownDataSource(ConfigError, KeyError):
    """A model or call names a data source the registry does not have."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ValidationError(DiasporaError, ValueError):
    """Attribute values do not fit the model.

    Attributes:
        errors: one ``(path, message)`` pair per bad field; ``path`` is a dotted path
            such as ``"tags.2"``.
    """

    def __init__(self, model: str, errors: Sequence[tuple[str, str]]) -> None:
        self.model = model
        self.errors = list(errors)
        lines = "\n".join(f"  {path}: {msg}" for path, msg in self.errors)
        n = len(self.errors)
        super().__init__(f"{model}: {n} invalid field{'s' if n != 1 else ''}\n{lines}")


class QueryError(DiasporaError, ValueError):
    """A query, its options or an update is malformed; raised before any I/O."""


class UnsupportedQuery(QueryError):
    """An adapter's compiler has no translation for a query node."""


class EntityStateError(DiasporaError):
    """The entity's state does not allow the operation (e.g. fetching an orphan)."""


class ConflictError(DiasporaError):
    """``persist(check=True)``: the model's first source no longer holds the revision the
    entity was loaded with (another writer got there first). Nothing was written.

    Attributes:
        source: the data source that holds the other revision.
        entity_id: the entity's id.
        expected: the revision the entity was loaded with (None: it was never stored).
        revision: the revision the source holds (None: it holds no live copy, or one
            stored before revisions existed).
        deleted: True when the source holds a tombstone (the entity was deleted there).
    """

    def __init__(
        self,
        source: str,
        entity_id: str,
        expected: str | None,
        revision: str | None,
        deleted: bool = False,
    ) -> None:
        self.source = source
        self.entity_id = entity_id
        self.expected = expected
        self.revision = revision
        self.deleted = deleted
        held = "a deleted entity" if deleted else f"revision {revision}"
        super().__init__(
            f"[{source}] {entity_id} changed since it was read: expected revision "
            f"{expected}, the source holds {held}"
        )


class DataSourceError(DiasporaError):
    """A store failed.

    Attributes:
        source: the data source's name.
    """

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        super().__init__(f"[{source}] {message}")


class ConnectionLost(DataSourceError):
    """The connection to the store broke, or could not be opened."""


class AccessDenied(DataSourceError):
    """The store refused to connect: bad credentials, or no such database.

    Unlike ``ConnectionLost`` it is never retried (a new attempt gets the same answer):
    the pool makes one connection attempt and raises this; fix the data source's config.
    """


class PoolTimeout(DataSourceError):
    """No connection could be borrowed from the pool within ``acquire_timeout``."""


class OperationTimeout(DataSourceError):
    """One operation on a store took longer than its data source's ``timeout=``.

    The limit covers waiting for a connection, connecting and the operation itself. A
    timed-out write has an unknown outcome: it may have been applied, or not. Queueing
    or compensating it is safe because writes are revision-guarded. The connection it
    ran on is discarded (its state is unknown), never reused.

    Attributes:
        source: the data source's name.
        operation: what timed out (e.g. ``"get"``, ``"connect"``), or None if not known.
        timeout: the limit in seconds.
    """

    def __init__(self, source: str, timeout: float, operation: str | None = None) -> None:
        self.operation = operation
        self.timeout = timeout
        what = operation or "operation"
        super().__init__(source, f"{what} timed out: no result within timeout={timeout:g} s")

    def __reduce__(self) -> tuple[Any, ...]:  # pickling (e.g. across processes) keeps fields
        return type(self), (self.source, self.timeout, self.operation)


class IntegrityError(DataSourceError):
    """The store refused a write that breaks a unique constraint (e.g. a duplicate id)."""


class FanOutError(DiasporaError, ExceptionGroup):  # type: ignore[misc,unused-ignore]
    """One or more sources of a multi-source operation failed.

    It is an ``ExceptionGroup`` of each failed source's exception, so ``except*`` works.

    Attributes:
        succeeded: names of the sources whose part succeeded, in call order.
        failed: source name -> the exception it raised, in call order.
        compensated: with ``on_error="compensate"``, the sources whose write was undone.
        queued: with ``on_error="queue"``, the sources whose write went to the outbox.
    """

    succeeded: list[str]
    failed: dict[str, BaseException]
    compensated: list[str]
    queued: list[str]

    def __new__(
        cls,
        message: str,
        failed: Mapping[str, BaseException] | Sequence[BaseException],
        succeeded: Sequence[str] = (),
        **_: Any,
    ) -> FanOutError:
        return super().__new__(cls, message, _exceptions(failed))

    def __init__(
        self,
        message: str,
        failed: Mapping[str, BaseException] | Sequence[BaseException],
        succeeded: Sequence[str] = (),
        compensated: Sequence[str] = (),
        queued: Sequence[str] = (),
    ) -> None:
        super().__init__(message, _exceptions(failed))
        self.failed = dict(failed) if isinstance(failed, Mapping) else {}
        self.succeeded = list(succeeded)
        self.compensated = list(compensated)
        self.queued = list(queued)

    def derive(self, excs: Sequence[Exception]) -> FanOutError:  # type: ignore[override]
        # ``except*`` and ``split`` rebuild the group from a subset: keep the bookkeeping.
        kept = {k: v for k, v in self.failed.items() if v in excs}
        return FanOutError(self.message, kept or list(excs), self.succeeded)

    def __str__(self) -> str:
        parts = [f"{name}: {type(e).__name__}: {e}" for name, e in self.failed.items()]
        ok = ", ".join(self.succeeded) or "none"
        return f"{self.message} (succeeded: {ok}; failed: {'; '.join(parts)})"


def _exceptions(failed: Mapping[str, BaseException] | Sequence[BaseException]) -> list[Exception]:
    # Sources fail with ``Exception``s; fan_out re-raises anything else before we get here.
    excs = list(failed.values()) if isinstance(failed, Mapping) else list(failed)
    return [e if isinstance(e, Exception) else RuntimeError(repr(e)) for e in excs]
