"""Copying a model's entities from one source to another (offline-first sync).

``Model.sync("local", "api")`` lands here: the source is read in id-ordered batches, each
batch is compared with what the destination holds (one batched ``get``), and the missing
and changed entities are sent as one revision-guarded write carrying the source's
revisions, so a destination holding a newer revision keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..adapters.base import REV
from ..errors import QueryError
from ..meta import ModelMeta
from ..query.ast import Query
from ..query.parse import parse_where
from ..revisions import next_revision

__all__ = ["SyncReport", "sync"]


@dataclass
class SyncReport:
    """What ``Model.sync`` did: entities created, updated and already equal."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        """Entities examined."""
        return self.created + self.updated + self.unchanged


async def sync(
    meta: ModelMeta,
    from_source: str,
    to_source: str,
    query: Any = None,
    batch_size: int = 500,
    progress: Callable[[SyncReport], Any] | None = None,
) -> SyncReport:
    """Make ``to_source`` hold every entity of ``from_source`` matching ``query``."""
    if from_source == to_source:
        raise QueryError("sync needs two different sources")
    meta.sources_for([from_source, to_source])  # both must be the model's
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise QueryError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    where = parse_where(query, meta.fields, meta.name)
    src, src_schema = await meta.target(from_source)
    dst, dst_schema = await meta.target(to_source)
    report = SyncReport()
    skip = 0
    while True:
        rows = await src.find(src_schema, Query(where, meta.default_sort, skip, batch_size))
        if not rows:
            break
        held = {
            r["id"]: meta.row_to_attrs(r)
            for r in await dst.get(dst_schema, [r["id"] for r in rows])
        }
        sends: list[dict[str, Any]] = []
        created: set[str] = set()
        for row in rows:
            attrs = meta.row_to_attrs(row)
            old = held.get(row["id"])
            if old is not None and old == attrs:
                report.unchanged += 1
                continue
            if old is None:
                created.add(row["id"])
            # A copy stored before revisions existed gets one now, on its way over.
            sends.append({**attrs, "id": row["id"], REV: row.get(REV) or next_revision()})
        if sends:
            refused = set(await dst.write(dst_schema, sends))
            report.unchanged += len(refused)  # the destination holds a newer revision
            report.created += len(created - refused)
            report.updated += len(sends) - len(created | refused)
        if progress is not None:
            progress(report)
        if len(rows) < batch_size:
            break
        skip += batch_size
    return report
