"""The durable outbox behind ``on_error="queue"``: failed writes, kept to replay later.

When a fan-out write fails on some sources under the ``queue`` policy, ``fanout.run``
records one entry per entity and failed source here, in a data source of the user's
choosing (a SQLite file survives restarts), with the revision the write carried.
``await orm.replay_outbox()`` re-sends the entries, one batched revision-guarded write
per (model, source) and one batched removal of the delivered entries, so replay is
idempotent and order-free: an entry older than what the store holds since (a newer
write, a later delete) is a no-op, never an overwrite or a resurrection.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_jsonable_python

from ..adapters.base import DELETED, REV, CollectionSchema
from ..errors import DiasporaError
from ..fields import MISSING, build_field
from ..ids import new_id
from ..meta import ModelMeta
from ..query.ast import Query
from ..query.parse import parse_sort
from ..sources import Catalog

__all__ = ["Outbox"]

_FIELDS = {
    "model": build_field("model", str, MISSING),
    "source": build_field("source", str, MISSING),
    "op": build_field("op", str, MISSING),
    "entity_id": build_field("entity_id", str, MISSING),
    "payload": build_field("payload", dict[str, Any] | None, None),
    "created": build_field("created", datetime, MISSING),
}


class Outbox:
    """Queued writes stored in one data source (``orm.use_outbox("local")``)."""

    def __init__(self, catalog: Catalog, source: str, collection: str) -> None:
        self.catalog = catalog
        self.source = source
        self.schema = CollectionSchema("Outbox", collection, _FIELDS)

    async def _target(self) -> Any:
        ds = self.catalog.sources.get(self.source)
        if ds is None:
            raise DiasporaError(f"the outbox data source {self.source!r} does not exist")
        await ds.ensure(self.schema)
        return ds.adapter

    async def record(
        self,
        model: str,
        what: str,
        items: Sequence[tuple[str, dict[str, Any] | None, str]],
        sources: Sequence[str],
    ) -> None:
        """Queue ``what`` ("persist" or "destroy") of each ``(id, attributes, revision)``
        item for each failed source (attributes are None for a destroy)."""
        adapter = await self._target()
        now = datetime.now(UTC)
        rows = [
            {
                "id": new_id(),
                "model": model,
                "source": source,
                "op": what,
                "entity_id": entity_id,
                # JSON-safe now; the model's validator casts it back at replay.
                "payload": None if attrs is None else to_jsonable_python(attrs),
                # The entry's own revision column carries the write's: an outbox table
                # made before revisions existed gains that column like any other.
                REV: revision,
                "created": now,
            }
            for source in sources
            for entity_id, attrs, revision in items
        ]
        await adapter.insert(self.schema, rows)

    async def pending(self) -> list[dict[str, Any]]:
        """The queued entries, oldest first."""
        adapter = await self._target()
        return list(await adapter.find(self.schema, Query(None, parse_sort(None, _FIELDS))))

    async def replay(self) -> dict[str, int]:
        """Deliver every queued entry: one guarded write per (model, source); keep the
        entries whose source still fails (or whose model is unknown here)."""
        adapter = await self._target()
        # (model, source) -> (newest entry per entity, ids of every entry in the group):
        # an older entry for the same entity needs no write (the store would refuse it
        # anyway), only its removal once the newer one lands.
        groups: dict[tuple[str, str], tuple[dict[str, dict[str, Any]], list[str]]] = {}
        for entry in await self.pending():
            newest_of, ids = groups.setdefault((entry["model"], entry["source"]), ({}, []))
            held = newest_of.get(entry["entity_id"])
            if held is None or (held[REV] or "") <= (entry[REV] or ""):
                newest_of[entry["entity_id"]] = entry
            ids.append(entry["id"])
        replayed = failed = 0
        for (model_name, source), (newest_of, ids) in groups.items():
            model = self.catalog.models.get(model_name)
            if model is None:
                failed += len(ids)
                continue
            meta: ModelMeta = model.__meta__
            try:
                target, schema = await meta.target(source)
                await target.write(schema, [_row(meta, e) for e in newest_of.values()])
            except DiasporaError:
                failed += len(ids)
                continue
            await adapter.delete(self.schema, ids)
            replayed += len(ids)
        return {"replayed": replayed, "failed": failed}


def _row(meta: ModelMeta, entry: dict[str, Any]) -> dict[str, Any]:
    """The guarded write an entry stands for: the entity's copy, or its tombstone."""
    if entry["op"] == "persist":
        row = meta.validator.validate(entry["payload"] or {})
        row["id"] = entry["entity_id"]
        row[REV] = entry[REV] or ""  # queued before revisions existed: the oldest
        return row
    return {"id": entry["entity_id"], REV: entry[REV] or "", DELETED: entry["created"]}
