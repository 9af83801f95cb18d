"""Run every ``bench/bench_*.py`` and print one table (``nox -s bench``).

Benchmarks whose service is not reachable are reported and skipped; ``--only NAME`` runs
one module (e.g. ``--only sql``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import pkgutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]  # also runnable without installing

from bench._common import Result, print_table  # noqa: E402 - needs the path above


async def _main(only: str | None) -> int:
    import bench

    results: list[Result] = []
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        if not info.name.startswith("bench_"):
            continue
        if only and info.name != f"bench_{only}":
            continue
        module = importlib.import_module(f"bench.{info.name}")
        print(f"running {info.name} ...", flush=True)
        try:
            results += await module.main()
        except (ConnectionError, OSError) as exc:
            print(f"  skipped {info.name}: {exc}")
    print()
    print_table(results)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="run bench/bench_ONLY.py alone")
    args = parser.parse_args()
    raise SystemExit(asyncio.run(_main(args.only)))
