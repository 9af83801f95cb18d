"""The store routes of the REST server: ``_write``, ``_revisions`` and ``_purge``.

The server end of the ``http`` adapter's ``write``/``revisions``/``purge`` (the adapter
contract of DESIGN.md 6.1, ``adapters/base.py``): each request body is decoded and
validated here in full (the model's validator casts every live row in one call; a bad
row is a 422 before anything is written), then handed to one call of the adapter of the
server's own source for the model. The bodies and answers are documented in
``diaspora_async.wire``. Nothing here imports Starlette: ``app.py`` wires these into
routes, and the decoders are plain functions over JSON values, tested on their own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, TypeAdapter
from pydantic import ValidationError as PydanticError

from .. import wire
from ..adapters.base import DELETED, REV, Row
from ..errors import ValidationError
from ..meta import ModelMeta

__all__ = ["decode_ids", "decode_purge", "decode_write"]

_WHEN: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)
_WRITE_KEYS = frozenset({"rows", "expect"})
_TOMBSTONE_KEYS = frozenset({"id", REV, DELETED})


def _when(value: Any) -> datetime | None:
    """An aware datetime (ISO 8601 with an offset) as UTC, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return _WHEN.validate_python(value).astimezone(UTC)
    except PydanticError:
        return None


def _shape(model: str, message: str) -> ValidationError:
    return ValidationError(model, [("(body)", message)])


def decode_write(meta: ModelMeta, body: Any) -> tuple[list[Row], list[str | None] | None]:
    """The rows and expectations of a ``_write`` body, cast for ``Adapter.write``.

    Live rows are validated like entities (unknown keys, types, choices, required
    fields), in one validator call for the batch; tombstones must hold ``id``, ``_rev``
    and an aware ``_del`` only. Ids must be distinct non-empty strings, revisions
    ``wire.is_revision`` strings, expectations null or strings. Every problem of the
    body is listed in one ``ValidationError`` (paths ``[i].field`` index ``rows``;
    ``expect[i]``).
    """
    name = meta.name
    if not isinstance(body, dict) or not isinstance(body.get("rows"), list):
        raise _shape(name, 'must be an object {"rows": [...], "expect": [...]}')
    if not body.keys() <= _WRITE_KEYS:
        extra = ", ".join(sorted(body.keys() - _WRITE_KEYS))
        raise _shape(name, f"unknown member(s) {extra} (allowed: rows, expect)")
    items: list[Any] = body["rows"]
    errors: list[tuple[str, str]] = []
    expect = body.get("expect")
    if expect is not None:
        if not isinstance(expect, list) or len(expect) != len(items):
            errors.append(("expect", "must be a list as long as rows, or absent"))
        else:
            # Any string: one that is no revision ("" is a pre-revision row) just never
            # matches, which the store reports as refused.
            errors += [
                (f"expect[{i}]", "must be null or a string")
                for i, e in enumerate(expect)
                if e is not None and not isinstance(e, str)
            ]
    out: list[Row] = []
    live: list[dict[str, Any]] = []
    live_at: list[int] = []  # each live row's index in ``rows`` (= in ``out`` when valid)
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append((f"[{i}]", "must be a JSON object"))
            continue
        entity_id, rev = item.get("id"), item.get(REV)
        if not isinstance(entity_id, str) or not entity_id:
            errors.append((f"[{i}].id", "must be a non-empty string"))
        elif entity_id in seen:
            errors.append((f"[{i}].id", f"{entity_id!r} is given twice"))
        else:
            seen.add(entity_id)
        if not wire.is_revision(rev):
            errors.append((f"[{i}].{REV}", "must be a revision (24 lowercase hex digits)"))
        if DELETED in item:
            when = _when(item[DELETED])
            if when is None:
                errors.append((f"[{i}].{DELETED}", "must be a datetime with a time zone"))
            if item.keys() != _TOMBSTONE_KEYS:
                extra = ", ".join(sorted(item.keys() - _TOMBSTONE_KEYS))
                errors.append((f"[{i}]", f"a tombstone holds id, _rev and _del only, not {extra}"))
            out.append({"id": entity_id, REV: rev, DELETED: when})
        else:
            live.append({k: v for k, v in item.items() if k != "id" and k != REV})
            live_at.append(i)
            out.append({"id": entity_id, REV: rev})
    cast: list[dict[str, Any]] = []
    if live:
        try:
            cast = meta.validator.validate_many(live)
        except ValidationError as exc:
            errors += _at_rows(exc.errors, live_at, len(live) == 1)
    if errors:
        raise ValidationError(name, sorted(errors, key=_order))
    for at, attrs in zip(live_at, cast, strict=True):
        out[at].update(attrs)
    return out, expect


def _at_rows(errors: list[tuple[str, str]], at: list[int], single: bool) -> list[tuple[str, str]]:
    """Validator paths (``[k].f`` over the live rows; plain ``f`` for a single row)
    rewritten to index the body's ``rows``."""
    if single:
        return [(f"[{at[0]}].{path}", msg) for path, msg in errors]
    out = []
    for path, msg in errors:
        k, rest = path[1:].split("]", 1)
        out.append((f"[{at[int(k)]}]{rest}", msg))
    return out


def _order(error: tuple[str, str]) -> tuple[int, str]:
    path = error[0]
    if path.startswith("["):
        return int(path[1 : path.index("]")]), path
    return -1, path


def decode_ids(model: str, body: Any) -> list[str]:
    """The ids of a ``_revisions`` body ``{"ids": [...]}`` (non-empty strings)."""
    ids = body.get("ids") if isinstance(body, dict) and body.keys() == {"ids"} else None
    if not isinstance(ids, list):
        raise _shape(model, 'must be an object {"ids": [...]}')
    bad = [(f"ids[{i}]", "must be a non-empty string") for i, v in enumerate(ids)
           if not isinstance(v, str) or not v]  # fmt: skip
    if bad:
        raise ValidationError(model, bad)
    return ids


def decode_purge(model: str, body: Any) -> datetime:
    """The ``before`` of a ``_purge`` body ``{"before": datetime}``, as aware UTC."""
    when = (
        _when(body.get("before")) if isinstance(body, dict) and body.keys() == {"before"} else None
    )
    if when is None:
        raise _shape(model, 'must be an object {"before": <datetime with a time zone>}')
    return when
