"""Shared benchmark helpers: time an async operation and print ours-vs-raw ratios.

Every ``bench/bench_*.py`` module defines ``async def main() -> list[Result]``; ``run.py``
collects them and prints one table. A benchmark runs our path and the raw driver in the
same process, interleaved in rounds, and keeps the best round of each (the least disturbed
by the machine), so the ratio compares like with like.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    """One benchmark line: operations per second for us and for the raw driver."""

    group: str
    name: str
    ours: float
    raw: float
    target: float | None = None  # the minimum acceptable ratio from the issue

    @property
    def ratio(self) -> float:
        return self.ours / self.raw if self.raw else float("nan")


async def ops_per_second(fn: Callable[[], Awaitable[object]], ops: int) -> float:
    """Run ``fn`` once (it performs ``ops`` operations) and return operations per second."""
    start = time.perf_counter()
    await fn()
    return ops / (time.perf_counter() - start)


async def compare(
    group: str,
    name: str,
    ours: Callable[[], Awaitable[object]],
    raw: Callable[[], Awaitable[object]],
    ops: int,
    rounds: int = 5,
    target: float | None = None,
) -> Result:
    """Interleave ``rounds`` runs of ours and raw; keep each side's best round."""
    best_ours = best_raw = 0.0
    for _ in range(rounds):
        best_raw = max(best_raw, await ops_per_second(raw, ops))
        best_ours = max(best_ours, await ops_per_second(ours, ops))
    return Result(group, name, best_ours, best_raw, target)


def print_table(results: list[Result]) -> None:
    """Print results as an aligned table with the ratio and whether it meets its target."""
    header = (
        f"{'group':8} {'operation':34} {'ours ops/s':>12} {'raw ops/s':>12} {'ratio':>7}  target"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        verdict = "" if r.target is None else ("ok" if r.ratio >= r.target else "BELOW")
        tgt = "" if r.target is None else f">={r.target:.2f} {verdict}"
        print(f"{r.group:8} {r.name:34} {r.ours:12,.0f} {r.raw:12,.0f} {r.ratio:7.2f}  {tgt}")
