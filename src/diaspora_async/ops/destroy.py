"""Destroy: delete entities from one or several sources, concurrently, as tombstones.

A delete is a revision-guarded write of a tombstone (id, new revision, deletion time;
DESIGN.md 6.1), so it reaches a source whether or not this object knows the source holds
a copy (``da.ALL`` means every source of the model), and an older write arriving later
cannot bring the entity back. A source holding a newer revision than the delete keeps
it. Each source's part runs its events and one batched write; compensation writes the
previous state back with a newer revision.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..adapters.base import DELETED, REV
from ..errors import EntityStateError
from ..meta import ModelMeta
from ..revisions import newest, next_revision
from ..state import EntityCore, begin, end, forget, stamp, supersede, touch
from .fanout import run
from .persist import policy_for
from .restore import restore_prior

__all__ = ["destroy"]


async def destroy(
    meta: ModelMeta,
    entities: Sequence[EntityCore],
    source: Any,
    skip_events: bool,
    on_error: str | None,
) -> int:
    """Delete ``entities`` from every named source concurrently.

    Returns how many of them the first source deleted (a tombstone it took).

    Raises:
        EntityStateError: before any I/O, for an entity never stored anywhere.
    """
    policy = policy_for(meta, on_error)
    sources = meta.sources_for(source)
    for e in entities:
        if e._base is None and e._rev is None and not e._confirmed:
            raise EntityStateError(
                f"cannot destroy {meta.name} {e.id}: it was never stored (state orphan)"
            )
    prior = [(e._rev, e._base) for e in entities]
    revision = next_revision(newest([e._rev for e in entities]))
    now = datetime.now(UTC)
    rows = [{"id": e._id, REV: revision, DELETED: now} for e in entities]
    for e in entities:
        stamp(e, revision, None)
    taken: dict[str, int] = {}
    attempted: set[str] = set()

    async def part(source: str, inserts: Sequence[Any] = ()) -> None:
        events = not skip_events and meta.has_hooks
        if events:
            await meta.fire("before_destroy", entities, source)
        adapter, schema = await meta.target(source)
        attempted.add(source)
        begin(entities, source)
        try:
            if inserts:  # the outbox's intents for the other sources, in one transaction
                refused = set(await adapter.write_with(schema, rows, inserts))
            else:
                refused = set(await adapter.write(schema, rows))
        finally:
            end(entities, source)
        for e in entities:
            if e._id in refused:
                supersede(e, source)  # the source holds a newer write than this delete
            else:
                forget(e, source)
                touch(e, source)
        taken[source] = len(entities) - len(refused)
        if events:
            await meta.fire("after_destroy", entities, source)

    async def compensate(targets: list[str]) -> dict[str, BaseException | None]:
        return await restore_prior(meta, entities, prior, targets)

    def intents() -> list[tuple[str, dict[str, Any] | None, str]]:
        return [(e._id, None, revision) for e in entities]

    await run(meta, "destroy", sources, part, policy, attempted, compensate, intents)
    return taken.get(sources[0], 0)
