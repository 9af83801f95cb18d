"""Persist: each source's part of an entity write, batched, with its lifecycle events.

``Entity.persist`` and ``EntitySet.persist`` land here with a list of entities and the
resolved source names. Every write is a revision-guarded upsert (DESIGN.md 6.1): an
entity whose attributes differ from what its revision stands for gets the call's new
revision (one for every source), an unchanged one re-sends its own revision to the
sources not known to hold it, and a store holding a newer revision keeps it (the entity
is then ``superseded`` there). What one object has seen is an optimisation only: a
source that never stored the entity and one that lost it are written alike.

Per source, every entity runs its own event sequence, then the source gets one batched
``write``, and each entity's confirmed snapshot is set as soon as that source answered,
so per-source states are true even when another source failed. ``fanout.run`` runs the
parts concurrently and applies the ``on_error`` policy after a failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

from ..adapters.base import Adapter, CollectionSchema
from ..errors import ConflictError
from ..meta import ModelMeta
from ..revisions import newest, next_revision
from ..rows import GC_PAUSE_MIN, GCPause, building
from ..sources import OnError, check_policy
from ..state import EntityCore, begin, confirm, end, forget, set_attrs, stamp, supersede
from .fanout import run
from .restore import restore_prior

Inserts = Sequence[tuple[CollectionSchema, Sequence[dict[str, Any]]]]

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


def policy_for(meta: ModelMeta, on_error: str | None) -> OnError:
    """The call's policy; ``"queue"`` without an outbox fails here, before any I/O."""
    policy = check_policy(on_error or meta.on_error)
    if policy == "queue":
        meta.catalog.outbox  # noqa: B018 - raises ConfigError when there is none
    return policy


def persist(
    meta: ModelMeta,
    entities: Sequence[EntityCore],
    sources: list[str],
    skip_events: bool,
    on_error: str | None,
    validated: bool = False,
    check: bool = False,
    defer: Sequence[str] = (),
) -> Awaitable[object]:
    """Write ``entities`` to every source concurrently (await the result).

    ``validated``: the caller already validated every entity (then only hooks, which
    may change attributes, cause another validation). ``check``: optimistic
    concurrency on the first source (written first; ``ConflictError``). ``defer``:
    sources left to the outbox's relay (write-behind): their intents are recorded,
    durably, before the others are written.
    """
    policy = policy_for(meta, on_error)
    if defer:
        meta.catalog.outbox  # noqa: B018 - defer= needs an outbox: ConfigError before I/O
        sources = [s for s in sources if s not in defer]
    if len(entities) == 1:
        e = entities[0]
        revision = next_revision(e._rev)
        fresh = e._rev is None and e._base is None
    else:
        revision = next_revision(newest([e._rev for e in entities]))
        fresh = all(e._rev is None and e._base is None for e in entities)
    if len(sources) == 1 and policy != "queue" and not check and not defer:
        # One source, nothing to compensate or queue: the caller awaits the part
        # directly (no coroutine of this function's own on the single-entity hot path).
        return _persist_in(meta, entities, sources[0], skip_events, validated, revision, fresh)
    return _persist_all(
        meta, entities, sources, skip_events, policy, validated, revision, check, fresh, defer
    )


async def _persist_all(
    meta: ModelMeta,
    entities: Sequence[EntityCore],
    sources: list[str],
    skip_events: bool,
    policy: OnError,
    validated: bool,
    revision: str,
    check: bool,
    fresh: bool,
    defer: Sequence[str],
) -> None:
    prior = [(e._rev, e._base) for e in entities]
    # Stamped before any part runs, so the intents of a call whose every part fails
    # early (a store down at its first use) still carry this call's state.
    _stamp_changed(meta, entities, revision)
    attempted: set[str] = set()

    async def part(source: str, inserts: Inserts = ()) -> None:
        attempted.add(source)
        await _persist_in(
            meta, entities, source, skip_events, validated, revision, fresh, inserts=inserts
        )

    rest = sources
    if check and sources:
        rest = sources[1:]
        expect = [_expected(r, b) for r, b in prior]
        try:
            await _persist_in(
                meta, entities, sources[0], skip_events, validated, revision, fresh, expect
            )
        except ConflictError:
            for e, (rev, base) in zip(entities, prior, strict=True):
                if sources[0] not in e._confirmed or e._confirmed[sources[0]] is not e._base:
                    stamp(e, rev, base)  # not written anywhere: as it was before the call
            raise
        if not rest and not defer:
            return

    async def compensate(targets: list[str]) -> dict[str, BaseException | None]:
        return await restore_prior(meta, entities, prior, targets)

    def intents() -> list[tuple[str, dict[str, Any] | None, str]]:
        return [(e._id, e._base, e._rev or revision) for e in entities]

    await run(meta, "persist", rest, part, policy, attempted, compensate, intents, defer)


def _expected(rev: str | None, base: dict[str, Any] | None) -> str | None:
    # What check=True expects the first source to hold: nothing for an entity never
    # stored; "" for one read from a copy stored before revisions existed.
    if base is None:
        return None
    return rev or ""


def _stamp_changed(meta: ModelMeta, entities: Sequence[EntityCore], revision: str) -> None:
    """Give every entity whose attributes differ from its revision's the new one."""
    copy_attrs = meta.copy
    for e in entities:
        base = e._base
        if e._rev is None or base is None or e._attrs != base:
            stamp(e, revision, copy_attrs(e._attrs))


async def _persist_in(
    meta: ModelMeta,
    entities: Sequence[EntityCore],
    source: str,
    skip_events: bool,
    validated: bool,
    revision: str,
    fresh: bool,
    expect: list[str | None] | None = None,
    inserts: Inserts = (),
) -> None:
    """One source's part of ``persist``; ``fresh``: no entity was ever stored (the
    adapter's hint that plain inserts will do); ``inserts``: rows of other collections
    (the outbox's intents) to commit with this write."""
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
        await meta.fire("before_persist_create", creates, source)
        await meta.fire("before_persist_update", updates, source)
    # Everything below up to the first await sees one consistent set of attributes.
    if len(entities) == 1 and expect is None and not inserts:
        # entity.persist() of a read-and-changed entity: its source holds the revision it
        # was read at, so only the changed fields need to go (guarded by that revision).
        patch = _patch(meta, entities[0], source, revision)
        if patch is not None and await _patched(meta, entities[0], source, *patch):
            if events:
                await meta.fire("after_persist_create", creates, source)
                await meta.fire("after_persist_update", updates, source)
                await meta.fire("after_persist", entities, source)
            return
    if len(entities) < GC_PAUSE_MIN:  # no context manager on the single-entity path
        rows, written, late = _prepare(meta, entities, source, revision, expect)
    else:
        with GCPause():
            rows, written, late = _prepare(meta, entities, source, revision, expect)
    if rows or inserts:
        adapter, schema = meta.ready_target(source) or await meta.target(source)
        wanted = None if expect is None else [expect[i] for i in _positions(entities, written)]
        begin(written, source)
        try:
            if inserts:
                refused = await adapter.write_with(schema, rows, inserts, fresh=fresh)
            elif fresh and wanted is None:
                refused = await adapter.write(schema, rows, fresh=True)
            else:
                refused = await adapter.write(schema, rows, wanted)
        finally:
            end(written, source)
        for e, row in late:  # the row sent becomes the snapshot: one dict per row, not two
            del row["id"], row["_rev"]
            stamp(e, revision, row)
        skip = set(refused) if refused else ()
        for e in written:
            if e._id not in skip:
                confirm(e, source, e._base)  # type: ignore[arg-type]  # stamped by _prepare
        if refused:
            await _refused(adapter, schema, source, written, refused, wanted)
    if events:
        await meta.fire("after_persist_create", creates, source)
        await meta.fire("after_persist_update", updates, source)
        await meta.fire("after_persist", entities, source)


def _prepare(
    meta: ModelMeta,
    entities: Sequence[EntityCore],
    source: str,
    revision: str,
    expect: list[str | None] | None,
) -> tuple[list[dict[str, Any]], list[EntityCore], list[tuple[EntityCore, dict[str, Any]]]]:
    """The rows to send ``source``, their entities, and the changed ones with their rows.
    Synchronous, so it sees one consistent set of attributes.

    A changed entity is stamped with the call's revision only once the write returns:
    its row (id and revision taken off) then is the snapshot, so a bulk write of new
    entities makes one dict per row. (A multi-source call stamped them all before any
    part ran; these are the single-source path's, and a hook's late changes.)
    """
    copy_attrs = meta.copy
    rows: list[dict[str, Any]] = []
    written: list[EntityCore] = []
    late: list[tuple[EntityCore, dict[str, Any]]] = []
    for e in entities:
        # The slots straight from the instance dict (a spawned entity has neither yet):
        # this loop runs once per row of a bulk write, where every lookup counts.
        slots = e.__dict__
        base = slots.get("_base")
        rev = slots.get("_rev")
        attrs = slots["_attrs"]
        if rev is None or base is None or attrs != base:
            row = copy_attrs(attrs)
            row["id"] = slots["_id"]
            row["_rev"] = revision
            late.append((e, row))
        elif expect is None and slots["_confirmed"].get(source) is base:
            continue  # the source confirmed this very revision: nothing to send
        else:
            row = base.copy()
            row["id"] = slots["_id"]
            row["_rev"] = rev
        rows.append(row)
        written.append(e)
    return rows, written, late


def _patch(
    meta: ModelMeta, e: EntityCore, source: str, revision: str
) -> tuple[tuple[str, dict[str, Any], str, str | None], dict[str, Any]] | None:
    """``((id, changed fields, new revision, base revision), snapshot)`` when ``source``
    confirmed the very revision ``e`` was read at and only some fields changed since;
    else None. Synchronous: the snapshot is the attributes the patch sends."""
    base = e._base
    if base is None or e._confirmed.get(source) is not base or e._attrs == base:
        return None
    attrs = e._attrs
    if attrs.keys() != base.keys():
        return None
    changed = {k: v for k, v in attrs.items() if base[k] != v}
    if len(changed) == len(attrs):
        return None  # everything changed: the whole write costs the same
    # ``changed`` holds the attributes' own values: the adapter only encodes them.
    return (e._id, changed, revision, e._rev), meta.copy(attrs)


async def _patched(
    meta: ModelMeta, e: EntityCore, source: str, patch: Any, snapshot: dict[str, Any]
) -> bool:
    """Send ``patch``; on success ``e`` stands for ``snapshot`` at the new revision."""
    adapter, schema = meta.ready_target(source) or await meta.target(source)
    if type(adapter).patch is Adapter.patch:
        return False  # the store has no narrow update: written whole, at once
    begin([e], source)
    try:
        missed = await adapter.patch(schema, [patch])
    finally:
        end([e], source)
    if missed:
        return False  # the copy moved on since the read: written whole (guarded)
    stamp(e, patch[2], snapshot)
    confirm(e, source, snapshot)
    return True


def _positions(entities: Sequence[EntityCore], written: list[EntityCore]) -> list[int]:
    index = {id(e): i for i, e in enumerate(entities)}
    return [index[id(e)] for e in written]


async def _refused(
    adapter: Adapter,
    schema: CollectionSchema,
    source: str,
    written: list[EntityCore],
    refused: list[str],
    expect: list[str | None] | None,
) -> None:
    """The slow path after a source refused rows: it holds a newer revision (the entity
    is superseded there) or, under ``check``, another one than expected (a conflict)."""
    held = await adapter.revisions(schema, refused)
    ids = set(refused)
    first: ConflictError | None = None
    for i, e in enumerate(written):
        if e._id not in ids:
            continue
        rev, deleted = held.get(e._id, (None, False))
        if rev == e._rev and not deleted:
            confirm(e, source, e._base)  # type: ignore[arg-type]  # it landed after all
            continue
        if expect is not None and first is None:
            first = ConflictError(source, e._id, expect[i] or None, rev, deleted)
        if e._id in held:
            supersede(e, source)
        else:
            forget(e, source)  # an expected copy that is not there
    if first is not None:
        if len(ids) > 1:
            first.add_note(f"{len(ids)} entities conflicted in {source!r}")
        raise first
