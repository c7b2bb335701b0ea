"""The distribution: ``python -m build`` makes an sdist and a wheel that ``twine check --strict`` accepts,
with PEP 639 license metadata, and the wheel installed into a fresh venv passes the downstream example.

The fresh venv gets the wheel only (``--no-deps``); its dependencies come from this interpreter's
site-packages through a ``.pth`` line, so nothing else is downloaded. The build itself fetches its
isolated setuptools from the package index, as every user's build does.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

DJANGO_VERSIONS = ["4.2", "5.2", "6.0"]  # noxfile.py's DJANGO matrix
PYTHON_VERSIONS = ["3.10", "3.11", "3.12", "3.13"]


def run(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"{args}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    out = tmp_path_factory.mktemp("dist")
    # No target: build the sdist, then the wheel from the unpacked sdist (so the sdist is complete).
    log = run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel, log


def dependency_dirs() -> list[str]:
    """The site-packages directories this interpreter finds the runtime and test dependencies in."""
    import django
    import environ
    import jwt
    import pytest_django
    import rest_framework

    modules = (django, environ, jwt, pytest, pytest_django, rest_framework)
    return list(dict.fromkeys(str(Path(m.__file__).resolve().parent.parent) for m in modules))


def wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_string(archive.read(name).decode("utf-8"))


def test_the_build_prints_no_setuptools_deprecation(dist):
    _sdist, _wheel, log = dist
    assert "SetuptoolsDeprecationWarning" not in log
    assert "project.license" not in log


def test_twine_check_strict_accepts_both(dist):
    sdist, wheel, _log = dist
    out = run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel)
    assert out.count("PASSED") == 2, out


def test_the_wheel_metadata_has_an_spdx_license_the_readme_and_every_supported_version(dist):
    _sdist, wheel, _log = dist
    meta = wheel_metadata(wheel)
    assert meta["License-Expression"] == "MIT"
    assert meta["License-File"] == "LICENSE"
    assert not [c for c in meta.get_all("Classifier", []) if c.startswith("License ::")]
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().strip() == (ROOT / "README.md").read_text().strip()
    classifiers = set(meta.get_all("Classifier", []))
    assert {f"Framework :: Django :: {v}" for v in DJANGO_VERSIONS} <= classifiers
    assert {f"Programming Language :: Python :: {v}" for v in PYTHON_VERSIONS} <= classifiers
    assert meta["Requires-Python"] == ">=3.10"


def test_the_wheel_ships_the_package_the_contrib_apps_and_type_marker_only(dist):
    sdist, wheel, _log = dist
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    for required in (
        "drf_oidc_jwks/py.typed",
        "drf_oidc_jwks/migrations/0001_initial.py",
        "drf_oidc_jwks/contrib/devissuer/management/commands/mint_token.py",
        "drf_oidc_jwks/contrib/devissuer/urls.py",
    ):
        assert required in names
    assert {n.split("/")[0] for n in names} == {"drf_oidc_jwks", wheel.name.split("-py3")[0] + ".dist-info"}
    with tarfile.open(sdist) as archive:
        members = {m.name.split("/", 1)[-1] for m in archive.getmembers()}
    assert {"LICENSE", "README.md", "pyproject.toml", "drf_oidc_jwks/contrib/devissuer/issuer.py"} <= members


def test_the_installed_wheel_passes_the_downstream_example_outside_the_source_tree(dist, tmp_path):
    _sdist, wheel, _log = dist
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", wheel)
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip())
    # The dependencies (Django, DRF, PyJWT, pytest, ...) from this interpreter; the package itself from the wheel.
    (site / "_main_dependencies.pth").write_text("".join(f"{d}\n" for d in dependency_dirs()))

    project = tmp_path / "project"
    shutil.copytree(ROOT / "testproject", project / "testproject", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "tests" / "test_downstream_example.py", project / "test_downstream_example.py")
    (project / "pytest.ini").write_text(
        "[pytest]\nDJANGO_SETTINGS_MODULE = testproject.settings\npythonpath = .\naddopts = -p no:cacheprovider\n"
    )
    # The embedded defaults (SQLite, LocMemCache): the wheel is under test here, not the services of the second pass.
    dropped = ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CACHE_URL")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["VAR_DIR"] = str(tmp_path / "var")

    where = run(python, "-c", "import drf_oidc_jwks; print(drf_oidc_jwks.__file__)", cwd=project, env=env)
    assert Path(where.strip()).is_relative_to(site), where
    out = run(python, "-m", "pytest", "-q", "test_downstream_example.py", cwd=project, env=env)
    summary = out.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, out
    collected = run(python, "-m", "pytest", "-q", "--collect-only", "test_downstream_example.py", cwd=project, env=env)
    assert summary.split()[0] == collected.strip().splitlines()[-1].split()[0]
