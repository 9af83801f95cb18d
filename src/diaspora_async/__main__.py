"""The worker process: ``python -m diaspora_async relay --config app.toml``.

Builds the registry from the configuration (``Diaspora.from_config``; the file needs an
``"outbox"`` entry), connects it and runs the outbox relay (DESIGN.md 6.2) until SIGTERM
or SIGINT, or with ``--until-empty`` until the backlog is delivered. Either way it exits 0
after closing the registry and prints one summary line to stdout::

    relay: delivered=2000 failed=0 dead=0 passes=21

A bad configuration prints one line to stderr and exits 2; a store that cannot be
opened exits 1 the same way. Any number of workers may run on one outbox.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from .errors import ConfigError, DiasporaError
from .ops.relay import Relay
from .registry import Diaspora

__all__ = ["main"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diaspora-async", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    relay = commands.add_parser("relay", help="deliver the outbox's intents")
    relay.add_argument("--config", required=True, help="the .toml or .json configuration")
    relay.add_argument("--interval", type=float, default=1.0, help="seconds between passes")
    relay.add_argument("--batch-size", type=int, default=500, help="intents per pass")
    relay.add_argument(
        "--until-empty", action="store_true", help="exit once no live intent is left"
    )
    return parser


async def _relay(args: argparse.Namespace) -> Relay:
    orm = Diaspora.from_config(args.config)
    relay = orm.relay(args.interval, args.batch_size)  # checks the outbox and the numbers
    loop = asyncio.get_running_loop()
    work: asyncio.Task[None] | None = None
    stopping = False

    def stop() -> None:
        # A signal ends the work between (or inside) writes: every write is
        # revision-guarded and an unacknowledged intent stays, so stopping anywhere is
        # safe; the lease frees what this worker had claimed. One that arrives while
        # connecting lets the connect finish (it is bounded by the sources' timeouts),
        # so the registry is closed properly either way.
        nonlocal stopping
        stopping = True
        if work is not None:
            work.cancel()

    for sig in _SIGNALS:
        loop.add_signal_handler(sig, stop)
    try:
        async with orm:
            if not stopping:
                work = loop.create_task(relay.drain() if args.until_empty else relay.run())
                with contextlib.suppress(asyncio.CancelledError):
                    await work
    finally:
        for sig in _SIGNALS:
            loop.remove_signal_handler(sig)
    return relay


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 done, 1 a store failed, 2 usage
    or configuration)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        relay = asyncio.run(_relay(args))
    except ConfigError as exc:
        print(f"diaspora-async: configuration: {exc}", file=sys.stderr)
        return 2
    except DiasporaError as exc:  # a store could not be opened
        print(f"diaspora-async: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    done = relay.delivered
    print(
        f"relay: delivered={done.replayed} failed={done.failed} dead={done.dead} "
        f"passes={relay.passes}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
