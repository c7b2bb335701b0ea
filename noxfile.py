"""The version matrix: Python 3.10–3.13 × Django 4.2 LTS, 5.2 LTS, 6.0 × newest DRF/PyJWT, plus the oldest supported.

.venv/bin/nox                       # the whole matrix (docs: docs/contributing.md)
.venv/bin/nox -s oldest newest      # what .ci/run runs
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

# pyenv's shims answer only for the active version: put every installed interpreter's own bin first.
_pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
if _pyenv.is_dir():
    _bins = [str(p / "bin") for p in sorted(_pyenv.iterdir()) if (p / "bin").is_dir()]
    os.environ["PATH"] = os.pathsep.join([*_bins, os.environ.get("PATH", "")])

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests"]
nox.options.error_on_missing_interpreters = True

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
DJANGO = {"4.2": "Django>=4.2,<5.0", "5.2": "Django>=5.2,<6.0", "6.0": "Django>=6.0,<6.1"}
# The suite without the long groups (interop IdPs, gunicorn, fuzz, fault injection): scripts/test.sh runs those twice.
PYTEST = ["-q", "-m", "not interop and not slow and not fuzz and not faults", "-p", "no:cacheprovider"]


@nox.session(python=PYTHONS)
@nox.parametrize("django", list(DJANGO))
def tests(session: nox.Session, django: str) -> None:
    """One cell: this Python × this Django, newest DRF and PyJWT."""
    if django == "6.0" and session.python in ("3.10", "3.11"):
        session.skip("Django 6.0 supports Python 3.12 and newer only")
    session.install("-e", ".[test]", DJANGO[django])
    session.run("python", "-m", "pytest", *PYTEST, *session.posargs)


@nox.session(python="3.10")
def oldest(session: nox.Session) -> None:
    """The oldest supported combination: Python 3.10, Django 4.2, DRF 3.14, PyJWT 2.13, requests 2.28."""
    session.install(
        "-e",
        ".[test]",
        "Django==4.2.*",
        "djangorestframework==3.14.0",
        "PyJWT[crypto]==2.13.0",
        "requests==2.28.2",
    )
    session.run("python", "-m", "pytest", *PYTEST, *session.posargs)


@nox.session(python="3.13")
def newest(session: nox.Session) -> None:
    """The newest combination: Python 3.13, Django 6.0, the newest DRF and PyJWT."""
    session.install("-e", ".[test]", DJANGO["6.0"], "--upgrade", "djangorestframework", "PyJWT[crypto]")
    session.run("python", "-m", "pytest", *PYTEST, *session.posargs)
