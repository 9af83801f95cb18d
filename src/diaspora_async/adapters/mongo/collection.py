"""What the ``mongo`` adapter compiles once per collection schema: names, documents, filters.

Sits between ``MongoAdapter`` (which keeps one ``MongoCollection`` per ``CollectionSchema``)
and the driver: rows become documents (``_id`` = id, None = missing, dicts with sorted
keys), documents become rows, change dicts become update documents, and every read or
conditional write gets its filter here, so the tombstone rule lives in one place.

Documents. A live copy holds ``_id``, ``_rev`` (absent for rows stored before revisions
existed) and its field values; a tombstone holds ``_id``, ``_rev`` and ``_del`` (the
deletion time) and nothing else, so declared unique indexes, which are partial on the
field's existence, never index it. Every read excludes ``_del`` documents: in the
filter (``MongoCollection.where``, ``by_ids``) or, for ``get``, as they arrive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import InsertOne, ReplaceOne

from ...query.ast import Node, SortKey
from ..base import DELETED, REV, Row
from .filter import Filter, MongoFilterCompiler, canonical, requires_a_field

__all__ = ["ABSENT", "PRESENT", "MongoCollection", "WriteOp"]

WriteOp = InsertOne[Any] | ReplaceOne[Any]

PRESENT: Filter = {"$exists": True}
ABSENT: Filter = {"$exists": False}
"""``_del: ABSENT`` is the live-documents condition: a plain top-level condition, which
SecantusDB (and MongoDB) combine with an index on the other conditions (``_id``, a
declared index), unlike ``$nor``/``$or`` forms, which SecantusDB answers by a scan."""


@dataclass(eq=False, slots=True)
class MongoCollection:
    """Per-schema compiled state: names, the filter compiler, the driver collection."""

    coll: Any
    compiler: MongoFilterCompiler
    names: dict[str, str]  # logical -> document key (``id`` -> ``_id``, ``_rev`` -> ``_rev``)
    back: dict[str, str]  # document key -> logical
    canonical: frozenset[str]  # logical fields whose values may hold dicts
    blank: Row  # ``id``, ``REV`` and every declared field, all None: a decoded row's start
    sorts: dict[tuple[SortKey, ...], list[tuple[str, int]]] = field(default_factory=dict)

    def encode(self, row: Row) -> dict[str, Any]:
        """A document for ``row``: ``_id`` first, no None values (None is missing)."""
        doc = {"_id": row["id"]}
        names, canon = self.names, self.canonical
        for key, value in row.items():
            if value is None or key == "id":
                continue
            doc[names[key]] = canonical(value) if key in canon else value
        return doc

    def decode(self, doc: dict[str, Any]) -> Row:
        """A row from a document the driver just built (so no copy is needed): ``id``,
        ``REV`` and every declared field, None where the document lacks it."""
        row = self.blank.copy()
        row["id"] = doc.pop("_id")
        back = self.back
        for key, value in doc.items():
            name = back.get(key)
            if name is not None:
                row[name] = value
        return row

    def changes(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """An update document: ``$set`` the values, ``$unset`` the Nones."""
        to_set: dict[str, Any] = {}
        to_unset: dict[str, str] = {}
        names, canon = self.names, self.canonical
        for key, value in changes.items():
            if key == "id":
                continue
            if value is None:
                to_unset[names[key]] = ""
            else:
                to_set[names[key]] = canonical(value) if key in canon else value
        update: dict[str, Any] = {"$set": to_set}  # ``$set: {}`` is a no-op (MongoDB >= 5)
        if to_unset:
            update["$unset"] = to_unset
        return update

    def sort(self, keys: tuple[SortKey, ...]) -> list[tuple[str, int]]:
        """The driver's sort spec for ``keys`` (compiled once per distinct sort)."""
        spec = self.sorts.get(keys)
        if spec is None:
            spec = self.sorts[keys] = self.compiler.sort(keys)
        return spec

    # -- filters ---------------------------------------------------------------------
    def where(self, where: Node | None) -> Filter:
        """The filter of the live documents matching ``where``.

        A filter that needs some declared field to hold a value cannot match a
        tombstone and is sent as it is; any other gets ``_del: ABSENT`` beside its keys (top-level
        keys are ANDed, and no compiled filter has a ``_del`` key: the name is refused
        for fields).
        """
        flt = self.compiler.compile(where)
        if requires_a_field(flt):
            return flt
        return {**flt, DELETED: ABSENT}

    @staticmethod
    def by_ids(ids: list[str], live: bool = True) -> Filter:
        """The filter of the documents with these ids (live ones only, by default)."""
        flt: Filter = {"_id": ids[0]} if len(ids) == 1 else {"_id": {"$in": ids}}
        if live:
            flt[DELETED] = ABSENT
        return flt

    def write_ops(
        self,
        rows: Sequence[Row],
        expect: Sequence[str | None] | None,
        fresh: bool = True,
        insert_first: bool = False,
    ) -> tuple[list[WriteOp], list[int]]:
        """One op per row, the revision guard in its filter; also the indexes of the
        plain replaces among them (no upsert: rows expecting a revision).

        The guard ``_rev: {$not: {$gte: rev}}`` matches an older, null or missing
        revision in one condition on one field (``$or`` of ``$lt`` and ``null`` reads
        the same but makes SecantusDB scan the collection instead of using ``_id``).
        When an upsert's filter does not match a stored id, its insert fails with a
        duplicate ``_id``: that is how the caller learns, per row, that it was refused.
        A row expecting a revision must not be created where none is stored, so it is a
        plain replace (no upsert), whose misses only show in the matched count.

        A row expecting no live copy (a create) is, with ``fresh``, a plain insert: the
        usual case, an id never stored, then costs an insert (about a third of an
        upsert's time on SecantusDB), and a stored id fails it with a duplicate
        ``_id`` like a refused upsert. Only an id whose stored copy is an older
        tombstone must be replaced instead: the caller learns it from the stored
        revisions and calls again without ``fresh``, which guards it as an upsert.
        """
        ops: list[WriteOp] = []
        plain: list[int] = []
        encode = self.encode
        for i, row in enumerate(rows):
            rev = row[REV]
            if DELETED in row:
                doc: dict[str, Any] = {"_id": row["id"], REV: rev, DELETED: row[DELETED]}
            else:
                doc = encode(row)
            if expect is None:
                if insert_first:  # believed new: a stored id fails like a refusal, and
                    ops.append(InsertOne(doc))  # the caller retries it guarded
                    continue
                flt: Filter = {"_id": row["id"], REV: {"$not": {"$gte": rev}}}
            elif (wanted := expect[i]) is None:  # no live copy: absent or an older tombstone
                if fresh:
                    ops.append(InsertOne(doc))
                    continue
                flt = {"_id": row["id"], DELETED: PRESENT, REV: {"$not": {"$gte": rev}}}
            else:  # a live copy at exactly ``wanted`` ("" is a pre-revision row: null)
                flt = {"_id": row["id"], DELETED: ABSENT, REV: wanted or None}
                ops.append(ReplaceOne(flt, doc))
                plain.append(i)
                continue
            ops.append(ReplaceOne(flt, doc, upsert=True))
        return ops, plain
