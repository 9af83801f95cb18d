"""Running one operation on several sources: concurrent writes, fallback reads.

Writes (``fan_out``) start every source's part at once with ``asyncio.gather`` so the
call takes about as long as the slowest source; every part is attempted even when one
fails, and a failure anywhere raises ``FanOutError`` naming what succeeded and what
failed. A single source runs inline and raises its own error unchanged. Reads
(``first_of``) walk the sources in order and stop at the first that has an answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from ..errors import DiasporaError, FanOutError
from ..meta import ModelMeta
from ..state import EntityCore

__all__ = ["Undo", "fan_out", "first_of", "run"]

T = TypeVar("T")
Undo = Callable[[], Awaitable[None]]
"""Undoes one source's part of a write (the ``compensate`` policy)."""


async def fan_out(
    sources: Sequence[str], part: Callable[[str], Awaitable[T]], what: str
) -> dict[str, T]:
    """Run ``part(source)`` for every source concurrently.

    Returns each source's result. With one source its exception propagates as is; with
    several, any failure raises ``FanOutError`` after every part has finished.
    """
    if len(sources) == 1:
        return {sources[0]: await part(sources[0])}
    outcomes = await asyncio.gather(*(part(s) for s in sources), return_exceptions=True)
    results: dict[str, T] = {}
    failed: dict[str, BaseException] = {}
    for source, outcome in zip(sources, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome  # KeyboardInterrupt and friends are not a source's failure
            failed[source] = outcome
        else:
            results[source] = outcome
    if failed:
        raise FanOutError(
            f"{what} failed on {len(failed)} of {len(sources)} sources", failed, list(results)
        )
    return results


async def first_of(
    sources: Sequence[str],
    read: Callable[[str], Awaitable[T]],
    found: Callable[[T], bool],
) -> tuple[str, T]:
    """Try each source in order; return the first answer ``found`` accepts.

    A source that fails is skipped, and its error re-raised only if no source answered
    at all; when every answer is "not found", the last answer is returned.
    """
    first_error: DiasporaError | None = None
    answer: tuple[str, T] | None = None
    for source in sources:
        try:
            result = await read(source)
        except DiasporaError as exc:
            if len(sources) == 1:
                raise
            first_error = first_error or exc
            continue
        if found(result):
            return source, result
        answer = (source, result)
    if answer is None:
        assert first_error is not None  # every source failed
        raise first_error
    return answer


async def run(
    meta: ModelMeta,
    what: str,
    sources: list[str],
    part: Callable[[str], Awaitable[None]],
    policy: str,
    undo: dict[str, Undo],
    entities: Sequence[EntityCore],
) -> None:
    """Run ``part`` on every source, then apply ``policy`` if any failed (and re-raise):
    ``compensate`` undoes the sources that succeeded, ``queue`` records the failed ones
    in the outbox."""
    try:
        await fan_out(sources, part, f"{what} {meta.name}")
    except FanOutError as exc:
        if policy == "compensate":
            for source in exc.succeeded:
                try:
                    await undo[source]()
                    exc.compensated.append(source)
                except Exception as undo_exc:  # best effort: report, keep going
                    exc.add_note(f"compensation on {source!r} failed: {undo_exc!r}")
        elif policy == "queue":
            payloads = [(e._id, e._attrs if what == "persist" else None) for e in entities]
            await meta.catalog.outbox.record(meta.name, what, payloads, list(exc.failed))
            exc.queued.extend(exc.failed)
        raise
