"""The seed's dictionary form of a model, turned into an ordinary model class.

``orm.declare_model("Contact", {...})`` (and ``from_config``) land here. Each attribute
description becomes the same annotation + ``field(...)`` a class declaration would use,
so the dict form and the class form share one code path from then on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import typing_extensions

from .errors import ConfigError
from .events import check_event
from .fields import MISSING, field
from .models import Model

__all__ = ["declare_model"]

_SCALAR_TYPES: dict[str, Any] = {
    "any": Any,
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "datetime": datetime,
    "date": date,
    "decimal": Decimal,
    "uuid": UUID,
}
_KEYS = {"type", "required", "default", "enum", "validate", "of", "attributes", "index", "unique"}
_MODEL_KEYS = {"sources", "attributes", "methods", "static_methods", "lifecycle_events",
               "collection", "on_error"}  # fmt: skip


def _type_of(path: str, desc: Any) -> Any:
    """The Python annotation for one attribute description (without optionality)."""
    if isinstance(desc, str):
        desc = {"type": desc}
    if not isinstance(desc, Mapping):
        raise ConfigError(f"{path}: an attribute is a type name or a dict, got {desc!r}")
    unknown = set(desc) - _KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    kind = desc.get("type", "any")
    if kind in _SCALAR_TYPES:
        return _SCALAR_TYPES[kind]
    if kind == "array":
        of = desc.get("of")
        return list[_type_of(f"{path}.of", of) if of is not None else Any]  # type: ignore[misc]
    if kind == "object":
        attrs = desc.get("attributes")
        if attrs is None:
            return dict[str, Any]
        if not isinstance(attrs, Mapping):
            raise ConfigError(f"{path}: 'attributes' must be a dict")
        keys: dict[str, Any] = {}
        for name, sub in attrs.items():
            tp = _type_of(f"{path}.{name}", sub)
            required = isinstance(sub, Mapping) and sub.get("required", False)
            keys[name] = tp if required else typing_extensions.NotRequired[tp | None]
        return typing_extensions.TypedDict(f"{path.replace('.', '_')}", keys)  # type: ignore[operator]
    raise ConfigError(
        f"{path}: unknown type {kind!r} (any, string, integer, float, boolean, datetime, "
        "date, decimal, uuid, array, object)"
    )


def _attribute(model: str, name: str, desc: Any) -> tuple[Any, Any]:
    path = f"{model}.{name}"
    annotation = _type_of(path, desc)
    if isinstance(desc, str):
        return annotation | None, None
    required = bool(desc.get("required", False))
    default = desc.get("default", MISSING)
    enum = desc.get("enum")
    validate: Callable[[Any], Any] | None = desc.get("validate")
    if validate is not None and not callable(validate):
        raise ConfigError(f"{path}: 'validate' must be callable")
    if enum is not None and not isinstance(enum, list | tuple):
        raise ConfigError(f"{path}: 'enum' must be a list")
    if not required and default is MISSING:
        default = None
    if default is None and annotation is not Any:
        annotation = annotation | None
    factory = None
    if isinstance(default, list | dict):
        snapshot = default
        default, factory = MISSING, lambda: type(snapshot)(snapshot)
    value = field(
        default=default, default_factory=factory, choices=enum, validate=validate,
        index=bool(desc.get("index", False)), unique=bool(desc.get("unique", False)),
    )  # fmt: skip
    return annotation, value


def declare_model(base: type[Model], name: str, description: Mapping[str, Any]) -> type[Model]:
    """Build a model class deriving from ``base`` (a registry's ``orm.Model``, which
    registers it) from its dictionary description.

    Keys: ``sources``, ``attributes`` (name -> type string or dict with ``type``,
    ``required``, ``default``, ``enum``, ``validate``, ``of``, ``attributes``, ``index``,
    ``unique``), ``methods``, ``static_methods``, ``lifecycle_events`` (event -> callable
    or list of callables), ``collection`` and ``on_error``.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(f"a model name must be an identifier, got {name!r}")
    if not isinstance(description, Mapping):
        raise ConfigError(f"model {name}: the description must be a dict")
    unknown = set(description) - _MODEL_KEYS
    if unknown:
        raise ConfigError(f"model {name}: unknown key(s) {', '.join(sorted(unknown))}")
    attributes = description.get("attributes", {})
    if not isinstance(attributes, Mapping):
        raise ConfigError(f"model {name}: 'attributes' must be a dict")
    namespace: dict[str, Any] = {"__annotations__": {}, "__module__": "diaspora_async.declared"}
    for attr, desc in attributes.items():
        annotation, value = _attribute(name, attr, desc)
        namespace["__annotations__"][attr] = annotation
        namespace[attr] = value
    for method, fn in dict(description.get("methods", {})).items():
        namespace[method] = _callable(name, method, fn)
    for method, fn in dict(description.get("static_methods", {})).items():
        namespace[method] = classmethod(_callable(name, method, fn))
    kwargs: dict[str, Any] = {"sources": description.get("sources")}
    for key in ("collection", "on_error"):
        if key in description:
            kwargs[key] = description[key]
    cls: type[Model] = type(name, (base,), namespace, **kwargs)
    for event, hooks in dict(description.get("lifecycle_events", {})).items():
        check_event(event)
        for hook in hooks if isinstance(hooks, list | tuple) else [hooks]:
            cls.on(event, _callable(name, event, hook))
    return cls


def _callable(model: str, name: str, fn: Any) -> Callable[..., Any]:
    if not callable(fn):
        raise ConfigError(f"model {model}: {name!r} must be callable")
    return fn  # type: ignore[no-any-return]
