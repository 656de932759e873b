"""The source distribution carries the LICENSE and what its own tests need; the wheel
built from it says its license as an SPDX expression (PEP 639).

Built from a copy of the tree (so no ``*.egg-info`` lands in the checkout) with
``python -m build``: the sdist first, then the wheel from the unpacked sdist, each in an
isolated environment holding the ``[build-system]`` requires (setuptools>=77, fetched
from the package index as pip does; the interpreter's own setuptools may be older).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: One build for the module (one xdist worker), which may fetch setuptools: a longer bound.
pytestmark = [pytest.mark.timeout(600), pytest.mark.xdist_group("sdist")]
IGNORED = shutil.ignore_patterns(
    ".git", "__pycache__", "*.egg-info", "build", "dist", ".venv*", ".*_cache", ".hypothesis"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dist/ directory: one sdist, one wheel."""
    pytest.importorskip("build", reason="the build package is in the [test] extras")
    tree = tmp_path_factory.mktemp("sdist") / "src"
    shutil.copytree(ROOT, tree, ignore=IGNORED)
    out = tree / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(tree)],
        cwd=tree, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def sdist_names(built: Path) -> set[str]:
    (archive,) = built.glob("smscmd-*.tar.gz")
    with tarfile.open(archive) as tar:
        top = f"{archive.name.removesuffix('.tar.gz')}/"
        return {m.name.removeprefix(top) for m in tar.getmembers() if m.isfile()}


def test_the_wheel_says_its_license_as_an_spdx_expression(built: Path) -> None:
    """Core metadata 2.4 (PEP 639): ``License-Expression: Apache-2.0`` and the LICENSE
    file under ``.dist-info/licenses/``, no free-text ``License:`` field."""
    (wheel,) = built.glob("smscmd-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        headers = zf.read(metadata).decode().split("\n\n", 1)[0].splitlines()
        licence = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        assert zf.read(licence) == (ROOT / "LICENSE").read_bytes()
    assert "License-Expression: Apache-2.0" in headers
    assert "License-File: LICENSE" in headers
    assert not any(h.startswith("License:") for h in headers)
    assert float(next(h for h in headers if h.startswith("Metadata-Version:")).split()[1]) >= 2.4


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
