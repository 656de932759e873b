"""The source distribution carries the LICENSE and what its own tests need.

Built from a copy of the tree (so no ``*.egg-info`` lands in the checkout) with the
setuptools build backend the project declares (PEP 517 ``build_sdist``), the same call
``python -m build --sdist`` makes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IGNORED = shutil.ignore_patterns(
    ".git", "__pycache__", "*.egg-info", "build", "dist", ".venv*", ".*_cache", ".hypothesis"
)


@pytest.fixture(scope="module")
def sdist_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    tree = tmp_path_factory.mktemp("sdist") / "src"
    shutil.copytree(ROOT, tree, ignore=IGNORED)
    out = tree / "dist"
    script = "import sys; from setuptools import build_meta as b; print(b.build_sdist(sys.argv[1]))"
    result = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        cwd=tree, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    archive = out / result.stdout.strip().splitlines()[-1]
    with tarfile.open(archive) as tar:
        top = f"{archive.name.removesuffix('.tar.gz')}/"
        return {m.name.removeprefix(top) for m in tar.getmembers() if m.isfile()}


def test_sdist_carries_the_license(sdist_names: set[str]) -> None:
    assert "LICENSE" in sdist_names
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")[:200]


def test_sdist_carries_what_the_tests_need(sdist_names: set[str]) -> None:
    for name in ("tests/conftest.py", "tests/harness.py", "hardware/install.sh",
                 "hardware/agent.toml.example", "bench/run.py", "pyproject.toml"):  # fmt: skip
        assert name in sdist_names, name
    tracked_tests = {str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("*.py")
                     if "__pycache__" not in p.parts}  # fmt: skip
    assert tracked_tests <= sdist_names
    assert not any("__pycache__" in name for name in sdist_names)
