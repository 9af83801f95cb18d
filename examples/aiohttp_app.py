"""The same notes service in aiohttp: handlers ``await`` the ORM directly.

``make_app()`` builds the registry, the model and the routes; a cleanup context opens
the ORM when the app starts and closes it when the app stops. aiohttp does not mount
ASGI apps, so the generic REST API lives in the FastAPI example; this one shows the
hand-written endpoints. Run it with ``python examples/aiohttp_app.py`` then try
``curl -d '{"title": "hi"}' localhost:8080/notes``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

import diaspora_async as da

NOTE = web.AppKey("Note", type)


def now() -> datetime:
    return datetime.now(UTC)


def as_json(note: da.Model) -> dict[str, Any]:
    data = note.to_dict()
    data["created"] = data["created"].isoformat()
    return data


async def create_note(request: web.Request) -> web.Response:
    Note = request.app[NOTE]
    payload = await request.json()
    try:
        note = await Note.insert({"title": payload.get("title"), "body": payload.get("body", "")})
    except da.ValidationError as exc:  # the ORM validated it: tell the caller which fields
        errors = [{"path": p, "message": m} for p, m in exc.errors]
        return web.json_response({"errors": errors}, status=422)
    return web.json_response(as_json(note), status=201)


async def list_notes(request: web.Request) -> web.Response:
    Note = request.app[NOTE]
    done = request.query.get("done")
    query = {} if done is None else {"done": done == "true"}
    found = await Note.find_many(query, sort="-created", limit=20)
    return web.json_response([as_json(n) for n in found])


async def get_note(request: web.Request) -> web.Response:
    note = await request.app[NOTE].find(request.match_info["id"])
    if note is None:
        raise web.HTTPNotFound(text="no such note")
    return web.json_response(as_json(note))


async def finish_note(request: web.Request) -> web.Response:
    note = await request.app[NOTE].update(request.match_info["id"], {"done": True})
    if note is None:
        raise web.HTTPNotFound(text="no such note")
    return web.json_response(as_json(note))


async def stats(request: web.Request) -> web.Response:
    Note = request.app[NOTE]
    return web.json_response(
        {"total": await Note.count(), "done": await Note.count({"done": True})}
    )


def make_app() -> web.Application:
    orm = da.Diaspora()
    orm.create_data_source("main", "memory")

    class Note(orm.Model, sources=["main"]):
        title: str
        body: str = ""
        done: bool = da.field(default=False, index=True)
        created: datetime = da.field(default_factory=now)

    async def open_orm(app: web.Application) -> AsyncIterator[None]:
        async with orm:  # connected while the app runs
            yield

    app = web.Application()
    app[NOTE] = Note
    app.cleanup_ctx.append(open_orm)
    app.add_routes([
        web.post("/notes", create_note),
        web.get("/notes", list_notes),
        web.get("/notes/{id}", get_note),
        web.post("/notes/{id}/done", finish_note),
        web.get("/stats", stats),
    ])  # fmt: skip
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
