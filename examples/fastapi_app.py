"""A FastAPI service on diaspora_async: hand-written endpoints plus the generic REST API.

The app's lifespan opens the ORM (``async with orm``) and closes it on shutdown; handlers
simply ``await`` model calls; pydantic models shape requests and responses; and
``da.server.create_app(orm)`` is mounted under ``/api``, so every model is also served
over the REST protocol that the ``http`` adapter speaks (``/api/openapi.json`` has the
schema). Run it with::

    python examples/fastapi_app.py          # or: uvicorn examples.fastapi_app:app

then try ``curl localhost:8000/notes`` and ``curl 'localhost:8000/api/Note?sort=-created'``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

import diaspora_async as da
from diaspora_async.server import create_app

orm = da.Diaspora()
orm.create_data_source("main", "memory")  # swap for "sqlite"/"mysql": nothing else changes


def now() -> datetime:
    return datetime.now(UTC)


class Note(orm.Model, sources=["main"]):
    title: str
    body: str = ""
    done: bool = da.field(default=False, index=True)
    created: datetime = da.field(default_factory=now)


class NoteIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    body: str = ""


class NoteOut(BaseModel):
    id: str
    title: str
    body: str
    done: bool
    created: datetime


class Stats(BaseModel):
    total: int
    done: int


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with orm:  # open every data source and create tables; closed on shutdown
        yield


app = FastAPI(title="Notes", lifespan=lifespan)


@app.post("/notes", response_model=NoteOut, status_code=201)
async def create_note(note: NoteIn) -> NoteOut:
    created = await Note.insert(note.model_dump())
    return NoteOut(**created.to_dict())


@app.get("/notes", response_model=list[NoteOut])
async def list_notes(done: bool | None = None, limit: int = 20) -> list[NoteOut]:
    query = {} if done is None else {"done": done}
    found = await Note.find_many(query, sort="-created", limit=min(limit, 100))
    return [NoteOut(**n.to_dict()) for n in found]


@app.get("/notes/{note_id}", response_model=NoteOut)
async def get_note(note_id: str) -> NoteOut:
    note = await Note.find(note_id)
    if note is None:
        raise HTTPException(404, f"no note {note_id}")
    return NoteOut(**note.to_dict())


@app.post("/notes/{note_id}/done", response_model=NoteOut)
async def finish_note(note_id: str) -> NoteOut:
    note = await Note.update(note_id, {"done": True})
    if note is None:
        raise HTTPException(404, f"no note {note_id}")
    return NoteOut(**note.to_dict())


@app.get("/stats", response_model=Stats)
async def stats() -> Stats:
    return Stats(total=await Note.count(), done=await Note.count({"done": True}))


# Every model over REST, under /api: GET /api/Note?where=..., POST /api/Note, ...
app.mount("/api", create_app(orm, max_limit=100))


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
