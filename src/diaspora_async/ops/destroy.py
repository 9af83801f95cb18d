"""Destroy: delete entities from one or several sources, concurrently.

Named sources must store every entity (checked before any I/O); ``da.ALL`` means every
source that stores at least one of them. Each source's part runs its events, one batched
delete, and forgets the snapshot; the undo (for ``compensate``) re-inserts what it held.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import EntityStateError
from ..meta import ModelMeta
from ..sources import ALL, check_policy
from ..state import EntityCore, begin, end, forget, restore, touch
from .fanout import Undo, run

__all__ = ["destroy", "destroy_sources"]


def destroy_sources(meta: ModelMeta, entities: Sequence[EntityCore], source: Any) -> list[str]:
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
    entities: Sequence[EntityCore],
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
            await meta.fire("before_destroy", targets, source)
        previous = [{"id": e.id, **e._confirmed[source]} for e in targets]
        begin(targets, source)
        try:
            await adapter.delete(schema, [e.id for e in targets])
        finally:
            end(targets, source)
        for e in targets:
            forget(e, source)
            touch(e, source)

        async def revert() -> None:
            await adapter.insert(schema, previous)
            for e, row in zip(targets, previous, strict=True):
                restore(e, source, {k: v for k, v in row.items() if k != "id"})

        undo[source] = revert
        if events:
            await meta.fire("after_destroy", targets, source)

    await run(meta, "destroy", sources, part, policy, undo, entities)
