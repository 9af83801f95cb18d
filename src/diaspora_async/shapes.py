"""A model class as a pydantic type: the shapes of its JSON and the core schema.

Sits beside ``entities.py`` and under ``models.py``. Each model gets, lazily and once,
three pydantic models over its declared field types (``schema_for``): ``read`` (``id``
plus every field: what an entity looks like as JSON), ``create`` (``id`` optional, defaults
filled) and ``patch`` (every field optional). ``core_schema`` makes the model class itself
usable wherever pydantic takes a type (FastAPI's ``response_model=Article``, a request body
``body: Article``, ``list[Article]``, ``TypeAdapter(Article)``): it validates a dict into an
ORPHAN entity (through ``create``) or takes an entity as is, and serializes an entity as
its ``read`` shape, never internal state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import core_schema

from .fields import FieldSpec

if TYPE_CHECKING:
    from .state import EntityCore

__all__ = ["Shape", "core_schema_for", "dump_json", "shape"]

Shape = Literal["create", "patch", "read"]
_SUFFIX = {"read": "", "create": "Create", "patch": "Patch"}


def _field_info(spec: FieldSpec, kind: Shape) -> tuple[Any, Any]:
    declared = spec.declared
    if kind == "patch":
        return declared, None
    if spec.required:
        return declared, Field()
    if spec.default_factory is not None:
        return declared, Field(default_factory=spec.default_factory)
    return declared, Field(default=spec.default)


def shape(cls: type[EntityCore], kind: Shape) -> type[BaseModel]:
    """The pydantic model of one shape of ``cls`` (built once, then cached on the class)."""
    if kind not in _SUFFIX:
        raise ValueError(f"schema_for: the shape is 'create', 'patch' or 'read', not {kind!r}")
    cache: dict[str, type[BaseModel]] = cls.__dict__.get("__shapes__") or {}
    if "__shapes__" not in cls.__dict__:
        type.__setattr__(cls, "__shapes__", cache)
    built = cache.get(kind)
    if built is not None:
        return built
    meta = cls.__meta__  # type: ignore[attr-defined]
    fields: dict[str, Any] = {
        "id": (str, Field()) if kind == "read" else (str | None, Field(default=None))
    }
    for name, spec in meta.fields.items():
        fields[name] = _field_info(spec, kind)
    config = ConfigDict(extra="ignore" if kind == "read" else "forbid")
    built = pydantic.create_model(
        cls.__name__ + _SUFFIX[kind],
        __config__=config,
        __doc__=(cls.__doc__ if kind == "read" else None) or f"{cls.__name__} ({kind})",
        __module__=cls.__module__,
        **fields,
    )
    cache[kind] = built
    return built


def dump_json(cls: type[EntityCore], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (an entity's ``to_dict()``) made JSON-safe by its ``read`` shape."""
    read = shape(cls, "read")
    out: dict[str, Any] = read.model_construct(**data).model_dump(mode="json", warnings=False)
    return out


def core_schema_for(cls: type[EntityCore], handler: pydantic.GetCoreSchemaHandler) -> Any:
    """The pydantic core schema of a model class (``Model.__get_pydantic_core_schema__``)."""
    create = shape(cls, "create")
    read = shape(cls, "read")

    def from_body(body: BaseModel) -> Any:
        data = dict(body)  # its fields, defaults filled in, values of the declared types
        if data.get("id") is None:
            data.pop("id", None)
        return cls.spawn(data)  # type: ignore[attr-defined]

    def to_read(entity: Any) -> Any:
        return read.model_construct(**entity.to_dict())

    from_json = core_schema.no_info_after_validator_function(from_body, handler(create))
    return core_schema.json_or_python_schema(
        json_schema=from_json,
        python_schema=core_schema.union_schema([core_schema.is_instance_schema(cls), from_json]),
        serialization=core_schema.plain_serializer_function_ser_schema(
            to_read, return_schema=handler(read)
        ),
    )
