"""The OpenAPI 3.1 document of a REST app, generated from the models' pydantic schemas.

Called by ``app.py`` (and cached there per set of served models): each model's fields
are compiled into a ``TypedDict`` whose JSON schema pydantic writes, so the document
shows exactly the types the server validates; ``choices`` and plain defaults are added
to the properties, and every route of ``diaspora_async.wire`` gets its parameters and responses.
Entities have a read-only ``_rev`` (what reads answer); the store routes (``_write``,
``_revisions``, ``_purge``) get their request schemas, the write row schema per model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import typing_extensions
from pydantic import TypeAdapter

from ..adapters.base import DELETED, REV
from ..fields import FieldSpec
from ..models import Model
from ..revisions import LENGTH
from ..wire import PURGE, REVISIONS, WRITE

__all__ = ["build_openapi"]

_REF = "#/components/schemas/{model}"
_REVISION: dict[str, Any] = {"type": "string", "pattern": f"^[0-9a-f]{{{LENGTH}}}$"}
_REV_PROP: dict[str, Any] = {
    "anyOf": [_REVISION, {"type": "null"}],
    "description": "the stored copy's revision (null: stored before revisions existed); "
    "reads answer it, POST /{collection} takes none, _write rows need it",
}


def _entity_schema(name: str, fields: Mapping[str, FieldSpec], partial: bool) -> dict[str, Any]:
    """The JSON schema of one model's entity (``partial``: of its changes, nothing required)."""
    annotations: dict[str, Any] = {} if partial else {"id": typing_extensions.Required[str]}
    for fname, spec in fields.items():
        required = spec.required and not partial
        wrap = typing_extensions.Required if required else typing_extensions.NotRequired
        annotations[fname] = wrap[spec.annotation]
    td = typing_extensions.TypedDict(name, annotations)  # type: ignore[misc]
    schema: dict[str, Any] = TypeAdapter(td).json_schema(ref_template=_REF)
    props = schema.setdefault("properties", {})
    for fname, spec in fields.items():
        prop = props.get(fname)
        if prop is None:
            continue
        if spec.codec is not None and spec.kind == "datetime":
            _date_as_stored(prop)
        if spec.choices is not None:
            prop["enum"] = list(spec.choices)
        if not partial and not spec.required and spec.default_factory is None:
            default = spec.default
            if default is None or isinstance(default, str | int | float | bool):
                prop["default"] = default
    if not partial:
        props[REV] = _REV_PROP
    return schema


def _date_as_stored(prop: dict[str, Any]) -> None:
    # A date travels in the REST protocol in its stored form (codecs.py), the UTC
    # datetime of its midnight, as its rows are stored.
    if prop.get("format") == "date":
        prop["format"] = "date-time"
    for option in prop.get("anyOf", ()):
        _date_as_stored(option)


def _write_row(name: str) -> dict[str, Any]:
    """A ``_write`` row of one model: the full entity with its revision, or a tombstone."""
    revised = {"required": [REV], "properties": {REV: _REVISION}}
    live = {"allOf": [{"$ref": _REF.format(model=name)}, revised]}
    # anyOf: for a model without required fields a tombstone fits the entity schema too
    return {"anyOf": [live, {"$ref": _REF.format(model="Tombstone")}]}


def _param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _json(ref: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _errors(*statuses: int) -> dict[str, Any]:
    err = {"$ref": _REF.format(model="Error")}
    return {str(s): _json(err, "error") for s in statuses}


def _paths(name: str, collection: str, prefix: str, max_limit: int) -> dict[str, Any]:
    entity = {"$ref": _REF.format(model=name)}
    changes = {"$ref": _REF.format(model=f"{name}Changes")}
    many = {"type": "array", "items": entity}
    where = _param("where", {"type": "string"}, 'a JSON query, e.g. {"views": {"$greater": 10}}')
    find = [
        where,
        _param("skip", {"type": "integer", "minimum": 0}, "entities to skip"),
        _param(
            "limit",
            {"type": "integer", "minimum": 0, "maximum": max_limit},
            f"at most this many (default and maximum {max_limit})",
        ),
        _param("sort", {"type": "string"}, "comma-separated fields, '-' for descending"),
    ]
    one = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    base = f"{prefix}/{collection}"
    tag = [name]
    return {
        base: {
            "get": {
                "tags": tag,
                "summary": f"Find {name} entities",
                "parameters": find,
                "responses": {
                    "200": _json(many, "the matching entities"),
                    **_errors(400, 401, 403),
                },
            },
            "post": {
                "tags": tag,
                "summary": f"Create one or many {name} entities",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"oneOf": [entity, many]}}},
                },
                "responses": {
                    "201": _json({"oneOf": [entity, many]}, "created"),
                    **_errors(400, 401, 403, 409, 413, 422),
                },
            },
            "patch": {
                "tags": tag,
                "summary": f"Change every matching {name}",
                "parameters": [where],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": changes}},
                },
                "responses": {
                    "200": _json(many, "the changed entities"),
                    **_errors(400, 401, 403, 409, 413, 422),
                },
            },
            "delete": {
                "tags": tag,
                "summary": f"Delete every matching {name}",
                "parameters": [where],
                "responses": {
                    "200": _json({"$ref": _REF.format(model="Deleted")}, "how many were deleted"),
                    **_errors(400, 401, 403),
                },
            },
        },
        f"{base}/{WRITE}": {
            "post": {
                "tags": tag,
                "summary": f"Conditionally write {name} rows (revision-guarded upsert)",
                "description": (
                    "A row applies iff the store holds no copy of its id or an older "
                    "revision; with `expect[i]`, iff the live copy holds exactly that "
                    "revision (null: no live copy). Refused ids are answered; a row whose "
                    "revision the store already holds counts as applied (a replay)."
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": _REF.format(model=f"{name}Write")}}
                    },
                },
                "responses": {
                    "200": _json({"$ref": _REF.format(model="Refused")}, "the refused ids"),
                    **_errors(400, 401, 403, 409, 413, 422),
                },
            },
        },
        f"{base}/{REVISIONS}": {
            "post": {
                "tags": tag,
                "summary": f"Stored revisions of {name} ids (tombstones included)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": _REF.format(model="Ids")}}},
                },
                "responses": {
                    "200": _json({"$ref": _REF.format(model="Revisions")}, "id -> revision"),
                    **_errors(400, 401, 403, 413, 422),
                },
            },
        },
        f"{base}/{PURGE}": {
            "post": {
                "tags": tag,
                "summary": f"Remove {name} tombstones deleted before a time",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": _REF.format(model="Purge")}}
                    },
                },
                "responses": {
                    "200": _json({"$ref": _REF.format(model="Purged")}, "how many were removed"),
                    **_errors(400, 401, 403, 413, 422),
                },
            },
        },
        f"{base}/count": {
            "get": {
                "tags": tag,
                "summary": f"Count {name} entities",
                "parameters": [where],
                "responses": {
                    "200": _json({"$ref": _REF.format(model="Count")}, "count"),
                    **_errors(400, 401, 403),
                },
            },
        },
        f"{base}/{{id}}": {
            "get": {
                "tags": tag,
                "summary": f"One {name} by id",
                "parameters": [one],
                "responses": {"200": _json(entity, "the entity"), **_errors(400, 401, 403, 404)},
            },
            "patch": {
                "tags": tag,
                "summary": f"Change one {name}",
                "parameters": [one],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": changes}},
                },
                "responses": {
                    "200": _json(entity, "the changed entity"),
                    **_errors(400, 401, 403, 404, 409, 413, 422),
                },
            },
            "delete": {
                "tags": tag,
                "summary": f"Delete one {name}",
                "parameters": [one],
                "responses": {
                    "200": _json({"$ref": _REF.format(model="Deleted")}, "deleted"),
                    **_errors(400, 401, 403, 404),
                },
            },
        },
    }


_COMMON: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["type", "message"],
                "properties": {
                    "type": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {},
                },
            }
        },
    },
    "Count": {
        "type": "object",
        "required": ["count"],
        "properties": {"count": {"type": "integer"}},
    },
    "Deleted": {
        "type": "object",
        "required": ["deleted"],
        "properties": {"deleted": {"type": "integer"}},
    },
    "Tombstone": {
        "type": "object",
        "required": ["id", REV, DELETED],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string"},
            REV: _REVISION,
            DELETED: {"type": "string", "format": "date-time", "description": "deleted at"},
        },
    },
    "Refused": {
        "type": "object",
        "required": ["refused"],
        "properties": {"refused": {"type": "array", "items": {"type": "string"}}},
    },
    "Ids": {
        "type": "object",
        "required": ["ids"],
        "properties": {"ids": {"type": "array", "items": {"type": "string", "minLength": 1}}},
    },
    "Revisions": {
        "type": "object",
        "required": ["revisions"],
        "properties": {
            "revisions": {
                "type": "object",
                "description": "id -> [revision or null, is a tombstone]; absent ids left out",
                "additionalProperties": {
                    "type": "array",
                    "prefixItems": [{"anyOf": [_REVISION, {"type": "null"}]}, {"type": "boolean"}],
                    "minItems": 2,
                    "maxItems": 2,
                },
            }
        },
    },
    "Purge": {
        "type": "object",
        "required": ["before"],
        "properties": {"before": {"type": "string", "format": "date-time"}},
    },
    "Purged": {
        "type": "object",
        "required": ["purged"],
        "properties": {"purged": {"type": "integer"}},
    },
}


def build_openapi(
    served: Mapping[str, type[Model]], *, title: str, prefix: str, max_limit: int
) -> dict[str, Any]:
    """The OpenAPI document for the served collections.

    Args:
        served: collection -> model.
        title: the document's title.
        prefix: the app's path prefix.
        max_limit: the server's cap on ``limit``.
    """
    schemas: dict[str, Any] = dict(_COMMON)
    paths: dict[str, Any] = {}
    for collection, model in sorted(served.items()):
        meta = model.__meta__
        for name, partial in ((meta.name, False), (f"{meta.name}Changes", True)):
            schema = _entity_schema(name, meta.fields, partial)
            schemas.update(schema.pop("$defs", {}))
            schemas[name] = schema
        schemas[f"{meta.name}Write"] = {
            "type": "object",
            "required": ["rows"],
            "additionalProperties": False,
            "properties": {
                "rows": {"type": "array", "items": _write_row(meta.name)},
                "expect": {
                    "type": "array",
                    "items": {"type": ["string", "null"]},
                    "description": "aligned with rows: the revision each live copy must "
                    'hold ("" for one stored without), or null for "no live copy"',
                },
            },
        }
        paths.update(_paths(meta.name, collection, prefix, max_limit))
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1"},
        "paths": paths,
        "components": {"schemas": schemas},
    }
