"""A ``Pool`` that lends permits to one shared driver object instead of connections.

Some drivers pool (and heal) their own sockets behind one client object: PyMongo's
``AsyncMongoClient`` (the ``mongo`` adapter) and ``httpx.AsyncClient`` (the ``http``
adapter). Pooling connections on top would pool twice, so those adapters run the common
``Pool`` (``pool.py``) over *permits*: each of the ``max_size`` "connections" is the same
shared object (the ``lend`` value), so the pool only bounds concurrency and keeps the
usual ``acquire_timeout``, ``PoolTimeout`` and ``stats()``. A permit carries no
connection state, so it is always fit for reuse and there is nothing to close per permit
(the adapter closes its client after the pool).
"""

from __future__ import annotations

from typing import TypeVar

from .pool import Pool
from .pool_options import PoolOptions

__all__ = ["PERMIT", "Permit", "PermitPool"]

T = TypeVar("T")


class Permit:
    """A ticket with no state, for adapters whose permits need not carry the client."""

    __slots__ = ()


PERMIT = Permit()


class PermitPool(Pool[T]):
    """The common pool, lending ``lend`` (a shared client, or ``PERMIT``) ``max_size`` times."""

    def __init__(self, source: str, options: PoolOptions, lend: T) -> None:
        super().__init__(source, options)
        self.lend = lend

    async def _open(self) -> T:
        return self.lend

    async def _close(self, conn: T) -> None:
        """Nothing per permit: the adapter closes the shared client after the pool."""

    def _reusable_after(self, exc: BaseException) -> bool:
        # A permit holds no connection state: the driver discards a socket whose
        # operation failed or was cancelled itself, so the permit is always fit to reuse.
        return True
