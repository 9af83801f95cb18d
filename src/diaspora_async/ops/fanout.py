"""Running one operation on several sources: concurrent writes, fallback reads, policies.

Writes (``fan_out``) start every source's part at once with ``asyncio.gather`` so the
call takes about as long as the slowest source; every part is attempted even when one
fails, and a failure anywhere raises ``FanOutError`` naming what succeeded and what
failed. A single source runs inline and raises its own error unchanged. Reads
(``first_of``) walk the sources in order and stop at the first that has an answer.

``run`` adds the ``on_error`` policy (DESIGN.md 6): ``compensate`` writes the previous
state back, with a new revision, to every source that took the write or may have
(a lost reply); ``queue`` records the failed sources' writes in the outbox. Every
write is revision-guarded, so both are safe whatever actually landed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from ..errors import (
    AccessDenied,
    DataSourceError,
    DiasporaError,
    FanOutError,
    IntegrityError,
    PoolTimeout,
)
from ..meta import ModelMeta
from ..sources import OnError

__all__ = ["Compensate", "Intents", "Part", "fan_out", "first_of", "maybe_applied", "run"]

T = TypeVar("T")
Compensate = Callable[[list[str]], Awaitable[dict[str, BaseException | None]]]
"""Writes the state before the call back to the given sources; each source's outcome."""
Intents = Callable[[], Sequence[tuple[str, dict[str, Any] | None, str]]]
"""The ``(id, attributes or None for a delete, revision)`` of what the call wrote."""


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


def maybe_applied(exc: BaseException) -> bool:
    """Whether a write that raised ``exc`` may still have landed (its reply was lost):
    any store failure except a refusal the store answered or a call never sent."""
    return isinstance(exc, DataSourceError) and not isinstance(
        exc, IntegrityError | AccessDenied | PoolTimeout
    )


def _queueable(exc: BaseException) -> bool:
    # A store failure a later delivery can get past; a refusal (a unique value taken)
    # or a hook's veto would only fail again.
    return isinstance(exc, DataSourceError) and not isinstance(exc, IntegrityError)


Part = Callable[..., Awaitable[None]]
"""One source's part of a write: ``part(source)``, or ``part(source, inserts)`` to commit
``inserts`` (other collections' rows) in the same transaction as its write."""


async def run(
    meta: ModelMeta,
    what: str,
    sources: list[str],
    part: Part,
    policy: OnError,
    attempted: set[str],
    compensate: Compensate,
    intents: Intents,
    deferred: Sequence[str] = (),
) -> None:
    """Run ``part`` on every source, then apply ``policy`` if any failed (and re-raise).

    ``attempted``: filled by the parts with the sources whose write was sent. Under
    ``"queue"``, and for ``deferred`` sources (written later, by a relay), the intents
    are recorded in the outbox before any write (write-ahead, DESIGN.md 6.2) and
    removed for each source that confirmed. When the outbox lives in one of the
    targets and its adapter can (``Capabilities.write_with``), that target is written
    first, the other sources' intents in the same transaction (the transactional
    outbox): one round trip less, and that source needs no intent of its own.
    """
    ahead = [*sources, *deferred] if policy == "queue" else list(deferred)
    ids: dict[str, list[str]] = {}
    early: dict[str, BaseException | None] = {}  # a part already run (the outbox's host)
    if ahead:
        outbox = meta.catalog.outbox
        items = intents()
        host = outbox.source
        ds = meta.catalog.sources.get(host)
        if host in sources and ds is not None and ds.capabilities.write_with:
            await outbox.ready()  # its collection exists before a write carries intents
            rows = outbox.intents(meta.name, what, items, [s for s in ahead if s != host])
            try:
                await part(host, [(outbox.schema, [r for per in rows.values() for r in per])])
            except Exception as exc:  # nothing of it committed: write ahead as usual
                early[host] = exc
                ids = await outbox.record(meta.name, what, items, ahead)
            else:
                early[host] = None
                ids = {s: [r["id"] for r in per] for s, per in rows.items()}
        else:
            ids = await outbox.record(meta.name, what, items, ahead)
    if not sources:
        return

    async def each(source: str) -> None:
        if source not in early:
            return await part(source)
        if (exc := early[source]) is not None:
            raise exc
        return None

    behind = [i for s in deferred for i in ids.get(s, ())]  # the deferred sources'
    try:
        await fan_out(sources, each, f"{what} {meta.name}")
    except FanOutError as exc:
        if policy == "compensate":
            unknown = [s for s, e in exc.failed.items() if s in attempted and maybe_applied(e)]
            outcomes = await compensate([*exc.succeeded, *unknown])
            for source, undo_exc in outcomes.items():
                if undo_exc is None:
                    exc.compensated.append(source)
                else:  # best effort: report, keep going
                    exc.add_note(f"compensation on {source!r} failed: {undo_exc!r}")
        elif policy == "queue":
            await _settle(meta, exc.failed, ids, [s for s in sources if s not in exc.failed])
            exc.queued.extend(s for s, e in exc.failed.items() if _queueable(e))
        await _withdraw(meta, behind, policy, exc.failed.values())
        raise
    except Exception as exc:  # one source: its own error, left queued under "queue"
        # Any Exception, not only a store's: a hook's veto (a ValueError, say) must take
        # its intent with it, as on the FanOutError path, or a replay would perform the
        # refused write. (Cancellation and the like leave it: the outcome is unknown.)
        if policy == "queue":
            await _settle(meta, {sources[0]: exc}, ids, [])
            if _queueable(exc):
                exc.add_note(f"queued in the outbox for {sources[0]!r}")
        await _withdraw(meta, behind, policy, [exc])
        raise
    if policy == "queue":  # removed in the background: the call does not wait for it
        meta.catalog.outbox.settle([i for s in sources for i in ids.get(s, ())])


async def _withdraw(
    meta: ModelMeta, behind: list[str], policy: OnError, errors: Iterable[BaseException]
) -> None:
    """After a failed call, drop the deferred sources' intents if the write must not
    land there later: it was refused somewhere (a hook's veto, a unique value taken) or
    it is being undone (``compensate``: the relay would otherwise deliver the very write
    the compensation took back). A store's failure leaves them: write-behind was
    promised, and revisions make the late delivery safe."""
    if behind and (policy == "compensate" or not all(_queueable(e) for e in errors)):
        await meta.catalog.outbox.ack(behind)


async def _settle(
    meta: ModelMeta,
    failed: dict[str, BaseException],
    ids: dict[str, list[str]],
    succeeded: list[str],
) -> None:
    """After a queued write failed somewhere: the intents of the sources that confirmed,
    and of those whose failure a delivery would only repeat, go; the others stay, with
    their error."""
    outbox = meta.catalog.outbox
    done = [i for s in succeeded for i in ids.get(s, ())]
    done += [i for s, e in failed.items() if not _queueable(e) for i in ids.get(s, ())]
    outbox.settle(done)
    for source, exc in failed.items():
        if _queueable(exc):
            await outbox.note_failure(ids.get(source, []), exc)
