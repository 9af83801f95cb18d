"""Compensation (``on_error="compensate"``): write the state before a call back.

Shared by persist and destroy. The previous state (the attributes an entity's revision
stood for before the call, or "not stored" for an entity the call created) is written
with a NEW revision, so it supersedes whatever of the call landed, to every source that
took the write or may have taken it. A source that meanwhile got a newer write from
someone else keeps that one (the write is revision-guarded like any other).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..adapters.base import DELETED, REV
from ..meta import ModelMeta
from ..revisions import newest, next_revision
from ..state import EntityCore, confirm, forget, stamp, supersede

__all__ = ["restore_prior"]

Prior = tuple[str | None, dict[str, Any] | None]
"""An entity's (revision, attributes) before a call; attributes None: not stored."""


async def restore_prior(
    meta: ModelMeta,
    entities: Sequence[EntityCore],
    prior: Sequence[Prior],
    targets: list[str],
) -> dict[str, BaseException | None]:
    """Write each entity's prior state to ``targets``; each source's outcome (None: ok)."""
    revision = next_revision(newest([e._rev for e in entities]))
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for e, (_, base) in zip(entities, prior, strict=True):
        if base is None:
            rows.append({"id": e._id, REV: revision, DELETED: now})
        else:
            row = base.copy()
            row["id"] = e._id
            row[REV] = revision
            rows.append(row)

    async def one(source: str) -> None:
        adapter, schema = await meta.target(source)
        refused = set(await adapter.write(schema, rows))
        for e, (_, base) in zip(entities, prior, strict=True):
            if e._id in refused:
                supersede(e, source)
            elif base is None:
                forget(e, source)
            else:
                confirm(e, source, base)

    outcomes = await asyncio.gather(*(one(s) for s in targets), return_exceptions=True)
    for e, (_, base) in zip(entities, prior, strict=True):
        stamp(e, revision, base)
    result: dict[str, BaseException | None] = {}
    for source, outcome in zip(targets, outcomes, strict=True):
        if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
            raise outcome
        result[source] = outcome
    return result
