"""The standard models every conformance test uses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import diaspora_async as da


def declare_standard_models(orm: da.Diaspora) -> dict[str, Any]:
    """Declare ``Article`` (main + aux), ``Doc`` and ``Remapped`` (main only) on ``orm``.

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

    return {"Article": Article, "Doc": Doc, "Remapped": Remapped}
