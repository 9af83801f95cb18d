"""The revision clock and the per-source retention option (no store needed)."""

from __future__ import annotations

from datetime import timedelta

import pytest

import diaspora_async as da
from diaspora_async.revisions import LENGTH, newest, next_revision


def test_revisions_are_fixed_width_increasing_and_beat_what_they_follow() -> None:
    a = next_revision()
    b = next_revision()
    assert len(a) == len(b) == LENGTH and a < b and a == a.lower()
    future = "ffff" + a[4:]  # a revision from a machine whose clock runs far ahead
    assert next_revision(future) > future
    # a foreign or pre-revision value counts as the oldest, it never stops the clock
    assert next_revision("not a revision") > b and next_revision(None) > b
    assert newest([None, a, b, None]) == b and newest([None]) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (60, timedelta(seconds=60)),
        (0.5, timedelta(seconds=0.5)),
        (timedelta(days=1), timedelta(days=1)),
    ],
)
def test_tombstone_retention_takes_seconds_or_a_timedelta(
    value: object, expected: timedelta
) -> None:
    orm = da.Diaspora()
    source = orm.create_data_source("m", "memory", tombstone_retention=value)
    assert source.tombstone_retention == expected


@pytest.mark.parametrize("value", ["7d", True, None, -1, timedelta(seconds=-1)])
def test_a_bad_tombstone_retention_is_a_config_error(value: object) -> None:
    with pytest.raises(da.ConfigError, match="tombstone_retention"):
        da.Diaspora().create_data_source("m", "memory", tombstone_retention=value)
