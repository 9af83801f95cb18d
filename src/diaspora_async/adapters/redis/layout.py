"""How the Redis adapter lays one model out in keys and encodes its values.

Sits under ``adapter.py``: the adapter asks ``layout(prefix, schema)`` once per
schema and gets a ``Layout`` holding every key name, the per-field encoders (row value ->
hash field value) and decoders (``HGETALL`` reply -> row), and the index plan inputs.

Storage, per entity: one hash at ``{prefix}:{collection}:{id}`` whose fields are the
stored field names (plus ``id``) and whose values are the field values encoded by kind:
str as its UTF-8 text, int/float as ``repr``, bool as ``1``/``0``, datetime as epoch
milliseconds, and list/dict/any as JSON in which datetimes are tagged ``{"$date": ms}``
(user dict keys starting with ``$`` are escaped to ``$$``, so the tag cannot be forged).
A None value is simply absent from the hash. These encodings double as index tokens:
the Lua scripts put a str/bool value straight into a set key name and an int/float/
datetime value straight into a sorted-set score, so Python and Lua agree on them by
construction. Collection-wide keys live under ``{prefix}/{collection}/`` (a ``/``
after the prefix, where entity keys have ``:``), so no id can name one of them.

Revisions (DESIGN.md 6.1): a live hash also holds ``_rev`` (the revision string, kept as
is; fixed-width lowercase hex, so Lua's byte-wise ``<`` orders it); a hash without one
was written before revisions existed and reads as revision None. A **tombstone** stays
at the entity key as a hash of exactly ``_rev`` and ``_del`` (the deletion time, epoch
microseconds): no ``id`` and no field values, and it is in no index and not in the id
set, so reads, queries and counts never meet it, while the write script still finds its
revision at the same key. Every tombstone's id is also in the sorted set
``{prefix}/{collection}/tombs`` scored by that deletion time, so ``purge`` finds the
old ones with one range query instead of scanning keys. An entity key therefore exists
iff the store holds a live copy or a tombstone: ``insert`` refuses both with one
``EXISTS``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ...errors import ConfigError
from ..base import DELETED, REV, CollectionSchema, Row

__all__ = ["EQ_KINDS", "NUM_KINDS", "Layout", "layout", "to_ms", "to_us"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_US = timedelta(microseconds=1)
NUM_KINDS = frozenset({"int", "float", "datetime"})  # indexed in a sorted set by score
EQ_KINDS = frozenset({"str", "bool"})  # indexed in one set per value

Encoder = Callable[[Any], bytes | str | int | float]
Decoder = Callable[[bytes], Any]


def to_ms(value: datetime) -> int:
    """Epoch milliseconds of an aware datetime (exact integer arithmetic)."""
    return (value - EPOCH) // _MS


def to_us(value: datetime) -> int:
    """Epoch microseconds of an aware datetime: a tombstone's deletion time, exact (the
    purge bound compares to the microsecond; below 2**53, so a sorted-set score holds it)."""
    return (value - EPOCH) // _US


def _from_ms(raw: bytes) -> datetime:
    return EPOCH + timedelta(milliseconds=int(raw))


def _tag_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$date": to_ms(value)}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_tag_default).encode
_loads = json.loads


def _escape(value: Any) -> Any:
    if isinstance(value, dict):
        return {("$" + k if k.startswith("$") else k): _escape(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_escape(v) for v in value]
    if isinstance(value, datetime):
        return {"$date": to_ms(value)}
    return value


def _unescape(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and "$date" in value:
            return EPOCH + timedelta(milliseconds=value["$date"])
        return {(k[1:] if k.startswith("$") else k): _unescape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unescape(v) for v in value]
    return value


def encode_json(value: Any) -> str:
    """JSON text of a list/dict/any value; datetimes tagged, ``$`` keys escaped."""
    text = _dumps(value)
    # '"$' can only appear if a datetime was tagged or some key/string starts with '$':
    # only then is the (slower) escaping walk needed.
    return _dumps(_escape(value)) if '"$' in text else text


def decode_json(raw: bytes) -> Any:
    """Inverse of ``encode_json``."""
    value = _loads(raw)
    return _unescape(value) if b'"$' in raw else value


def _enc_bool(value: Any) -> bytes:
    return b"1" if value else b"0"


def _enc_datetime(value: Any) -> int:
    return to_ms(value)


def _enc_plain(value: Any) -> Any:
    return value  # str/int/float: the driver's encoder writes str UTF-8, numbers as repr


def _dec_str(raw: bytes) -> str:
    return raw.decode()


def _dec_bool(raw: bytes) -> bool:
    return raw == b"1"


_ENCODERS: dict[str, Encoder] = {
    "str": _enc_plain, "int": _enc_plain, "float": _enc_plain, "bool": _enc_bool,
    "datetime": _enc_datetime, "list": encode_json, "dict": encode_json, "any": encode_json,
}  # fmt: skip
_DECODERS: dict[str, Decoder] = {
    "str": _dec_str, "int": int, "float": float, "bool": _dec_bool,
    "datetime": _from_ms, "list": decode_json, "dict": decode_json, "any": decode_json,
}  # fmt: skip


def _field_key(base: str, stored: str) -> str:
    # Length-prefixed so field "a/b" and field "a" + value "b..." can never meet.
    return f"{base}{len(stored)}:{stored}"


@dataclass(frozen=True, slots=True, eq=False)
class Layout:
    """Everything the adapter needs to read and write one collection.

    Attributes:
        entity: prefix of entity keys (``{prefix}:{collection}:``); append the id.
        ids: sorted set of every id (score 0, so members sort by id bytes = code points).
        registry: set of value-set keys created by writes, so ``drop`` can find them.
        num: logical field -> sorted set (member id, score = value) for int/float/datetime.
        eq: logical field -> prefix of per-value set keys (append the encoded value).
        unique: logical field -> hash (encoded value -> owning id).
        encoders: logical field -> (stored name, encoder).
        decoders: stored name (bytes) -> (logical name, decoder).
        stored: logical field -> stored name.
        tombs: sorted set of tombstone ids, scored by deletion time (epoch microseconds).
        blank: the row every decoded row starts from (``id``, ``REV`` and every declared
            field, all None), so a value absent from the hash reads as None.
    """

    entity: str
    ids: str
    registry: str
    num: Mapping[str, str]
    eq: Mapping[str, str]
    unique: Mapping[str, str]
    encoders: Mapping[str, tuple[str, Encoder]]
    decoders: Mapping[bytes, tuple[str, Decoder]]
    stored: Mapping[str, str]
    tombs: str
    blank: Mapping[str, None]

    def key(self, id_: str) -> str:
        """The entity key of ``id_`` (the id is data: it is appended, never parsed)."""
        return self.entity + id_

    def encode_row(self, row: Row, out: list[Any]) -> int:
        """Append ``stored, value`` pairs of the non-None fields of ``row`` to ``out``.

        Returns the number of pairs (``id`` included, always first).
        """
        encoders = self.encoders
        out += ("id", row["id"])
        n = 1
        for name, value in row.items():
            if value is None or name == "id":
                continue
            stored, enc = encoders[name]
            out += (stored, enc(value))
            n += 1
        return n

    def encode_full(self, row: Row, out: list[Any]) -> int:
        """Like ``encode_row`` for a ``write`` row: ``id`` then ``REV`` first (the write
        script reads them at fixed places), then the non-None fields."""
        encoders = self.encoders
        out += ("id", row["id"], REV, row[REV])
        n = 2
        for name, value in row.items():
            if value is None or name == "id" or name == REV:
                continue
            stored, enc = encoders[name]
            out += (stored, enc(value))
            n += 1
        return n

    def encode_value(self, name: str, value: Any) -> Any:
        """The stored encoding of one field value (also its index token)."""
        return self.encoders[name][1](value)

    def decode(self, reply: Mapping[bytes, bytes] | Sequence[bytes]) -> Row | None:
        """A row from an ``HGETALL`` reply (a map under RESP3, flat pairs under RESP2).

        Returns None for an empty reply (no such entity) and for a tombstone.
        """
        if not reply:
            return None
        decoders = self.decoders
        row: Row = dict(self.blank)
        if isinstance(reply, Mapping):
            pairs: Iterable[tuple[bytes, bytes]] = reply.items()
        else:
            it = iter(reply)
            pairs = zip(it, it, strict=False)
        for k, v in pairs:
            spec = decoders.get(k)
            if spec is not None:  # fields no longer declared are ignored
                row[spec[0]] = spec[1](v)
        return None if DELETED in row else row


def layout(prefix: str, schema: CollectionSchema) -> Layout:
    """Build the ``Layout`` of ``schema`` under ``prefix``.

    Raises:
        ConfigError: the collection name contains ``:`` or ``/``, which would let two
            collections share key names.
    """
    coll = schema.collection
    if ":" in coll or "/" in coll:
        raise ConfigError(
            f"model {schema.model}: a Redis collection name cannot contain ':' or '/' "
            f"(got {coll!r})"
        )
    meta = f"{prefix}/{coll}/"
    num: dict[str, str] = {}
    eq: dict[str, str] = {}
    unique: dict[str, str] = {}
    # REV is stored under its own name (remaps never rename it); DELETED is only ever
    # read to recognise a tombstone.
    encoders: dict[str, tuple[str, Encoder]] = {REV: (REV, _enc_plain)}
    decoders: dict[bytes, tuple[str, Decoder]] = {
        b"id": ("id", _dec_str),
        REV.encode(): (REV, _dec_str),
        DELETED.encode(): (DELETED, _dec_str),
    }
    for name, spec in schema.fields.items():
        stored = schema.stored[name]
        if stored in (REV, DELETED):
            raise ConfigError(
                f"model {schema.model}: {stored!r} is reserved in Redis hashes "
                f"(field {name!r} cannot be stored under it)"
            )
        encoders[name] = (stored, _ENCODERS[spec.kind])
        decoders[stored.encode()] = (name, _DECODERS[spec.kind])
        if spec.index and spec.kind in NUM_KINDS:
            num[name] = _field_key(meta + "n/", stored)
        elif spec.index and spec.kind in EQ_KINDS:
            eq[name] = _field_key(meta + "e/", stored) + "="
        if spec.unique:
            unique[name] = _field_key(meta + "u/", stored)
    return Layout(
        entity=f"{prefix}:{coll}:",
        ids=meta + "ids",
        registry=meta + "keys",
        num=num,
        eq=eq,
        unique=unique,
        encoders=encoders,
        decoders=decoders,
        stored=dict(schema.stored),
        tombs=meta + "tombs",
        blank=dict.fromkeys(("id", REV, *schema.fields)),
    )
