"""Each source's part of an entity write, batched, with its lifecycle events.

``Entity`` and ``EntitySet`` coroutines call ``persist``/``destroy``/``fetch`` here with
a list of entities and the resolved source names. Per source, every entity runs its own
event sequence, then the source gets one batched insert and one batched update (or one
delete), and each entity's confirmed snapshot is set as soon as that source answered,
so per-source states are true even when another source failed. ``fanout.fan_out`` runs
the parts concurrently; the ``on_error`` policy decides what happens after a failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from .errors import DataSourceError, EntityStateError, FanOutError
from .events import run_hooks
from .fanout import ALL, check_policy, fan_out
from .rows import GC_PAUSE_MIN, GCPause, building

if TYPE_CHECKING:
    from .adapters.base import Adapter, CollectionSchema
    from .entities import Entity
    from .models import ModelMeta

__all__ = ["destroy", "fetch", "persist", "validate_all"]

Undo = Callable[[], Awaitable[None]]


# -- per-source entity state, batched: one call per batch, the loop inside ---------------
def begin(entities: Sequence[Entity], source: str) -> None:
    """Mark ``entities`` SYNCING with ``source`` (counted: writes may overlap)."""
    for e in entities:
        state = e.__dict__
        syncing = state.get("_syncing")
        if syncing is None:
            state["_syncing"] = {source: 1}
        else:
            syncing[source] = syncing.get(source, 0) + 1


def end(entities: Sequence[Entity], source: str) -> None:
    """Undo one ``begin`` for each entity."""
    for e in entities:
        syncing = e.__dict__["_syncing"]
        left = syncing[source] - 1
        if left:
            syncing[source] = left
        else:
            del syncing[source]


def confirm(e: Entity, source: str, written: dict[str, Any]) -> None:
    """``source`` now holds ``written`` (a snapshot the entity owns) for ``e``."""
    state = e.__dict__
    state["_confirmed"][source] = written
    state["_last_source"] = source


def validate_all(meta: ModelMeta, entities: Sequence[Entity]) -> None:
    """Validate every entity in one call; one ``ValidationError`` lists every bad field.

    Nothing changes unless all are valid.
    """
    if len(entities) == 1:  # the common single-entity persist: no batch to build
        e = entities[0]
        e.__dict__["_attrs"] = meta.validator.validate(e._attrs)
        return
    with building(len(entities)):
        cast = meta.validator.validate_many([e._attrs for e in entities])
        for e, attrs in zip(entities, cast, strict=True):
            e.__dict__["_attrs"] = attrs


async def _hooks(meta: ModelMeta, name: str, entities: Sequence[Entity], source: str) -> None:
    hooks = meta.hooks(name)
    if hooks:
        for e in entities:
            await run_hooks(hooks, e, source)


def persist(
    meta: ModelMeta,
    entities: Sequence[Entity],
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
    entities: Sequence[Entity],
    sources: list[str],
    skip_events: bool,
    policy: str,
    validated: bool,
) -> None:
    undo: dict[str, Undo] = {}

    async def part(source: str) -> None:
        done = await _persist_in(meta, entities, source, skip_events, validated)
        undo[source] = lambda: _revert(*done)

    await _run(meta, "persist", sources, part, policy, undo, entities)


# What one source's part of ``persist`` wrote, enough to undo it (``compensate``): the
# adapter, the schema, the source, the entities created and updated there, and the
# snapshots the updates replaced. A plain tuple: built on every persist, used rarely.
_Written = tuple[
    "Adapter",
    "CollectionSchema",
    str,
    list["Entity"],
    list["Entity"],
    list[tuple[str, dict[str, Any]]],
]


async def _persist_in(
    meta: ModelMeta, entities: Sequence[Entity], source: str, skip_events: bool, validated: bool
) -> _Written:
    """One source's part of ``persist``."""
    events = not skip_events and meta.has_hooks
    if events:
        await _hooks(meta, "before_persist", entities, source)
        await _hooks(meta, "before_validate", entities, source)
    if events or not validated:
        validate_all(meta, entities)
    if events:
        await _hooks(meta, "after_validate", entities, source)
    creates: list[Entity] = []
    updates: list[Entity] = []
    for e in entities:
        (updates if source in e._confirmed else creates).append(e)
    if events:
        await _hooks(meta, "before_persist_create", creates, source)
        await _hooks(meta, "before_persist_update", updates, source)
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
        for e, snap in zip(updates, snaps, strict=True):
            state = e.__dict__
            confirmed = state["_confirmed"]
            if source in confirmed:  # not one the source turned out to have lost
                if snap is not None:
                    confirmed[source] = snap
                state["_last_source"] = source
        if lost:
            raise EntityStateError(
                f"{lost} {meta.name} entities no longer exist in {source!r}; persist them "
                "again to re-create them"
            )
    finally:
        end(entities, source)
    if events:
        await _hooks(meta, "after_persist_create", creates, source)
        await _hooks(meta, "after_persist_update", updates, source)
        await _hooks(meta, "after_persist", entities, source)
    return adapter, schema, source, creates, updates, before


def _prepare(
    meta: ModelMeta, creates: list[Entity], updates: list[Entity], source: str
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
        state = e.__dict__
        row = copy_attrs(state["_attrs"])
        row["id"] = state["_id"]
        rows.append(row)
    changes: list[tuple[str, dict[str, Any]]] = []
    before: list[tuple[str, dict[str, Any]]] = []
    snaps: list[dict[str, Any] | None] = []
    for e in updates:
        diff = e.diff(source)
        if diff:
            state = e.__dict__
            entity_id = state["_id"]
            changes.append((entity_id, diff))
            before.append((entity_id, state["_confirmed"][source]))
            snaps.append(copy_attrs(state["_attrs"]))
        else:
            snaps.append(None)
    return rows, changes, before, snaps


async def _revert(
    adapter: Adapter,
    schema: CollectionSchema,
    source: str,
    creates: list[Entity],
    updates: list[Entity],
    before: list[tuple[str, dict[str, Any]]],
) -> None:
    """Undo one source's part of ``persist`` (see ``_Written``): delete what it created,
    restore what it updated (the ``compensate`` policy)."""
    if creates:
        await adapter.delete(schema, [e.id for e in creates])
        for e in creates:
            e._confirmed.pop(source, None)
    if before:
        await adapter.update(schema, before)
        previous = dict(before)
        for e in updates:
            if e.id in previous:
                e._confirmed[source] = previous[e.id]


async def _forget_missing(
    meta: ModelMeta, adapter: Any, schema: Any, source: str, updates: Sequence[Entity]
) -> None:
    # Only on a count mismatch: find which entities the source lost, and say so.
    present = {r["id"] for r in await adapter.get(schema, [e.id for e in updates])}
    for e in updates:
        if e.id not in present:
            e._confirmed.pop(source, None)


def destroy_sources(meta: ModelMeta, entities: Sequence[Entity], source: Any) -> list[str]:
    """Sources to delete from; named sources must store every entity (checked before I/O)."""
    sources = meta.sources_for(source)
    if source is ALL:
        sources = [s for s in sources if any(s in e._confirmed for e in entities)]
        if not sources and entities:
            raise EntityStateError(f"cannot destroy {meta.name}: not stored in any source")
        return sources
    for s in sources:
        for e in entities:
            if s not in e._confirmed:
                raise EntityStateError(
                    f"cannot destroy {meta.name} {e.id} from {s!r}: it is not stored there "
                    f"(state {e.state_in(s).value})"
                )
    return sources


async def destroy(
    meta: ModelMeta,
    entities: Sequence[Entity],
    source: Any,
    skip_events: bool,
    on_error: str | None,
) -> None:
    """Delete ``entities`` from every source concurrently."""
    policy = check_policy(on_error or meta.on_error)
    sources = destroy_sources(meta, entities, source)
    undo: dict[str, Undo] = {}

    async def part(source: str) -> None:
        adapter, schema = await meta.target(source)
        targets = [e for e in entities if source in e._confirmed]
        events = not skip_events and meta.has_hooks
        if events:
            await _hooks(meta, "before_destroy", targets, source)
        previous = [{"id": e.id, **e._confirmed[source]} for e in targets]
        begin(targets, source)
        try:
            await adapter.delete(schema, [e.id for e in targets])
        finally:
            end(targets, source)
        for e in targets:
            del e._confirmed[source]
            e.__dict__["_last_source"] = source

        async def revert() -> None:
            await adapter.insert(schema, previous)
            for e, row in zip(targets, previous, strict=True):
                e._confirmed[source] = {k: v for k, v in row.items() if k != "id"}

        undo[source] = revert
        if events:
            await _hooks(meta, "after_destroy", targets, source)

    await _run(meta, "destroy", sources, part, policy, undo, entities)


async def _run(
    meta: ModelMeta,
    what: str,
    sources: list[str],
    part: Callable[[str], Awaitable[None]],
    policy: str,
    undo: dict[str, Undo],
    entities: Sequence[Entity],
) -> None:
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
            await meta.registry.outbox.record(meta, what, entities, list(exc.failed))
            exc.queued.extend(exc.failed)
        raise


async def fetch(
    meta: ModelMeta, entities: Sequence[Entity], source: Any, skip_events: bool
) -> None:
    """Reload entities; each from the first of the sources that stores it."""
    sources = meta.sources_for(source)
    orphans = [e for e in entities if not any(s in e._confirmed for s in sources)]
    if orphans:
        raise EntityStateError(
            f"cannot fetch {meta.name} {orphans[0].id}: it is not stored in "
            f"{', '.join(sources)} (state {orphans[0].state.value})"
        )
    pending = {e.id: e for e in entities}
    error: DataSourceError | None = None
    events = not skip_events and meta.has_hooks
    for s in sources:
        batch = [e for e in pending.values() if s in e._confirmed]
        if not batch:
            continue
        adapter, schema = await meta.target(s)
        if events:
            await _hooks(meta, "before_fetch", batch, s)
        begin(batch, s)
        try:
            rows = await adapter.get(schema, [e.id for e in batch])
        except DataSourceError as exc:
            error = error or exc
            continue
        finally:
            end(batch, s)
        by_id = {r["id"]: r for r in rows}
        done = []
        for e in batch:
            row = by_id.get(e.id)
            if row is None:
                del e._confirmed[s]  # the source lost it: the state says so now
                continue
            attrs = meta.row_to_attrs(row)
            e.__dict__["_attrs"] = attrs
            confirm(e, s, meta.copy(attrs))
            del pending[e.id]
            done.append(e)
        if events:
            await _hooks(meta, "after_fetch", done, s)
    if pending:
        if error is not None:
            raise error
        first = next(iter(pending))
        raise EntityStateError(
            f"{meta.name} {first} no longer exists in {', '.join(sources)}"
            + (f" (and {len(pending) - 1} more)" if len(pending) > 1 else "")
        )
