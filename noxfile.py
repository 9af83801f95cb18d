"""Developer tasks: ``nox -s demo``, ``nox -s tests``, ``nox -s coverage``, ``nox -s lint``,
``nox -s typecheck``, ``nox -s bench``. ``nox -s services`` starts the local test services
(MariaDB, Redis and the MongoDB wire-protocol server) when they are not running."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
TEST_DEPS = [
    "pytest>=8.3",
    "pytest-asyncio>=0.25",
    "pytest-timeout>=2.3",
    "motor>=3.6",
    "asyncmy>=0.2.9",
    "fastapi>=0.115",
    "aiohttp>=3.10",
    "uvicorn>=0.30",
    "pytest-cov>=5",
    "mypy>=1.13",  # tests/unit/test_typing.py runs it on a snippet
]


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Run the quickstart on embedded stores (SQLite + memory); needs no service."""
    session.install("-e", ".[sqlite]")
    session.run("python", "examples/01_quickstart.py")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the whole test suite; service-backed tests skip (or fail under CI=true)."""
    session.install("-e", ".[all]", *TEST_DEPS)
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def coverage(session: nox.Session) -> None:
    """The whole suite under coverage (branch); fails below ``fail_under`` in pyproject.toml.

    A session of its own, not ``--cov`` in ``tests``: tracing nearly doubles the run time.
    Needs every service up (``nox -s services``), or the skipped tests lower the total.
    """
    session.install("-e", ".[all]", *TEST_DEPS)
    session.run("pytest", "--cov", "--cov-report=term", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint and format check) over the source, tests, examples and benchmarks."""
    session.install("ruff>=0.8")
    paths = ("src", "tests", "examples", "bench", "noxfile.py")
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over src/."""
    session.install("-e", ".[all]", "mypy>=1.13")
    session.run("mypy")
    session.run("mypy", "--strict", "examples/03_typed_models.py")  # what users' checkers see
    session.run("mypy", "--strict", "examples/fastapi_app.py", "examples/aiohttp_app.py")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks: our path against the raw driver, same run, with ratios."""
    session.install("-e", ".[all,bench]")
    session.run("python", "bench/run.py", *session.posargs)


@nox.session(venv_backend="none")
def services(session: nox.Session) -> None:
    """Start MariaDB, Redis and the MongoDB wire-protocol server if they are down."""
    session.run("bash", "scripts/services.sh", "start", external=True)
