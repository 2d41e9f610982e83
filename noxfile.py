"""Developer tasks: ``nox -s tests``, ``nox -s lint``, ``nox -s typecheck``, ``nox -s bench``."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (Redis tests need Redis on 127.0.0.1:6379)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package."""
    session.install("-e", ".[redis,cli]", "mypy>=1.10")
    session.run("mypy", "--strict", "chatmaid_async")


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmark and rewrite benchmarks/RESULTS.md."""
    session.install("-e", ".[test]", "httpx", "uvloop", "pyinstrument")
    session.run("python", "benchmarks/run_all.py", *session.posargs)
