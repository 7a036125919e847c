"""Developer sessions: `nox -s tests lint typecheck docs bench`.

Sessions reuse the interpreter's site-packages (``--system-site-packages``) so an already installed
torch
(several GB) is not copied into every virtualenv; on a machine without torch, pip installs it as
usual.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
VENV_PARAMS = ["--system-site-packages"]
SOURCES = ["neuralstyle", "tests", "benchmarks", "scripts", "noxfile.py"]


@nox.session(venv_params=VENV_PARAMS)
def tests(session: nox.Session) -> None:
    """Run the test suite (pass extra pytest arguments after --)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(venv_params=VENV_PARAMS)
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", *SOURCES)
    session.run("ruff", "format", "--check", *SOURCES)


@nox.session(venv_params=VENV_PARAMS)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[lint]")
    session.run("mypy", "neuralstyle")


@nox.session(venv_params=VENV_PARAMS)
def docs(session: nox.Session) -> None:
    """Build the documentation strictly (warnings are errors)."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict")


@nox.session(venv_params=VENV_PARAMS)
def bench(session: nox.Session) -> None:
    """Run the benchmarks (slow: minutes); results land in benchmarks/results/."""
    session.install("-e", ".")
    session.run("python", "benchmarks/extractor_build.py")
    session.run("python", "benchmarks/speed.py", *session.posargs)
    session.run("python", "benchmarks/quality.py")
