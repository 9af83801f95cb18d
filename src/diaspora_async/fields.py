"""Field declarations and the one compiled pydantic validator per model.

Sits under ``models.py``: a model's annotations and ``field(...)`` options become
``FieldSpec`` records (what adapters read to build columns, indexes and queries) and one
``pydantic.TypeAdapter`` over a ``TypedDict`` of every field, so validating an entity is a
single call into pydantic-core that returns a plain dict. There is no hand-written type
checker here: casting and error messages are pydantic's.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Union

import pydantic
import typing_extensions
from pydantic import AfterValidator, AllowInfNan, ConfigDict, TypeAdapter

from .codecs import Codec, codec_for, literal_of_members, special_kind
from .errors import ConfigError, QueryError, ValidationError

__all__ = ["MISSING", "FieldSpec", "Kind", "ModelValidator", "field", "to_utc"]

Kind = Literal["str", "int", "float", "bool", "datetime", "list", "dict", "any"]


class _Missing:
    """Sentinel for "no default"; distinct from None, which is a valid default."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


@dataclass(frozen=True, slots=True)
class _FieldOptions:
    default: Any
    default_factory: Callable[[], Any] | None
    choices: tuple[Any, ...] | None
    validate: Callable[[Any], Any] | None
    index: bool
    unique: bool
    allow_inf_nan: bool = False


def field(
    *,
    default: Any = MISSING,
    default_factory: Callable[[], Any] | None = None,
    choices: typing.Iterable[Any] | None = None,
    validate: Callable[[Any], Any] | None = None,
    index: bool = False,
    unique: bool = False,
    allow_inf_nan: bool = False,
) -> Any:
    """Declare options for a model attribute.

    Args:
        default: value used when the attribute is not given.
        default_factory: called to make the default (for mutable defaults such as lists).
        choices: the only values allowed.
        validate: a callable run on the cast value; returning ``False`` or raising
            ``ValueError`` rejects it.
        index: build an index on this attribute in every source that supports one.
        unique: build a unique index (implies ``index``).
        allow_inf_nan: accept NaN and infinities in this float field (refused by
            validation otherwise: SQL stores cannot hold them, so a fan-out would store
            them in some sources and fail or store NULL in others).

    Returns:
        A marker consumed when the model class is created.
    """
    if default is not MISSING and default_factory is not None:
        raise ConfigError("field(): give either default or default_factory, not both")
    return _FieldOptions(
        default=default,
        default_factory=default_factory,
        choices=tuple(choices) if choices is not None else None,
        validate=validate,
        index=index or unique,
        unique=unique,
        allow_inf_nan=allow_inf_nan,
    )


def to_utc(value: datetime) -> datetime:
    """Normalise a datetime to aware UTC at millisecond precision.

    Naive datetimes are taken as UTC. Milliseconds are the finest precision every
    supported store keeps (BSON dates), so truncating here makes every source round-trip
    the same value and keeps per-source diffs honest.
    """
    tz = value.tzinfo
    if tz is not UTC:  # hot path: values read back from stores are already UTC
        value = value.replace(tzinfo=UTC) if tz is None else value.astimezone(UTC)
    extra = value.microsecond % 1000
    # Subtracting a cached timedelta is ~10x faster than datetime.replace(microsecond=...).
    return value - _MICROSECONDS[extra] if extra else value


_MICROSECONDS = [timedelta(microseconds=i) for i in range(1000)]


_UtcDatetime = Annotated[datetime, AfterValidator(to_utc)]


@dataclass(frozen=True, slots=True, eq=False)
class FieldSpec:
    """One attribute of a model, as adapters and the query parser see it.

    Attributes:
        name: the attribute name.
        annotation: the declared type (datetimes rewritten to the UTC-normalising type).
        kind: the storage kind: str, int, float, bool, datetime, list, dict or any.
        item_kind: for lists, the kind of the items.
        nullable: whether None is an accepted value.
        required: no default: the attribute must be given.
        index / unique: declared indexes.
        codec: for a type stored in another form (enum, Decimal, UUID, date, nested
            model...), how values are stored and read back (``codecs.py``); else None.
        declared: the declared type with its checks (choices, validate), values not
            encoded: what the model's pydantic shapes (``schema_for``) use.
    """

    name: str
    annotation: Any
    kind: Kind
    item_kind: Kind | None
    nullable: bool
    required: bool
    default: Any
    default_factory: Callable[[], Any] | None
    choices: tuple[Any, ...] | None
    validate: Callable[[Any], Any] | None
    index: bool
    unique: bool
    query_adapter: TypeAdapter[Any]
    codec: Codec | None = None
    declared: Any = None

    def make_default(self) -> Any:
        """Return a fresh default value (MISSING for a required field)."""
        if self.default_factory is not None:
            return self.default_factory()
        return self.default

    def cast(self, value: Any, what: str = "value") -> Any:
        """Cast a query operand to this field's type, or raise ``QueryError``."""
        try:
            return self.query_adapter.validate_python(value)
        except pydantic.ValidationError as exc:
            msg = exc.errors()[0]["msg"]
            raise QueryError(
                f"{what} {value!r} cannot match field {self.name!r} ({self.kind}): {msg}"
            ) from None


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        nullable = len(args) != len(typing.get_args(tp))
        if len(args) == 1:
            return args[0], nullable
        return Union[tuple(args)], nullable  # noqa: UP007 - rebuilt at runtime
    return tp, False


_SCALARS: dict[Any, Kind] = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    datetime: "datetime",
}


def _kind_of(tp: Any, top: bool = True) -> tuple[Kind, Kind | None]:
    tp, _ = _unwrap_optional(tp)
    if typing.get_origin(tp) is Annotated:
        return _kind_of(typing.get_args(tp)[0], top)
    special = special_kind(tp, top)
    if special is not None:
        return special, None  # type: ignore[return-value]
    if tp in _SCALARS:
        return _SCALARS[tp], None
    if tp is Any or tp is object:
        return "any", None
    origin = typing.get_origin(tp) or tp
    if not top and literal_of_members(tp):
        raise ConfigError(
            f"{tp!r} inside a container: no store keeps enum members there as such; "
            "use the enum type itself"
        )
    if origin is Literal:
        kinds = {_SCALARS.get(type(v)) for v in typing.get_args(tp)}
        return (kinds.pop() or "any", None) if len(kinds) == 1 else ("any", None)
    if origin in (list, tuple, set, frozenset):
        args = typing.get_args(tp)
        return "list", (_kind_of(args[0], top=False)[0] if args else "any")
    if origin is dict or origin is Mapping:
        if len(typing.get_args(tp)) == 2:
            _kind_of(typing.get_args(tp)[1], top=False)  # a storable value type, or ConfigError
        return "dict", None
    if typing_extensions.is_typeddict(tp):
        return "dict", None
    if isinstance(tp, type) and issubclass(tp, bool | int | float | str):
        for base, kind in _SCALARS.items():
            if issubclass(tp, base):
                return kind, None
    raise ConfigError(
        f"unsupported attribute type {getattr(tp, '__qualname__', tp)!r}: no adapter can "
        "store it (use str, int, float, bool, datetime, date, Decimal, UUID, an Enum, a "
        "Literal, a pydantic model, or lists and dicts of them)"
    )


_FINITE = Annotated[float, AllowInfNan(False)]
_ANY_FLOAT = Annotated[float, AllowInfNan(True)]


def _normalise(tp: Any, finite: bool = True) -> Any:
    """Rewrite ``datetime`` anywhere in an annotation to the UTC-normalising type, and
    ``float`` to a finite one (unless the field opts in to NaN and infinities)."""
    if tp is datetime:
        return _UtcDatetime
    if tp is float:
        return _FINITE if finite else _ANY_FLOAT
    origin = typing.get_origin(tp)
    if origin is None or origin is Literal:
        return tp
    args = typing.get_args(tp)
    if origin is Annotated:
        return Annotated[(_normalise(args[0], finite), *args[1:])]  # type: ignore[valid-type,unused-ignore]
    if origin in (Union, types.UnionType):
        return Union[tuple(_normalise(a, finite) for a in args)]  # noqa: UP007
    new_args = tuple(_normalise(a, finite) for a in args)
    if new_args == args:
        return tp
    return origin[new_args]


def _checker(
    name: str, spec_choices: tuple[Any, ...] | None, fn: Callable[[Any], Any] | None
) -> Any:
    def check(value: Any) -> Any:
        if value is None:
            return value
        if spec_choices is not None and value not in spec_choices:
            raise ValueError(f"must be one of {', '.join(map(repr, spec_choices))}")
        if fn is not None and fn(value) is False:
            raise ValueError(f"rejected by the validate function of {name!r}")
        return value

    return AfterValidator(check)


def build_field(name: str, annotation: Any, value: Any) -> FieldSpec:
    """Make a ``FieldSpec`` from a class annotation and its class-level value."""
    if isinstance(value, _FieldOptions):
        opts = value
    else:
        opts = _FieldOptions(value, None, None, None, False, False)
    try:
        kind, item_kind = _kind_of(annotation)
    except ConfigError as exc:
        raise ConfigError(f"attribute {name!r}: {exc}") from None
    base, nullable = _unwrap_optional(annotation)
    required = opts.default is MISSING and opts.default_factory is None
    if opts.default is None:
        nullable = True
    codec = codec_for(base)
    query_type = _normalise(base, not opts.allow_inf_nan)
    checked = query_type
    if opts.choices is not None or opts.validate is not None:
        # Choices and validate functions see the declared value, before it is encoded.
        checked = Annotated[checked, _checker(name, opts.choices, opts.validate)]
    declared = checked | None if nullable else checked
    if codec is not None:
        query_type = Annotated[query_type, AfterValidator(codec.encode)]
        checked = Annotated[checked, AfterValidator(codec.encode)]
    full = checked | None if nullable else checked
    return FieldSpec(
        name=name,
        annotation=full,
        kind=kind,
        item_kind=item_kind,
        nullable=nullable,
        required=required,
        default=opts.default,
        default_factory=opts.default_factory,
        choices=opts.choices,
        validate=opts.validate,
        index=opts.index,
        unique=opts.unique,
        query_adapter=TypeAdapter(query_type),
        codec=codec,
        declared=declared,
    )


ID_FIELD = FieldSpec(
    name="id", annotation=str, kind="str", item_kind=None, nullable=False, required=True,
    default=MISSING, default_factory=None, choices=None, validate=None, index=True,
    unique=True, query_adapter=TypeAdapter(str), declared=str,
)  # fmt: skip


def _format_loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(entity)"


def _format_many(loc: tuple[int | str, ...]) -> str:
    return f"[{loc[0]}]." + _format_loc(loc[1:])


def _by_index(error: tuple[str, str]) -> int:
    return int(error[0][1 : error[0].index("]")])


class ModelValidator:
    """The one compiled validator of a model: all fields in one pydantic-core call.

    ``validate(data)`` returns a new dict of cast values; ``validate_changes`` checks a
    partial dict (for ``update``) against the same field types.
    """

    def __init__(self, model: str, fields: Mapping[str, FieldSpec]) -> None:
        self.model = model
        self.fields = fields
        # One TypedDict over every field: pydantic-core validates it in one call and
        # returns a plain dict (no model instance to copy out of).
        make_typeddict: Any = typing_extensions.TypedDict
        td = make_typeddict(
            f"{model}Attributes",
            {name: spec.annotation for name, spec in fields.items()},
            total=False,
        )
        td.__pydantic_config__ = ConfigDict(extra="forbid")
        self._adapter: TypeAdapter[dict[str, Any]] = TypeAdapter(td)
        # Batches go through one call too: per-call overhead dominates small entities.
        self._many: TypeAdapter[list[dict[str, Any]]] = TypeAdapter(list[td])  # type: ignore[valid-type]
        self._required = frozenset(n for n, s in fields.items() if s.required)
        # The compiled pydantic-core validator itself: every persist calls it, and the
        # TypeAdapter method around it only forwards default options.
        self._validate_one: Callable[[Any], dict[str, Any]]
        self._validate_one = self._adapter.validator.validate_python

    def validate(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Cast a whole entity's attributes; raise ``ValidationError`` listing every bad field."""
        try:
            out = self._validate_one(data)
        except pydantic.ValidationError as exc:
            errors = [(_format_loc(e["loc"]), e["msg"]) for e in exc.errors()]
            errors += [(n, "Field required") for n in sorted(self._required - data.keys())]
            raise ValidationError(self.model, errors) from None
        # Valid, so its keys are fields: only one lacking some field can lack a required one.
        if len(out) < len(self.fields) and (missing := self._required - out.keys()):
            raise ValidationError(self.model, [(n, "Field required") for n in sorted(missing)])
        return out

    def validate_many(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Cast many entities' attributes in one call; errors carry ``[i].`` path prefixes."""
        if len(items) == 1:
            return [self.validate(items[0])]
        missing = [
            (f"[{i}].{n}", "Field required")
            for i, data in enumerate(items)
            if not self._required <= data.keys()
            for n in sorted(self._required - data.keys())
        ]
        try:
            out = self._many.validate_python(items)
        except pydantic.ValidationError as exc:
            errors = [(_format_many(e["loc"]), e["msg"]) for e in exc.errors()]
            raise ValidationError(self.model, sorted(errors + missing, key=_by_index)) from None
        if missing:
            raise ValidationError(self.model, missing)
        return out

    def validate_changes(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Cast a partial update; unknown attributes and bad values raise ``ValidationError``."""
        if not isinstance(changes, Mapping):
            raise ValidationError(self.model, [("(changes)", "changes must be a dict")])
        try:
            return self._validate_one(changes)
        except pydantic.ValidationError as exc:
            errors = [(_format_loc(e["loc"]), e["msg"]) for e in exc.errors()]
            raise ValidationError(self.model, errors) from None
