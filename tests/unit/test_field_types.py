"""Class creation refuses types no adapter can store; NaN/inf need a field's opt-in."""

from __future__ import annotations

import enum
from typing import Any

import pytest

import diaspora_async as da


class Mixed(enum.Enum):
    a = "a"
    b = 2


class Pair(enum.Enum):
    a = (1, 2)


@pytest.mark.parametrize(
    ("annotation", "named"),
    [(bytes, "bytes"), (complex, "complex"), (Mixed, "Mixed"), (Pair, "Pair"),
     (dict[str, bytes], "bytes"), (list[set[bytes]], "bytes")],
)  # fmt: skip
def test_unstorable_types_are_refused_at_class_creation(annotation: Any, named: str) -> None:
    orm = da.Diaspora()
    with pytest.raises(da.ConfigError, match=named) as info:
        type("Bad", (orm.Model,), {"__annotations__": {"value": annotation}})
    assert "value" in str(info.value)


def test_nan_and_infinities_need_the_field_opt_in() -> None:
    orm = da.Diaspora()

    class Reading(orm.Model):
        strict: float = 0.0
        many: list[float] = da.field(default_factory=list)
        loose: float | None = da.field(default=None, allow_inf_nan=True)

    for bad in ({"strict": float("nan")}, {"strict": float("-inf")}, {"many": [1.0, float("inf")]}):
        with pytest.raises(da.ValidationError, match="finite"):
            Reading.spawn(bad).validate()
    e = Reading.spawn(loose=float("inf"))
    e.validate()
    assert e.loose == float("inf")
    with pytest.raises(da.QueryError, match="strict"):
        Reading.__meta__.where({"strict": float("nan")})


def test_the_dict_form_takes_date_decimal_and_uuid() -> None:
    import uuid
    from datetime import date
    from decimal import Decimal

    orm = da.Diaspora()
    Invoice = orm.declare_model(
        "Invoice",
        {"attributes": {"due": "date", "total": {"type": "decimal", "required": True},
                        "ref": "uuid", "tags": {"type": "array", "of": "date"}}},
    )  # fmt: skip
    ref = uuid.uuid4()
    e = Invoice.spawn(due="2026-01-31", total="1.10", ref=str(ref), tags=["2026-02-01"])
    e.validate()
    assert (e.due, e.total, e.ref) == (date(2026, 1, 31), Decimal("1.10"), ref)
    assert e.tags == [date(2026, 2, 1)]
