"""Class creation refuses types no adapter can store; NaN/inf need a field's opt-in."""

from __future__ import annotations

import enum
from typing import Any, Literal

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
     (dict[str, bytes], "bytes"), (list[set[bytes]], "bytes"),
     (list[Literal[Mixed.a]], "Literal")],
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


class Flagged(enum.Enum):
    yes = True
    no = False


class Ratio(enum.Enum):
    half = 0.5
    one = 1


def test_enum_kinds_and_annotated_and_literal_members() -> None:
    from datetime import date
    from decimal import Decimal
    from typing import Annotated

    import pydantic

    orm = da.Diaspora()

    class Odd(orm.Model):
        flag: Flagged = Flagged.no
        ratio: Ratio = Ratio.one
        when: Annotated[date, pydantic.Field(ge=date(2000, 1, 1))] | None = None
        pick: Literal[Flagged.yes] | None = None
        price: Annotated[Decimal, pydantic.Field(max_digits=6)] = Decimal(0)
        pair: tuple[int, str] | None = None

    kinds = {n: f.kind for n, f in Odd.__meta__.fields.items()}
    assert kinds == {"flag": "bool", "ratio": "float", "when": "datetime", "pick": "any",
                     "price": "str", "pair": "list"}  # fmt: skip
    e = Odd.spawn(flag=True, ratio=0.5, when="2026-05-06", pick=Flagged.yes, pair=(1, "a"))
    e.validate()
    assert e._attrs["flag"] is True and e._attrs["when"].isoformat() == "2026-05-06T00:00:00+00:00"
    assert e._attrs["pair"] == [1, "a"] and e.pair == (1, "a")
    assert (e.flag, e.ratio, e.when, e.pick) == (
        Flagged.yes,
        Ratio.half,
        date(2026, 5, 6),
        Flagged.yes,
    )
    e._attrs["when"] = "2026-07-08"  # a date as text (a store without datetimes) reads back too
    assert e.when == date(2026, 7, 8)
    with pytest.raises(da.ValidationError, match="when"):
        Odd.spawn(when="1999-01-01").validate()
    assert isinstance(Odd.when, object) and type(Odd.__dict__["flag"]).__name__ == "_DecodedAttr"


def test_an_undecodable_stored_value_raises_validation_error_on_access() -> None:
    orm = da.Diaspora()

    class Shade(enum.Enum):
        dark = "d"

    class Lamp(orm.Model):
        shade: Shade = Shade.dark

    lamp = Lamp.spawn()
    lamp._attrs["shade"] = "gone"  # a member removed since the row was written
    with pytest.raises(da.ValidationError, match="shade") as info:
        _ = lamp.shade
    assert "stored value 'gone'" in str(info.value)
    with pytest.raises(da.ValidationError):
        lamp.to_dict()
    with pytest.raises(ValueError, match="mode"):
        Lamp.spawn().to_dict(mode="yaml")  # type: ignore[arg-type]
