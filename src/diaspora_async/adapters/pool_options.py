"""``PoolOptions``: the sizing and timing of a connection pool, validated from config.

Split from ``pool.py`` (which re-exports it): every networked adapter pops these keys out
of its data-source config before reading its own, so they mean the same everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from ..errors import ConfigError

__all__ = ["PoolOptions", "pop_timeout"]


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """Sizing and timing of a ``Pool`` (seconds); checked on construction (``ConfigError``).

    Attributes:
        timeout: bound on one whole operation (waiting for a connection, connecting,
            the operation) -> ``OperationTimeout``; the connection is then discarded.
        min_size: connections ``Pool.open()`` opens; idle ones are never trimmed.
        max_size: most connections at once (idle + borrowed + being opened).
        acquire_timeout: bound on all of ``acquire()`` (waiting + opening) -> ``PoolTimeout``.
        connect_timeout: bound on one ``_open()`` (-> ``ConnectionLost``) or checkout ping.
        recycle: a connection older than this is replaced at checkout; None never.
        health_check_interval: a connection idle longer than this is ``_ping()``-ed at
            checkout; 0 always, None never.
        close_timeout: how long ``close()`` waits for borrowed connections to come back.
    """

    timeout: float = 30.0
    min_size: int = 0
    max_size: int = 10
    acquire_timeout: float = 10.0
    connect_timeout: float = 10.0
    recycle: float | None = None
    health_check_interval: float | None = 30.0
    close_timeout: float = 10.0

    def __post_init__(self) -> None:
        def bad(key: str, rule: str) -> ConfigError:
            return ConfigError(f"pool option {key!r} must be {rule}, got {getattr(self, key)!r}")

        if self.max_size < 1:
            raise bad("max_size", "an integer >= 1")
        if not 0 <= self.min_size <= self.max_size:
            raise bad("min_size", f"an integer from 0 to max_size ({self.max_size})")
        for key in ("timeout", "acquire_timeout", "connect_timeout", "close_timeout", "recycle"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not 0 < value < math.inf):
                raise bad(key, "a finite number of seconds > 0")
        interval = self.health_check_interval
        if interval is not None and not 0 <= interval < math.inf:
            raise bad("health_check_interval", "a finite number of seconds >= 0, or None")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PoolOptions:
        """Pop the pool keys out of a data-source config and build validated options.

        Args:
            config: the data source's settings; keys named like this class's fields are
                removed from it, the rest is left for the adapter. Numeric strings such as
                ``"5"`` are accepted; None turns ``recycle``/``health_check_interval`` off.

        Raises:
            ConfigError: a value is not a number or breaks a rule; the message names the key.
        """
        values: dict[str, Any] = {}
        for key in [f.name for f in fields(cls) if f.name in config]:
            raw = config.pop(key)
            if raw is None and key in ("recycle", "health_check_interval"):
                values[key] = None
                continue
            try:
                if isinstance(raw, bool) or not isinstance(raw, str | int | float):
                    raise TypeError
                number = float(raw)
                if key.endswith("_size") and not number.is_integer():
                    raise ValueError
                values[key] = int(number) if key.endswith("_size") else number
            except (TypeError, ValueError, OverflowError):
                rule = "an integer" if key.endswith("_size") else "a number of seconds"
                raise ConfigError(f"pool option {key!r} must be {rule}, got {raw!r}") from None
        return cls(**values)


def pop_timeout(config: dict[str, Any]) -> float:
    """Pop and validate ``timeout`` (seconds per operation, default 30) for an adapter with
    no pool, so the option is accepted and checked by every adapter alike (``ConfigError``)."""
    return PoolOptions.from_config(
        {"timeout": config.pop("timeout")} if "timeout" in config else {}
    ).timeout
