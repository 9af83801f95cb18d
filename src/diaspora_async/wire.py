"""The REST wire format, in one place: shared by the server and the ``http`` adapter.

Both ends of ``client Model -> adapters/http.py -> HTTP -> server/app.py -> server Model``
import this module, so routes, query-string encoding, JSON encoding of values, the error
body and the error <-> status mapping cannot drift apart. The adapter turns canonical
query nodes back into the canonical JSON query form (``where_to_json``) so that the server
parses them with the same parser as every other caller, and every operator round-trips.

The protocol (``{c}`` is a model's collection)::

    GET    /{c}?where=<json>&skip=&limit=&sort=a,-b   -> 200 [entity, ...]
    GET    /{c}/count?where=<json>                    -> 200 {"count": n}
    GET    /{c}/{id}                                  -> 200 entity | 404
    POST   /{c}           body: entity | [entity, ...] -> 201 entity | [entity, ...]
    PATCH  /{c}/{id}      body: changes               -> 200 entity | 404
    PATCH  /{c}?where=    body: changes               -> 200 [updated entity, ...]
    DELETE /{c}/{id}                                  -> 200 {"deleted": 1} | 404
    DELETE /{c}?where=                                -> 200 {"deleted": n}
    POST   /{c}/_write      body: {"rows": [row, ...], "expect": [rev|null, ...]}
                                                      -> 200 {"refused": [id, ...]}
    POST   /{c}/_revisions  body: {"ids": [id, ...]}
                                          -> 200 {"revisions": {id: [rev|null, deleted]}}
    POST   /{c}/_purge      body: {"before": datetime} -> 200 {"purged": n}
    GET    /openapi.json                              -> the OpenAPI document

Revisions (DESIGN.md 6.1). Every entity the server reads back (``GET`` list and one) has
a ``_rev`` member: the revision of the stored copy, null for a row stored before
revisions existed. The three ``_`` routes are the store contract of
``adapters.base.Adapter`` (``write``, ``revisions``, ``purge``) spoken over HTTP: the
server validates the body with the model's validator (422 before anything is written),
then calls that method of the adapter of its own first source for the model (the first of
``create_app(source=...)``, else the model's first source), with no lifecycle hooks,
like a replay. A ``_write`` row is a full entity with ``id`` and ``_rev``, or a tombstone
``{"id", "_rev", "_del": datetime}``; ``expect`` (optional, aligned with ``rows``) holds
the per-row expectations; the answer lists the ids the store refused. ``_revisions``
lists the stored ids (tombstones included) as ``[revision, is_tombstone]``. Revisions
are 24 lowercase hex digits (``revisions.py``); an expectation is any string ("" matches
a row stored without revision). These paths cannot collide with an entity: they take only
``POST``, which ``/{c}/{id}`` does not, so ``GET /{c}/_write`` still reads the entity
``_write``. ``auth`` sees the actions ``write`` (``_write``: it may create, replace and
delete), ``read`` (``_revisions``) and ``purge``. Bodies are split by the adapter to stay
under ``max_body``; each request is applied on its own (one store batch per request).

Decisions where the design is silent:

* ``limit`` defaults to, and may not exceed, the server's ``max_limit`` (above it: 400
  with ``details = {"max_limit": n}``; the adapter then pages at that size).
* Unknown or repeated query parameters are refused (400), so a typo such as ``wher=``
  can never widen a PATCH/DELETE to every entity; without ``where`` those are refused
  (400) unless the app was created with ``allow_empty_query=True``.
* ``Prefer: return=minimal`` (RFC 7240) makes POST ``/{c}`` answer ``{"created": n}`` and
  ``PATCH ?where=`` answer ``{"updated": n}``; the adapter always sends it.
* Bodies above ``max_body`` get 413 with ``details = {"max_body": n}`` (the adapter then
  splits its conditional writes and revision lookups to fit). Ids that are dot segments,
  hold ``/``, ``\\`` or control characters never match an id route (400/404). The
  adapter sends such ids, and any list of ids, as ``where={"id": {"$in": [...]}}``.
* Values are JSON; datetimes are ISO 8601 strings in UTC with milliseconds and ``Z``.
  The adapter turns them back into datetimes wherever the model declares a datetime
  (also inside lists and dicts); in an ``Any`` field they stay strings.

Errors are always ``{"error": {"type", "message", "details"}}``: 400 ``QueryError`` /
``UnsupportedQuery`` / ``MalformedJSON``, 401 ``Unauthorized``, 403 ``Forbidden``, 404
``NotFound`` (``details.id`` set when the collection exists but the entity does not),
405 ``MethodNotAllowed``, 409 ``IntegrityError``, 413 ``PayloadTooLarge``, 422
``ValidationError`` (``details`` = ``[{"path", "message"}]``), 503 ``DataSourceError``
and 500 ``InternalError`` (both with a generic message: the real one is only logged).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from .errors import (
    ConfigError,
    ConflictError,
    DataSourceError,
    DiasporaError,
    FanOutError,
    IntegrityError,
    QueryError,
    UnsupportedQuery,
    ValidationError,
)
from .query.ast import And, Compare, Node, Not, Or, SortKey, Xor
from .query.compiler import Compiler
from .revisions import LENGTH

__all__ = [
    "COUNT",
    "PURGE",
    "REVISIONS",
    "WRITE",
    "Forbidden",
    "HTTPError",
    "MissingEntity",
    "NotFound",
    "PayloadTooLarge",
    "Unauthorized",
    "WireError",
    "decode_error",
    "dumps",
    "encode_error",
    "find_params",
    "id_in_path",
    "is_revision",
    "json_default",
    "loads",
    "sort_param",
    "where_to_json",
]

COUNT = "count"  # the path segment of the count route: /{collection}/count
WRITE = "_write"  # POST /{collection}/_write: the conditional write (Adapter.write)
REVISIONS = "_revisions"  # POST /{collection}/_revisions: Adapter.revisions
PURGE = "_purge"  # POST /{collection}/_purge: Adapter.purge
JSON_TYPE = "application/json"

_REVISION = re.compile(f"[0-9a-f]{{{LENGTH}}}")


def is_revision(value: object) -> bool:
    """Whether ``value`` is a revision string as ``revisions.next_revision`` makes them.

    The server refuses any other: revisions are compared as plain strings, so a foreign
    one (say ``"~"``) would outrank every real revision and freeze the entity.
    """
    return isinstance(value, str) and _REVISION.fullmatch(value) is not None


# -- values ------------------------------------------------------------------------------


def json_default(value: Any) -> Any:
    """``json.dumps`` hook: datetimes as ISO 8601 UTC at millisecond precision with ``Z``."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        text = value.astimezone(UTC).isoformat(timespec="milliseconds")
        return text.removesuffix("+00:00") + "Z"
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any) -> bytes:
    """Encode a JSON body (compact; NaN and infinities refused, as JSON requires)."""
    return json.dumps(
        value, default=json_default, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(data: str | bytes) -> Any:
    """Decode JSON strictly (``NaN``/``Infinity`` are refused); raises ``ValueError``."""
    return json.loads(data, parse_constant=_reject_constant)


# -- queries -----------------------------------------------------------------------------


class _WhereToJSON(Compiler[dict[str, Any]]):
    """Canonical node -> canonical JSON query, e.g. ``Less("a", 3)`` -> ``{"a": {"$less": 3}}``.

    Field names go through ``stored`` (the source's remap), so a remapped field is sent
    under the server's name.
    """

    adapter = "http"
    _OPS: ClassVar[dict[str, str]] = {
        "equal": "$equal",
        "diff": "$diff",
        "exists": "$exists",
        "less": "$less",
        "less_equal": "$lessEqual",
        "greater": "$greater",
        "greater_equal": "$greaterEqual",
        "in": "$in",
        "not_in": "$nin",
        "contains": "$contains",
    }

    def __init__(self, stored: Mapping[str, str]) -> None:
        self.stored = stored

    def visit(self, node: Node) -> dict[str, Any]:
        if isinstance(node, Compare):
            value = list(node.value) if isinstance(node.value, tuple) else node.value
            name = self.stored.get(node.field, node.field)
            return {name: {self._OPS[node.visit_name]: value}}
        return super().visit(node)

    def visit_and(self, node: And) -> dict[str, Any]:
        # An empty And matches everything: so does the empty query.
        return {"$and": [self.visit(i) for i in node.items]} if node.items else {}

    def visit_or(self, node: Or) -> dict[str, Any]:
        if not node.items:  # matches nothing: the negation of the empty query
            return {"$not": {}}
        return {"$or": [self.visit(i) for i in node.items]}

    def visit_xor(self, node: Xor) -> dict[str, Any]:
        if not node.items:
            return {"$not": {}}
        return {"$xor": [self.visit(i) for i in node.items]}

    def visit_not(self, node: Not) -> dict[str, Any]:
        return {"$not": self.visit(node.item)}


def where_to_json(where: Node | None, stored: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The canonical JSON form of a parsed query (``{}`` for None: everything)."""
    if where is None:
        return {}
    return _WhereToJSON(stored or {}).visit(where)


def sort_param(sort: Sequence[SortKey], stored: Mapping[str, str] | None = None) -> str:
    """``SortKey``s -> the ``sort`` query parameter, e.g. ``"-views,id"``."""
    names = stored or {}
    return ",".join(("-" if k.descending else "") + names.get(k.field, k.field) for k in sort)


def find_params(
    where: Mapping[str, Any] | None,
    sort: str | None = None,
    skip: int = 0,
    limit: int | None = None,
) -> dict[str, str]:
    """The query string of ``GET /{collection}`` (only the parts that differ from defaults)."""
    params: dict[str, str] = {}
    if where:
        params["where"] = dumps(where).decode()
    if sort:
        params["sort"] = sort
    if skip:
        params["skip"] = str(skip)
    if limit is not None:
        params["limit"] = str(limit)
    return params


# -- errors ------------------------------------------------------------------------------


class HTTPError(Exception):
    """An HTTP-level refusal with its status and error ``type`` (no store involved).

    Raise ``Unauthorized`` or ``Forbidden`` from an ``auth`` callable to refuse a request.
    """

    status: int = 400
    type: str = "BadRequest"

    def __init__(self, message: str = "", details: Any = None) -> None:
        super().__init__(message or self.type)
        self.message = message or self.type
        self.details = details


class Unauthorized(HTTPError):
    """401: the request carries no (valid) credentials."""

    status = 401
    type = "Unauthorized"


class Forbidden(HTTPError):
    """403: the credentials do not allow this action on this model."""

    status = 403
    type = "Forbidden"


class NotFound(HTTPError):
    """404: unknown route, collection or id."""

    status = 404
    type = "NotFound"


class MethodNotAllowed(HTTPError):
    """405: the route exists but not with this method."""

    status = 405
    type = "MethodNotAllowed"


class PayloadTooLarge(HTTPError):
    """413: the body is larger than the server's ``max_body``."""

    status = 413
    type = "PayloadTooLarge"


class BadJSON(HTTPError):
    """400: the body or a JSON parameter is not valid JSON."""

    status = 400
    type = "MalformedJSON"


# Our error classes -> (status, type); the first isinstance match wins, so subclasses
# come before their bases.
_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (ValidationError, 422),
    (QueryError, 400),
    (IntegrityError, 409),
    (ConflictError, 409),
    (DataSourceError, 503),
)

# What the server says for errors whose own message may carry secrets (URLs, hosts).
_GENERIC = {503: "a data source is unavailable", 500: "internal server error"}


def encode_error(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The status and body for an exception raised while serving a request.

    Messages of store failures and unexpected errors are replaced by generic text, so
    a data-source URL with a password (or a traceback) never reaches the client.
    """
    if isinstance(exc, HTTPError):
        return exc.status, _body(exc.type, exc.message, exc.details)
    if isinstance(exc, ValidationError):
        errors = [{"path": p, "message": m} for p, m in exc.errors]
        return 422, _body("ValidationError", f"{exc.model}: invalid fields", errors)
    if isinstance(exc, FanOutError):
        return _fan_out_error(exc)
    if isinstance(exc, DiasporaError):
        for cls, status in _STATUS:
            if isinstance(exc, cls):
                if status == 409:
                    text = str(exc).split("] ", 1)[-1]  # drop the server's "[source] " prefix
                    return status, _body(cls.__name__, text)
                if status in _GENERIC:
                    return status, _body("DataSourceError", _GENERIC[status])
                details = getattr(exc, "details", None)
                return status, _body(type(exc).__name__, str(exc), details)
        if isinstance(exc, ConfigError):
            # e.g. a source not connected: a server-side problem the client cannot fix.
            return 503, _body("DataSourceError", _GENERIC[503])
    return 500, _body("InternalError", _GENERIC[500])


def _fan_out_error(exc: FanOutError) -> tuple[int, dict[str, Any]]:
    # A write to several sources (the server's default) that some refused: the client's
    # fault if every source said the same 4xx (a taken unique value), else a store
    # failure naming the sources (not their messages, which may hold URLs).
    answers = [encode_error(e) for e in exc.failed.values()] or [(503, {})]
    statuses = {status for status, _ in answers}
    if len(statuses) == 1 and 400 <= answers[0][0] < 500:
        return answers[0]
    details = {"failed": list(exc.failed), "succeeded": exc.succeeded, "queued": exc.queued,
               "compensated": exc.compensated}  # fmt: skip
    return 503, _body("DataSourceError", _GENERIC[503], details)


def _body(type_: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"type": type_, "message": message, "details": details}}


class WireError(DataSourceError):
    """An HTTP error answer that maps to none of the typed errors (e.g. 401, 403, 500).

    Attributes:
        status: the HTTP status.
        type: the ``type`` from the error body.
        details: the ``details`` from the error body (e.g. ``{"max_body": n}`` on a 413).
    """

    def __init__(
        self, source: str, status: int, type_: str, message: str, details: Any = None
    ) -> None:
        super().__init__(source, f"HTTP {status} {type_}: {message}")
        self.status = status
        self.type = type_
        self.details = details


class MissingEntity(DataSourceError):
    """404 on an id route: the entity does not exist (the collection does)."""


def id_in_path(entity_id: str) -> bool:
    """Whether an id can travel as a path segment (``/{collection}/{id}``) unchanged.

    Ids with a slash, a backslash, control characters or that are dot segments would be
    refused or rerouted by the server, and ``count`` is the count route.
    """
    return (
        entity_id not in (".", "..", COUNT)
        and "/" not in entity_id
        and "\\" not in entity_id
        and all(ord(c) >= 32 for c in entity_id)
    )


def decode_error(source: str, model: str, status: int, body: bytes) -> DiasporaError:
    """Turn an error answer back into the typed error the server raised.

    422 -> ``ValidationError`` (same error list), 400 -> ``QueryError``, 409 ->
    ``IntegrityError``, 404 -> ``ConfigError`` (the server does not serve the collection),
    anything else -> ``WireError`` (a ``DataSourceError``) carrying status and type.
    """
    try:
        err = loads(body)["error"]
        type_, message, details = str(err["type"]), str(err["message"]), err.get("details")
    except (ValueError, KeyError, TypeError):
        type_, message, details = "HTTPError", body[:200].decode("utf-8", "replace"), None
    if status == 422 and isinstance(details, list):
        pairs = [
            (str(d.get("path")), str(d.get("message"))) for d in details if isinstance(d, dict)
        ]
        return ValidationError(model, pairs)
    if status == 400:
        error = (UnsupportedQuery if type_ == "UnsupportedQuery" else QueryError)(message)
        error.details = details  # type: ignore[attr-defined]
        return error
    if status == 409:
        return IntegrityError(source, message)
    if status == 404:
        if isinstance(details, dict) and "id" in details:
            return MissingEntity(source, message)
        return ConfigError(f"data source {source!r}: {message}")
    return WireError(source, status, type_, message, details)
