"""The driver shims refuse driver versions outside the range their internals match."""

import pytest

from diaspora_async.adapters._driver_version import require
from diaspora_async.errors import ConfigError


@pytest.mark.parametrize("version", ["0.22", "0.22.1", "0.22.9rc1"])
def test_inside_the_range_passes(version: str) -> None:
    require("aiosqlite", version, "0.22", "0.23", extra="sqlite")


@pytest.mark.parametrize("version", ["0.21.9", "0.23", "0.23.0", "1.0", "garbage"])
def test_outside_the_range_names_it(version: str) -> None:
    with pytest.raises(ConfigError, match=r"aiosqlite>=0\.22,<0\.23.*diaspora_async\[sqlite\]"):
        require("aiosqlite", version, "0.22", "0.23", extra="sqlite")


def test_the_installed_drivers_are_supported() -> None:
    pytest.importorskip("aiosqlite")
    pytest.importorskip("redis")
    from diaspora_async.adapters.redis import _redispy
    from diaspora_async.adapters.sql import _aiosqlite

    assert _aiosqlite.SUPPORTED == ("0.22", "0.23")
    assert _redispy.SUPPORTED == ("8.0", "9")
