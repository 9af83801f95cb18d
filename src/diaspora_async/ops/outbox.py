"""The durable outbox behind ``on_error="queue"``: failed writes, kept to replay later.

When a fan-out write fails on some sources under the ``queue`` policy, ``fanout.run``
records one entry per entity and failed source here, in a data source of the user's
choosing (a SQLite file survives restarts). ``await orm.replay_outbox()`` re-applies each
entry (an upsert of the entity's attributes, or a delete) and removes it once it lands,
so nothing is lost while a store is down.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_jsonable_python

from ..adapters.base import CollectionSchema
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
        items: Sequence[tuple[str, dict[str, Any] | None]],
        sources: Sequence[str],
    ) -> None:
        """Queue ``what`` ("persist" or "destroy") of each ``(id, attributes)`` item for
        each failed source (attributes are None for a destroy)."""
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
                "created": now,
            }
            for source in sources
            for entity_id, attrs in items
        ]
        await adapter.insert(self.schema, rows)

    async def pending(self) -> list[dict[str, Any]]:
        """The queued entries, oldest first."""
        adapter = await self._target()
        return list(await adapter.find(self.schema, Query(None, parse_sort(None, _FIELDS))))

    async def replay(self) -> dict[str, int]:
        """Apply every queued entry in order; keep the ones whose source still fails."""
        adapter = await self._target()
        replayed = failed = 0
        for entry in await self.pending():
            model = self.catalog.models.get(entry["model"])
            if model is None:
                failed += 1
                continue
            meta: ModelMeta = model.__meta__
            try:
                target, schema = await meta.target(entry["source"])
                if entry["op"] == "persist":
                    attrs = meta.validator.validate(entry["payload"] or {})
                    if not await target.update(schema, [(entry["entity_id"], attrs)]):
                        await target.insert(schema, [{"id": entry["entity_id"], **attrs}])
                else:
                    await target.delete(schema, [entry["entity_id"]])
            except DiasporaError:
                failed += 1
                continue
            await adapter.delete(self.schema, [entry["id"]])
            replayed += 1
        return {"replayed": replayed, "failed": failed}
