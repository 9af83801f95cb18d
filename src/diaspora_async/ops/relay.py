"""The relay: delivers the outbox's intents in the background (DESIGN.md 6.2).

``async with orm.relay(interval=1.0, batch_size=500) as relay:`` runs delivery passes
(``Outbox.deliver``) in a task of the service's event loop until the block ends; the
worker process ``python -m diaspora_async relay --config app.toml`` runs the same loop.
Several relays may run at once over one outbox (intents are claimed with a lease), and
a failing source backs off per intent. A pass that delivers a full batch is followed at
once by the next; otherwise the relay waits ``interval`` seconds (or until ``wake()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import Self

from ..errors import ConfigError, DiasporaError
from .outbox import Delivery, Outbox

__all__ = ["Relay"]

log = logging.getLogger("diaspora_async.relay")


class Relay:
    """A background deliverer of one outbox; use as ``async with orm.relay(...)``.

    Attributes:
        delivered: the counts so far (``replayed``, ``failed``, ``dead`` intents).
        passes: how many delivery passes ran.
    """

    def __init__(self, outbox: Outbox, interval: float = 1.0, batch_size: int = 500) -> None:
        if not interval > 0:
            raise ConfigError(f"relay interval must be > 0 seconds, got {interval!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"relay batch_size must be an integer >= 1, got {batch_size!r}")
        self.outbox = outbox
        self.interval = interval
        self.batch_size = batch_size
        self.delivered = Delivery()
        self.passes = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()

    async def run_once(self) -> int:
        """One pass over the due intents; how many it found (0: none due)."""
        done, seen = await self.outbox.deliver(self.batch_size)
        self.delivered.add(done)
        self.passes += 1
        return seen

    async def run(self) -> None:
        """Deliver until cancelled (what the block and the worker process run)."""
        while True:
            try:
                seen = await self.run_once()
            except DiasporaError as exc:  # the outbox's own store is down: retry later
                log.warning("relay pass failed: %s", exc)
                seen = 0
            if seen >= self.batch_size:
                continue  # a full batch: there is more
            self._idle.set()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._idle.clear()

    async def drain(self) -> None:
        """Deliver until a pass finds nothing due and no live intent is left anywhere
        (none leased by another relay, none backing off): the backlog is gone, apart
        from dead intents. What ``python -m diaspora_async relay --until-empty`` runs."""
        while True:
            try:
                if await self.run_once():
                    continue  # it found work: look again at once
                if not await self.live():
                    return
            except DiasporaError as exc:  # the outbox's own store is down: retry later
                log.warning("relay pass failed: %s", exc)
            # Intents leased by another relay or backing off: they come due later.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()

    async def live(self) -> int:
        """How many intents are not delivered yet and not dead (due or not)."""
        return sum(g["pending"] for g in await self.outbox.stats())

    def wake(self) -> None:
        """Start the next pass now instead of after ``interval``."""
        self._wake.set()

    async def idle(self) -> None:
        """Wait until a pass found less than a full batch due (the backlog is worked
        off, apart from intents backing off or leased elsewhere)."""
        self._idle.clear()
        self.wake()
        await self._idle.wait()

    async def __aenter__(self) -> Self:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="diaspora relay")
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
