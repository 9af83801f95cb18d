"""Fetch: reload entities, each from the first of the sources that stores it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import DataSourceError, EntityStateError
from ..meta import ModelMeta
from ..state import EntityCore, begin, confirm, end, forget, set_attrs, stamp

__all__ = ["fetch"]


async def fetch(
    meta: ModelMeta, entities: Sequence[EntityCore], source: Any, skip_events: bool
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
            await meta.fire("before_fetch", batch, s)
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
                forget(e, s)  # the source lost it: the state says so now
                continue
            attrs = meta.row_to_attrs(row)
            set_attrs(e, attrs)
            snapshot = meta.copy(attrs)
            confirm(e, s, snapshot)
            stamp(e, row.get("_rev"), snapshot)
            del pending[e.id]
            done.append(e)
        if events:
            await meta.fire("after_fetch", done, s)
    if pending:
        if error is not None:
            raise error
        first = next(iter(pending))
        raise EntityStateError(
            f"{meta.name} {first} no longer exists in {', '.join(sources)}"
            + (f" (and {len(pending) - 1} more)" if len(pending) > 1 else "")
        )
