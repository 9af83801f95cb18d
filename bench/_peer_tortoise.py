"""The Tortoise ORM model of ``bench_peers.py`` (Tortoise discovers models by module)."""

from __future__ import annotations

from typing import Any

from tortoise import fields, models


class TItem(models.Model):
    """The peer table: the same layout as ours."""

    id = fields.CharField(pk=True, max_length=36)
    name = fields.CharField(max_length=255)
    n = fields.IntField(db_index=True)
    score = fields.FloatField()
    tags: Any = fields.JSONField()
    created = fields.DatetimeField(null=True)

    class Meta:
        table = "peer_tortoise"
        app = "bench"
