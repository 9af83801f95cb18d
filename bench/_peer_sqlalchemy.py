"""The SQLAlchemy 2 model of ``bench_peers.py`` (declarative annotations resolve at module level)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """The peer's declarative base."""


class SItem(Base):
    """The peer table: the same layout as ours."""

    __tablename__ = "peer_sqlalchemy"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    n: Mapped[int] = mapped_column(Integer, index=True)
    score: Mapped[float] = mapped_column(Float)
    tags: Mapped[Any] = mapped_column(JSON)
    created: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
