"""Canonical JSON text for the SQL adapters' list, dict and ``any`` columns.

List/dict/``any`` values are stored as *canonical* JSON text (sorted keys, compact
separators, integral floats written as integers) so deep equality is text equality:
``to_json`` writes it (``str_list_to_json`` is its fast path for lists of strings) and
``from_json`` reads it back. ``JSON_KINDS`` names the field kinds stored this way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

__all__ = ["JSON_KINDS", "from_json", "str_list_to_json", "to_json"]

JSON_KINDS = frozenset({"list", "dict", "any"})


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_encode = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False,
    default=_json_default,
).encode  # fmt: skip
_scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[attr-defined]


def from_json(text: str) -> Any:
    """Parse stored JSON text; canonical text needs none of ``json.loads``'s extras."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):
        return json.loads(text)  # not canonical after all: parse it (or raise) the long way
    return value


def _canon(value: Any) -> Any:
    """Write integral floats as ints, so ``1.0`` and ``1`` (deep-equal) have one text."""
    t = type(value)
    if t is float:
        return int(value) if value.is_integer() else value
    if t is list or t is tuple:
        return [_canon(v) for v in value]
    if t is dict:
        return {k: _canon(v) for k, v in value.items()}
    return value


_quote: Callable[[str], str] = json.encoder.encode_basestring


def str_list_to_json(value: Any) -> str:
    """``to_json`` for a list of strings, without the general encoder's overhead."""
    try:
        return "[" + ",".join([_quote(v) for v in value]) + "]"
    except TypeError:  # not all strings after all
        return to_json(value)


def to_json(value: Any) -> str:
    """Canonical JSON text of a value: equal texts <=> deep-equal values."""
    return _encode(_canon(value))
