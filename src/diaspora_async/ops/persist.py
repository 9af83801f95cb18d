"""Persist: each source's part of an entity write, batched, with its lifecycle events.

``Entity.persist`` and ``EntitySet.persist`` land here with a list of entities and the
resolved source names. Per source, every entity runs its own event sequence, then the
source gets one batched insert and one batched update, and each entity's confirmed
snapshot is set (through ``state``) as soon as that source answered, so per-source
states are true even when another source failed. ``fanout.run`` runs the parts
concurrently and applies the ``on_error`` policy after a failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import EntityStateError
from ..meta import ModelMeta
from ..rows import GC_PAUSE_MIN, GCPause, building
from ..sources import check_policy
from ..state import EntityCore, begin, confirm, end, forget, restore, set_attrs, settle
from .fanout import Undo, run

if TYPE_CHECKING:
    from ..adapters.base import Adapter, CollectionSchema

__all__ = ["persist", "validate_all"]


def validate_all(meta: ModelMeta, entities: Sequence[EntityCore]) -> None:
    """Validate every entity in one call; one ``ValidationError`` lists every bad field.

    Nothing changes unless all are valid.
    """
    if len(entities) == 1:  # the common single-entity persist: no batch to build
        e = entities[0]
        set_attrs(e, meta.validator.validate(e._attrs))
        return
    with building(len(entities)):
        cast = meta.validator.validate_many([e._attrs for e in entities])
        for e, attrs in zip(entities, cast, strict=True):
            set_attrs(e, attrs)


def persist(
    meta: ModelMeta,
    entities: Sequence[EntityCore],
    sources: list[str],
    skip_events: bool,
    on_error: str | None,
    validated: bool = False,
) -> Awaitable[object]:
    """Insert or update ``entities`` in every source concurrently (await the result).

    ``validated``: the caller already validated every entity (then only hooks, which
    may change attributes, cause another validation).
    """
    policy = check_policy(on_error or meta.on_error)
    if len(sources) == 1:
        # One source: its error is raised as is, so there is nothing to compensate or
        # queue and none of the fan-out machinery is needed; the caller awaits its part
        # directly (no coroutine of this function's own on the single-entity hot path).
        return _persist_in(meta, entities, sources[0], skip_events, validated)
    return _persist_all(meta, entities, sources, skip_events, policy, validated)


async def _persist_all(
    meta: ModelMeta,
    entities: Sequence[EntityCore],
    sources: list[str],
    skip_events: bool,
    policy: str,
    validated: bool,
) -> None:
    undo: dict[str, Undo] = {}

    async def part(source: str) -> None:
        done = await _persist_in(meta, entities, source, skip_events, validated)
        undo[source] = lambda: _revert(*done)

    await run(meta, "persist", sources, part, policy, undo, entities)


# What one source's part of ``persist`` wrote, enough to undo it (``compensate``): the
# adapter, the schema, the source, the entities created and updated there, and the
# snapshots the updates replaced. A plain tuple: built on every persist, used rarely.
_Written = tuple[
    "Adapter",
    "CollectionSchema",
    str,
    list["EntityCore"],
    list["EntityCore"],
    list[tuple[str, dict[str, Any]]],
]


async def _persist_in(
    meta: ModelMeta, entities: Sequence[EntityCore], source: str, skip_events: bool, validated: bool
) -> _Written:
    """One source's part of ``persist``."""
    events = not skip_events and meta.has_hooks
    if events:
        await meta.fire("before_persist", entities, source)
        await meta.fire("before_validate", entities, source)
    if events or not validated:
        validate_all(meta, entities)
    if events:
        await meta.fire("after_validate", entities, source)
    creates: list[EntityCore] = []
    updates: list[EntityCore] = []
    for e in entities:
        (updates if source in e._confirmed else creates).append(e)
    if events:
        await meta.fire("before_persist_create", creates, source)
        await meta.fire("before_persist_update", updates, source)
    adapter, schema = meta.ready_target(source) or await meta.target(source)
    # Everything below up to the first await sees one consistent set of attributes.
    if len(entities) < GC_PAUSE_MIN:  # no context manager on the single-entity path
        rows, changes, before, snaps = _prepare(meta, creates, updates, source)
    else:
        with GCPause():
            rows, changes, before, snaps = _prepare(meta, creates, updates, source)
    begin(entities, source)
    try:
        if rows:
            await adapter.insert(schema, rows)
            for e, row in zip(creates, rows, strict=True):
                del row["id"]
                confirm(e, source, row)
        matched = await adapter.update(schema, changes) if changes else 0
        lost = len(changes) - matched
        if lost:
            await _forget_missing(meta, adapter, schema, source, updates)
        settle(updates, snaps, source)
        if lost:
            raise EntityStateError(
                f"{lost} {meta.name} entities no longer exist in {source!r}; persist them "
                "again to re-create them"
            )
    finally:
        end(entities, source)
    if events:
        await meta.fire("after_persist_create", creates, source)
        await meta.fire("after_persist_update", updates, source)
        await meta.fire("after_persist", entities, source)
    return adapter, schema, source, creates, updates, before


def _prepare(
    meta: ModelMeta, creates: list[EntityCore], updates: list[EntityCore], source: str
) -> tuple[
    list[dict[str, Any]],
    list[tuple[str, dict[str, Any]]],
    list[tuple[str, dict[str, Any]]],
    list[dict[str, Any] | None],
]:
    """What to send and what it confirms: the rows to insert; the changes to send; for
    those, the snapshots they replace (to undo them); per update, its new snapshot (None
    if unchanged). Synchronous, so it sees one consistent set of attributes."""
    copy_attrs = meta.copy
    # A created row is a copy of the attributes plus its id; once the insert is
    # confirmed, the same dict (id removed) is the snapshot: one copy, not two.
    rows = []
    for e in creates:
        row = copy_attrs(e._attrs)
        row["id"] = e._id
        rows.append(row)
    changes: list[tuple[str, dict[str, Any]]] = []
    before: list[tuple[str, dict[str, Any]]] = []
    snaps: list[dict[str, Any] | None] = []
    for e in updates:
        diff = e.diff(source)
        if diff:
            entity_id = e._id
            changes.append((entity_id, diff))
            before.append((entity_id, e._confirmed[source]))
            snaps.append(copy_attrs(e._attrs))
        else:
            snaps.append(None)
    return rows, changes, before, snaps


async def _revert(
    adapter: Adapter,
    schema: CollectionSchema,
    source: str,
    creates: list[EntityCore],
    updates: list[EntityCore],
    before: list[tuple[str, dict[str, Any]]],
) -> None:
    """Undo one source's part of ``persist`` (see ``_Written``): delete what it created,
    restore what it updated (the ``compensate`` policy)."""
    if creates:
        await adapter.delete(schema, [e.id for e in creates])
        for e in creates:
            forget(e, source)
    if before:
        await adapter.update(schema, before)
        previous = dict(before)
        for e in updates:
            if e.id in previous:
                restore(e, source, previous[e.id])


async def _forget_missing(
    meta: ModelMeta, adapter: Any, schema: Any, source: str, updates: Sequence[EntityCore]
) -> None:
    # Only on a count mismatch: find which entities the source lost, and say so.
    present = {r["id"] for r in await adapter.get(schema, [e.id for e in updates])}
    for e in updates:
        if e.id not in present:
            forget(e, source)
