"""Field types beyond JSON's: how an enum, a Decimal, a UUID, a date or a nested pydantic
model is stored, and read back as the declared type.

Sits under ``fields.py``. Adapters only ever see JSON-like values (str, int, float, bool,
aware UTC datetimes, lists, dicts): a field whose declared type holds anything else gets a
``Codec``. Its ``encode`` runs inside the model's pydantic validator, right after the value
is cast, so validated attributes, rows, snapshots and query operands all hold the *stored*
form and every adapter, diff and revision works on it unchanged; its ``decode`` runs when
user code reads the attribute (``entity.status``, ``to_dict()``), so what comes back is of
the declared type whatever store it came from.

Stored forms: an enum by its value, a ``Decimal`` by its exact text, a ``UUID`` by its
canonical text, a top-level ``date`` by the aware UTC datetime of its midnight (so range
queries and sorting compare dates natively in every store), a set or tuple as a list, and
anything nested (models, lists and dicts of the above) in pydantic's JSON mode.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

import pydantic
from pydantic import TypeAdapter

from .errors import ConfigError

__all__ = ["Codec", "codec_for", "enum_kind", "literal_of_members", "special_kind"]

# The storage kinds (fields.Kind) a special type takes; date at the top level only.
_TEXT = (Decimal, UUID)


@dataclass(frozen=True, slots=True)
class Codec:
    """How one field's declared values map to stored ones and back.

    Attributes:
        encode: declared (already cast) value -> stored, JSON-like value.
        decode: stored value (or a declared one not yet validated) -> declared value.
        ordered: whether the stored form orders like the declared values (False for
            ``Decimal``, stored as text: range queries and sorting on it are refused).
    """

    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]
    ordered: bool = True


def enum_kind(tp: type[enum.Enum]) -> str:
    """The storage kind of an enum: that of its values, which must all be of one type."""
    kinds = set()
    for member in tp:
        value = member.value
        if isinstance(value, bool):
            kinds.add("bool")
        elif isinstance(value, int):
            kinds.add("int")
        elif isinstance(value, float):
            kinds.add("float")
        elif isinstance(value, str):
            kinds.add("str")
        else:
            raise ConfigError(
                f"enum {tp.__name__} has the value {value!r} ({type(value).__name__}): "
                "no store can hold it; give its members str, int or float values"
            )
    if kinds == {"int", "float"}:
        return "float"
    if len(kinds) != 1:
        raise ConfigError(
            f"enum {tp.__name__} mixes value types ({', '.join(sorted(kinds))}): "
            "give every member a value of one type"
        )
    return kinds.pop()


def special_kind(tp: Any, top: bool) -> str | None:
    """The storage kind of a special scalar type, or None if ``tp`` is none of them."""
    if not isinstance(tp, type):
        return None
    if issubclass(tp, enum.Enum):
        return enum_kind(tp)
    if issubclass(tp, _TEXT):
        return "str"
    if issubclass(tp, datetime):
        return None
    if issubclass(tp, date):
        return "datetime" if top else "str"
    if issubclass(tp, pydantic.BaseModel):
        return "dict"
    return None


def _needs_codec(tp: Any) -> bool:
    if isinstance(tp, type):
        return issubclass(tp, enum.Enum | Decimal | UUID | pydantic.BaseModel) or (
            issubclass(tp, date) and not issubclass(tp, datetime)
        )
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Annotated:
        return _needs_codec(args[0])
    if origin in (set, frozenset, tuple):
        return True
    if origin is Literal:
        return any(isinstance(v, enum.Enum) for v in args)
    return any(_needs_codec(a) for a in args)


def _core(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _midnight(value: date) -> datetime:
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def _as_date(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value


def _literal_codec(values: tuple[Any, ...]) -> Codec:
    members = {v.value: v for v in values if isinstance(v, enum.Enum)}

    def encode(value: Any) -> Any:
        return value.value if isinstance(value, enum.Enum) else value

    def decode(value: Any) -> Any:
        return value if isinstance(value, enum.Enum) else members.get(value, value)

    return Codec(encode, decode)


def literal_of_members(tp: Any) -> bool:
    """Whether ``tp`` is a ``Literal`` naming enum members."""
    return typing.get_origin(tp) is Literal and any(
        isinstance(v, enum.Enum) for v in typing.get_args(tp)
    )


def codec_for(tp: Any) -> Codec | None:
    """The codec of a field of declared type ``tp`` (Optional already unwrapped); None
    when its values are stored as they are."""
    if not _needs_codec(tp):
        return None
    core = _core(tp)
    if typing.get_origin(core) is Literal:  # of enum members: stored by their values
        return _literal_codec(typing.get_args(core))
    if core is date:  # validated as a date by the field's own type first
        return Codec(_midnight, _as_date)
    adapter: TypeAdapter[Any] = TypeAdapter(tp)
    dump = adapter.serializer.to_python
    load = adapter.validator.validate_python
    return Codec(
        encode=lambda value: dump(value, mode="json"),
        decode=load,
        ordered=not (isinstance(tp, type) and issubclass(tp, Decimal)),
    )
