"""The standard models every conformance test uses."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import pydantic

import diaspora_async as da


class Status(enum.StrEnum):
    """A ``StrEnum`` field type (``Typed.status``)."""

    draft = "draft"
    live = "live"


class Level(enum.IntEnum):
    """An ``IntEnum`` field type (``Typed.level``, ``Typed.levels``)."""

    low = 1
    mid = 2
    high = 3


class Color(enum.Enum):
    """A plain ``enum.Enum`` with string values (``Typed.color``)."""

    red = "r"
    blue = "b"


class Address(pydantic.BaseModel):
    """A nested pydantic model (``Typed.address``, ``Typed.stops``)."""

    city: str
    zip: str | None = None
    since: datetime | None = None


def declare_standard_models(orm: da.Diaspora) -> dict[str, Any]:
    """Declare ``Article`` and ``Typed`` (main + aux), ``Doc`` and ``Remapped`` (main
    only) on ``orm``.

    Conformance tests use only these models, so a target that must mirror them on a
    server (the http target) can declare the same set there.
    """

    class Article(orm.Model, sources=["main", "aux"]):
        title: str
        views: int = 0
        score: float | None = None
        draft: bool = True
        tags: list[str] = da.field(default_factory=list)
        meta: dict[str, Any] | None = None
        published: datetime | None = None
        status: str = da.field(default="draft", choices=["draft", "live", "gone"], index=True)
        slug: str | None = da.field(default=None, unique=True)

    class Doc(orm.Model, sources=["main"]):
        name: str
        data: Any = None
        rank: int | None = da.field(default=None, index=True)

    class Remapped(orm.Model, sources={"main": {"title": "heading", "views": "hits"}}):
        title: str
        views: int = 0

    class Typed(orm.Model, sources=["main", "aux"]):
        """Every field type beyond JSON's (DESIGN.md 9), read back as declared."""

        name: str
        status: Status = Status.draft
        level: Level = da.field(default=Level.low, index=True)
        color: Color | None = None
        kind: Literal["a", "b"] = "a"
        price: Decimal = Decimal("0")
        ref: uuid.UUID | None = None
        day: date | None = None
        address: Address | None = None
        stops: list[Address] = da.field(default_factory=list)
        levels: list[Level] = da.field(default_factory=list)
        by_name: dict[str, Color] = da.field(default_factory=dict)
        ratio: float = 0.0

    return {"Article": Article, "Doc": Doc, "Remapped": Remapped, "Typed": Typed}
