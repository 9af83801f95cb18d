"""How the ``http`` adapter lays out request bodies and reads answers (``http.py``).

Kept apart from the adapter's requests: the per-schema decoding of answered rows
(datetimes back where the model declares them), and the splitting of a batch into
bodies under ``max_body`` with error paths that still index the caller's batch.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticError

from ..errors import DataSourceError
from .base import CollectionSchema, Row

__all__ = ["END", "EXPECT", "ROWS", "Codec", "shift_path", "spans"]

# The pieces of a ``_write`` body: {"rows":[...],"expect":[...]}
ROWS, EXPECT, END = b'{"rows":', b',"expect":', b"}"


def _mentions_datetime(tp: Any) -> bool:
    return tp is datetime or any(_mentions_datetime(a) for a in typing.get_args(tp))


class Codec:
    """Per-schema decoding of rows from JSON: which fields hold datetimes, compiled once."""

    def __init__(self, schema: CollectionSchema) -> None:
        self.schema = schema
        self.casts: list[tuple[str, TypeAdapter[Any]]] = [
            (name, spec.query_adapter)
            for name, spec in schema.fields.items()
            if _mentions_datetime(spec.annotation)
        ]

    def rows(self, source: str, data: Any) -> list[Row]:
        if not isinstance(data, list):
            raise DataSourceError(source, "the server answered with something else than a list")
        rows = [self.schema.from_stored(r) for r in data]
        if self.casts:
            try:
                for row in rows:
                    for name, adapter in self.casts:
                        value = row.get(name)
                        if value is not None:
                            row[name] = adapter.validate_python(value)
            except PydanticError as exc:
                raise DataSourceError(source, f"the server sent a bad value: {exc}") from None
        return rows


def spans(costs: Sequence[int], room: int) -> Iterator[tuple[int, int]]:
    """Index ranges of items whose JSON lists (``costs``: bytes per item) fit ``room``.

    An item larger than ``room`` is sent alone (the server answers 413).
    """
    start, size = 0, 0
    for i, cost in enumerate(costs):
        if i > start and size + cost + 1 > room:
            yield start, i
            start, size = i, 0
        size += cost + 1
    if start < len(costs):
        yield start, len(costs)


def shift_path(path: str, offset: int) -> str:
    """``"[3].name"`` -> ``"[3+offset].name"`` (a chunk's row -> the batch's); others as is."""
    if path.startswith("[") and "]" in path:
        index, rest = path[1:].split("]", 1)
        if index.isdigit():
            return f"[{int(index) + offset}]{rest}"
    return path
