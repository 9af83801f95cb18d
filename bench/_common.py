"""Shared benchmark helpers: time ours against the raw driver, call by call, and print ratios.

Every ``bench/bench_*.py`` module defines ``async def main() -> list[Result]``; ``run.py``
collects them and prints one table. ``interleaved`` alternates single calls of ours and
raw (swapping who goes first), so a slow spell of the machine hits both sides alike.
Operations per second come from the MEDIAN call: on a shared VM a few calls per run are
slowed by things neither side controls (a WAL checkpoint, the host stealing the CPU), and
the median of thousands of alternating calls is stable to a few percent where the mean
moves by 10-15% between identical runs. The mean-based ratio is printed beside it, so a
heavier tail on our side (GC pauses, say) stays visible.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Op = Callable[[int], Awaitable[object]]


@dataclass(frozen=True)
class Result:
    """One benchmark line: operations per second for us and for the raw driver."""

    group: str
    name: str
    ours: float  # operations per second at the median call
    raw: float
    target: float | None = None  # the minimum acceptable ratio from the issue
    mean_ratio: float = float("nan")  # ours/raw from total times instead of medians

    @property
    def ratio(self) -> float:
        return self.ours / self.raw if self.raw else float("nan")


async def interleaved(
    group: str,
    name: str,
    ours: Op,
    raw: Op,
    calls: int,
    per_call: int = 1,
    target: float | None = None,
    reset: Callable[[], Awaitable[object]] | None = None,
) -> Result:
    """Alternate ``calls`` single calls of ``ours(k)`` and ``raw(k)``, each doing
    ``per_call`` operations; ``reset`` runs (untimed) before every call, e.g. to empty
    the tables so every bulk insert starts alike."""
    times: dict[str, list[float]] = {"ours": [], "raw": []}
    for k in range(calls):
        order = (("ours", ours), ("raw", raw)) if k % 2 else (("raw", raw), ("ours", ours))
        for side, fn in order:
            if reset is not None:
                await reset()
            start = time.perf_counter()
            await fn(k)
            times[side].append(time.perf_counter() - start)
    ours_rate = per_call / statistics.median(times["ours"])
    raw_rate = per_call / statistics.median(times["raw"])
    mean_ratio = sum(times["raw"]) / sum(times["ours"])
    return Result(group, name, ours_rate, raw_rate, target, mean_ratio)


def print_table(results: list[Result]) -> None:
    """Print results as an aligned table with the ratios and whether they meet the target."""
    header = (
        f"{'group':8} {'operation':30} {'ours ops/s':>11} {'raw ops/s':>11} {'ratio':>6} "
        f"{'(mean)':>6}  target"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        verdict = "" if r.target is None else ("ok" if r.ratio >= r.target else "BELOW")
        tgt = "" if r.target is None else f">={r.target:.2f} {verdict}"
        print(
            f"{r.group:8} {r.name:30} {r.ours:11,.0f} {r.raw:11,.0f} {r.ratio:6.2f} "
            f"{r.mean_ratio:6.2f}  {tgt}"
        )
