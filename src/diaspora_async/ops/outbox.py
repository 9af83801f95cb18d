"""The durable outbox (DESIGN.md 6.2): write-ahead intents, delivered by replay or relays.

Under ``on_error="queue"`` (and for ``defer=`` sources) a write first records one
**intent** per entity and target source here (model, id, operation, payload, the write's
revision), in a data source of the user's choosing (``orm.use_outbox("local")``: a
SQLite file survives restarts); then it writes; then it removes the intents of the
sources that confirmed. A process killed at any moment leaves every unconfirmed write
as an intent. Delivery (``replay`` or a ``Relay``) sends them as one revision-guarded
write per (model, source), so it is idempotent and order-free: an intent older than
what the store holds since is a no-op, never an overwrite or a resurrection.

Several deliverers may run at once (processes sharing the outbox): each intent is
*claimed* with a lease before it is sent, by a conditional write on the intent's own
revision (``Adapter.write`` with an expectation: a compare-and-set every store has), so
one deliverer at a time sends it; a lease that expires (its holder died) frees it. A
failed delivery counts an attempt, records the error and backs off exponentially;
after ``max_attempts`` the intent is marked dead and kept, listed, not retried.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic_core import to_json

from ..adapters.base import DELETED, REV, Adapter, CollectionSchema
from ..errors import ConfigError, DiasporaError
from ..fields import MISSING, build_field
from ..ids import new_ids
from ..meta import ModelMeta
from ..query.ast import Query
from ..query.parse import parse_sort, parse_where
from ..revisions import next_revision
from ..sources import Catalog

__all__ = ["Delivery", "Outbox"]

log = logging.getLogger("diaspora_async.outbox")

_FIELDS = {
    "model": build_field("model", str, MISSING),
    "source": build_field("source", str, MISSING),
    "op": build_field("op", str, MISSING),
    "entity_id": build_field("entity_id", str, MISSING),
    # The entity's attributes as JSON text, encoded once at record time: a claim or a
    # failure rewrites the intent, and re-encoding a dict each time cost a quarter of a
    # replay. (An outbox written by 0.1 may hold a JSON object here: read alike.)
    "payload": build_field("payload", str | None, None),
    "revision": build_field("revision", str | None, None),
    "created": build_field("created", datetime, MISSING),
    "attempts": build_field("attempts", int | None, None),
    "last_error": build_field("last_error", str | None, None),
    "due": build_field("due", datetime | None, None),
    "round": build_field("round", str | None, None),
    "lease": build_field("lease", datetime | None, None),
    "dead": build_field("dead", bool | None, None),
}
_BY_ID = parse_sort(None, _FIELDS)


@dataclass
class Delivery:
    """What one delivery pass (or a whole replay) did, in intents."""

    replayed: int = 0
    failed: int = 0
    dead: int = 0

    def add(self, other: Delivery) -> None:
        self.replayed += other.replayed
        self.failed += other.failed
        self.dead += other.dead

    def as_dict(self) -> dict[str, int]:
        return {"replayed": self.replayed, "failed": self.failed, "dead": self.dead}


class Outbox:
    """Write-ahead intents stored in one data source (``orm.use_outbox("local")``).

    Args:
        max_attempts: failed deliveries after which an intent is dead (kept, listed).
        lease: seconds a deliverer holds the intents it claimed.
        backoff: (first, longest) wait in seconds before retrying a failed intent;
            doubling per attempt.
    """

    def __init__(
        self,
        catalog: Catalog,
        source: str,
        collection: str,
        *,
        max_attempts: int = 10,
        lease: float = 30.0,
        backoff: tuple[float, float] = (0.5, 60.0),
    ) -> None:
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ConfigError(f"outbox max_attempts must be an integer >= 1, got {max_attempts!r}")
        if not lease > 0 or not 0 < backoff[0] <= backoff[1]:
            raise ConfigError("outbox lease and backoff must be positive seconds")
        self.catalog = catalog
        self.source = source
        self.schema = CollectionSchema("Outbox", collection, _FIELDS)
        self.max_attempts = max_attempts
        self.lease = timedelta(seconds=lease)
        self.backoff = backoff
        # Acknowledgements of the write path, removed in the background (see ``settle``).
        self._acks: list[str] = []
        self._flusher: asyncio.Task[None] | None = None

    async def _target(self) -> Adapter:
        ds = self.catalog.sources.get(self.source)
        if ds is None:
            raise ConfigError(f"the outbox data source {self.source!r} does not exist")
        await ds.ensure(self.schema)
        return ds.adapter

    async def ready(self) -> None:
        """Make sure the outbox's collection exists (once per connection)."""
        await self._target()

    # -- the write path ------------------------------------------------------------------
    def intents(
        self,
        model: str,
        what: str,
        items: Sequence[tuple[str, dict[str, Any] | None, str]],
        sources: Sequence[str],
    ) -> dict[str, list[dict[str, Any]]]:
        """The intent rows of one write, per source (no I/O): one per ``(id, attributes
        or None, revision)`` item and source."""
        now = datetime.now(UTC)
        stamp = next_revision()
        payloads = [None if attrs is None else to_json(attrs).decode() for _, attrs, _ in items]
        ids = iter(new_ids(len(items) * len(sources)))
        return {
            source: [
                {
                    "id": next(ids),
                    REV: stamp,  # the intent's own revision: claims compare-and-set it
                    "model": model,
                    "source": source,
                    "op": what,
                    "entity_id": entity_id,
                    "payload": payload,
                    "revision": revision,
                    "created": now,
                    "attempts": 0,
                    "last_error": None,
                    "due": None,
                    "round": None,
                    "lease": None,
                    "dead": False,
                }
                for (entity_id, _, revision), payload in zip(items, payloads, strict=True)
            ]
            for source in sources
        }

    async def record(
        self,
        model: str,
        what: str,
        items: Sequence[tuple[str, dict[str, Any] | None, str]],
        sources: Sequence[str],
    ) -> dict[str, list[str]]:
        """Write ahead: the intents of ``items`` for ``sources`` in one batch; their ids
        per source."""
        adapter = await self._target()
        rows = self.intents(model, what, items, sources)
        await adapter.insert(self.schema, [r for per in rows.values() for r in per])
        return {source: [r["id"] for r in per] for source, per in rows.items()}

    async def ack(self, ids: Sequence[str]) -> None:
        """Remove intents whose source confirmed the write."""
        if ids:
            adapter = await self._target()
            await adapter.delete(self.schema, list(ids))

    def settle(self, ids: Sequence[str]) -> None:
        """Remove these delivered intents soon, in the background, batched with others.

        The write path does not wait for its acknowledgement: an intent whose removal is
        lost (a crash first) is delivered once more, which the revision guard makes a
        no-op. Every reader of the outbox (``pending``, ``stats``, delivery) and the
        registry's ``close()`` wait for the removals first (``flush``).
        """
        if not ids:
            return
        self._acks.extend(ids)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        try:
            await self.flush()
        except DiasporaError as exc:  # kept for the next flush; delivery is harmless anyway
            log.warning("outbox: could not remove %d delivered intents: %s", len(self._acks), exc)

    async def flush(self) -> None:
        """Wait until every acknowledgement handed to ``settle`` is written (the one in
        flight in the background included)."""
        flusher = self._flusher
        if flusher is not None and not flusher.done() and flusher is not asyncio.current_task():
            await asyncio.shield(flusher)
        while self._acks:
            batch, self._acks = self._acks, []
            try:
                await self.ack(batch)
            except BaseException:
                self._acks[:0] = batch
                raise

    async def note_failure(self, ids: Sequence[str], error: BaseException) -> None:
        """Record the error of a write-path failure on its intents (left for delivery)."""
        if ids:
            adapter = await self._target()
            text = _error_text(error)
            await adapter.update(self.schema, [(i, {"last_error": text}) for i in ids])

    # -- reading -------------------------------------------------------------------------
    async def _find(self, where: Any, limit: int | None = None) -> list[dict[str, Any]]:
        await self.flush()
        adapter = await self._target()
        node = parse_where(where, _FIELDS, "Outbox")
        return list(await adapter.find(self.schema, Query(node, _BY_ID, 0, limit)))

    async def pending(
        self, model: str | None = None, source: str | None = None
    ) -> list[dict[str, Any]]:
        """The intents not delivered yet (dead ones included, flagged), oldest first."""
        where: dict[str, Any] = {}
        if model is not None:
            where["model"] = model
        if source is not None:
            where["source"] = source
        return await self._find(where or None)

    async def stats(self) -> list[dict[str, Any]]:
        """Per (model, source): ``pending`` (live intents), ``dead``, ``oldest_age``
        (seconds since the oldest live intent was recorded; None when there is none)."""
        now = datetime.now(UTC)
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        for row in await self._find(None):
            g = groups.setdefault(
                (row["model"], row["source"]),
                {"model": row["model"], "source": row["source"], "pending": 0, "dead": 0,
                 "oldest_age": None},
            )  # fmt: skip
            if row["dead"]:
                g["dead"] += 1
                continue
            g["pending"] += 1
            age = (now - row["created"]).total_seconds()
            if g["oldest_age"] is None or age > g["oldest_age"]:
                g["oldest_age"] = age
        return list(groups.values())

    # -- delivery ------------------------------------------------------------------------
    async def deliver(
        self, batch_size: int, *, round_id: str | None = None
    ) -> tuple[Delivery, int]:
        """One pass: claim up to ``batch_size`` intents, send them as one guarded write
        per (model, source), remove the delivered ones; returns what it did and how many
        candidates it found (0: nothing to do).

        Candidates are live intents no other deliverer holds, oldest first: those due
        (past their backoff) or, with ``round_id`` (a replay), those this replay has not
        tried yet, whatever their backoff (a failure is marked with the round).
        """
        now = datetime.now(UTC)
        free = [{"lease": None}, {"lease": {"<": now}}]  # not claimed, or its lease ran out
        if round_id is None:
            ready: list[dict[str, Any]] = [{"due": None}, {"due": {"<=": now}}]
        else:
            ready = [{"round": None}, {"round": {"!=": round_id}}]
        where = {"dead": {"!=": True}, "$and": [{"$or": free}, {"$or": ready}]}
        candidates = await self._find(where, batch_size)
        if not candidates:
            return Delivery(), 0
        claimed = await self._claim(candidates, now)
        done = Delivery()
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in claimed:
            groups.setdefault((row["model"], row["source"]), []).append(row)
        for (model, source), rows in groups.items():
            done.add(await self._send(model, source, rows, now, round_id))
        return done, len(candidates)

    async def _claim(self, rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
        """Lease ``rows`` by compare-and-set on their revision; the ones we got."""
        adapter = await self._target()
        token = next_revision()
        until = now + self.lease
        claims = [{**row, REV: token, "lease": until} for row in rows]
        refused = set(await adapter.write(self.schema, claims, [r[REV] or "" for r in rows]))
        return [c for c in claims if c["id"] not in refused]

    async def _send(
        self,
        model_name: str,
        source: str,
        rows: list[dict[str, Any]],
        now: datetime,
        round_id: str | None,
    ) -> Delivery:
        model = self.catalog.models.get(model_name)
        try:
            if model is None:
                raise ConfigError(f"no model {model_name!r} is declared in this process")
            meta: ModelMeta = model.__meta__
            target, schema = await meta.target(source)
            # The newest intent per entity is the one to send; the store would refuse the
            # older ones anyway, and they go with it.
            newest: dict[str, dict[str, Any]] = {}
            for row in rows:
                held = newest.get(row["entity_id"])
                if held is None or (held["revision"] or "") <= (row["revision"] or ""):
                    newest[row["entity_id"]] = row
            await target.write(schema, _writes(meta, list(newest.values())))
        except DiasporaError as exc:
            return await self._failed(rows, exc, now, round_id)
        await self.ack([r["id"] for r in rows])
        return Delivery(replayed=len(rows))

    async def _failed(
        self, rows: list[dict[str, Any]], exc: BaseException, now: datetime, round_id: str | None
    ) -> Delivery:
        """Count an attempt on each claimed intent, back off, mark dead at the limit."""
        adapter = await self._target()
        first, longest = self.backoff
        text = _error_text(exc)
        token = next_revision()
        updated = []
        dead = 0
        for row in rows:
            attempts = (row["attempts"] or 0) + 1
            is_dead = attempts >= self.max_attempts
            dead += is_dead
            wait = min(longest, first * 2 ** (attempts - 1))
            updated.append(
                {**row, REV: token, "attempts": attempts, "last_error": text, "lease": None,
                 "due": now + timedelta(seconds=wait), "round": round_id, "dead": is_dead}
            )  # fmt: skip
        await adapter.write(self.schema, updated, [r[REV] for r in rows])  # still ours
        return Delivery(failed=len(rows), dead=dead)

    async def replay(self, batch_size: int = 500) -> dict[str, int]:
        """Deliver every live intent once now (ignoring backoff), oldest first; returns
        ``{"replayed", "failed", "dead"}`` (dead: marked dead by this replay)."""
        round_id = next_revision()  # unique: marks what this replay tried and failed
        total = Delivery()
        while True:
            done, seen = await self.deliver(batch_size, round_id=round_id)
            total.add(done)
            if seen == 0 or done.replayed + done.failed == 0:
                return total.as_dict()

    async def revive(self, model: str | None = None, source: str | None = None) -> int:
        """Make dead intents live again (after fixing what killed them); how many."""
        where: dict[str, Any] = {"dead": True}
        if model is not None:
            where["model"] = model
        if source is not None:
            where["source"] = source
        rows = await self._find(where)
        if rows:
            adapter = await self._target()
            token = next_revision()
            revived = [{**r, REV: token, "dead": False, "attempts": 0, "due": None} for r in rows]
            await adapter.write(self.schema, revived, [r[REV] or "" for r in rows])
        return len(rows)


def _writes(meta: ModelMeta, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The guarded writes the intents stand for: the entity's copy, or its tombstone."""
    live = [r for r in rows if r["op"] == "persist"]
    cast = meta.validator.validate_many([_attrs(r["payload"]) for r in live]) if live else []
    out: list[dict[str, Any]] = []
    for row, attrs in zip(live, cast, strict=True):
        attrs["id"] = row["entity_id"]
        attrs[REV] = row["revision"] or ""  # queued before revisions existed: the oldest
        out.append(attrs)
    for row in rows:
        if row["op"] != "persist":
            out.append(
                {"id": row["entity_id"], REV: row["revision"] or "", DELETED: row["created"]}
            )
    return out


def _attrs(payload: str | dict[str, Any] | None) -> dict[str, Any]:
    if isinstance(payload, str):
        loaded: dict[str, Any] = json.loads(payload)
        return loaded
    return payload or {}


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]
