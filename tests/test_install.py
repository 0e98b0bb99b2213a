"""What ``pip install -e .`` makes of the repository: every module and package of the
product is installed (``pyproject.toml`` lists them one by one), and the ``leadflow``
command starts from any folder — not only from the repository, where Python would find
an unlisted module next to it (the other tests run there, with ``PYTHONPATH`` set)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOT_PRODUCT = {"tests", "bench"}


def _clean_env() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("LEADFLOW_")
    }


def test_every_module_and_package_is_listed_for_installation() -> None:
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    modules = {p.stem for p in REPO.glob("*.py")}
    packages = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in REPO.glob("**/__init__.py")
        if p.relative_to(REPO).parts[0] not in NOT_PRODUCT | {".venv"}
        and not p.relative_to(REPO).parts[0].startswith(".")
    }
    assert modules - set(setuptools["py-modules"]) == set(), "add them to py-modules"
    assert packages - set(setuptools["packages"]) == set(), "add them to packages"


def _outside(args: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    """Run ``args`` in ``folder`` (outside the repository) without ``PYTHONPATH``."""
    return subprocess.run(
        args,
        cwd=folder,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_installed_command_starts_outside_the_repository(tmp_path: Path) -> None:
    modules = sorted(p.stem for p in REPO.glob("*.py"))
    imported = _outside([sys.executable, "-c", f"import {', '.join(modules)}"], tmp_path)
    assert imported.returncode == 0, imported.stderr
    helped = _outside([str(Path(sys.executable).parent / "leadflow"), "--help"], tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "dev" in helped.stdout and "leads" in helped.stdout, helped.stdout
