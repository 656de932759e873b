"""Building the gateway package in a test: :func:`build_deb` runs ``hardware/deb/build``
(the same command an operator runs) and returns the path of the ``.deb``.

Other test tiers use it too (the real-systemd tier installs the package with
``apt install ./smscmd_*.deb`` in a Debian 12 container)::

    from debpkg import build_deb
    deb = build_deb(tmp_path)            # tmp_path/smscmd_<version>_all.deb

:func:`require` is the skip-or-fail rule of a missing Debian tool: a skip with the
reason on a developer's machine, a failure in CI (``CI=true``), where
``tests/deb/install`` has installed it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "hardware" / "deb" / "build"
INSTALL = "bash tests/deb/install"
#: Bound of one build (about a second here; a Raspberry Pi is slower).
BUILD_TIMEOUT = 120.0


def build_deb(out: Path, *args: str, env: dict[str, str] | None = None) -> Path:
    """``hardware/deb/build --out OUT ARGS``: the path it prints (the ``.deb``).

    A failed build raises :class:`subprocess.CalledProcessError` with the script's
    stderr (the reason, one line) in ``exc.stderr``. ``env`` replaces the environment.
    """
    result = subprocess.run(
        [str(BUILD), "--out", str(out), *args],
        capture_output=True, text=True, check=True, timeout=BUILD_TIMEOUT, env=env,
    )  # fmt: skip
    return Path(result.stdout.strip())


def missing(what: str) -> NoReturn:
    """``what`` is not installed: skip on a developer's machine, fail in CI."""
    reason = f"{what} is not installed (as root: `{INSTALL}`)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def require(tool: str) -> str:
    """The path of the executable ``tool``, or skip / fail (:func:`missing`)."""
    path = shutil.which(tool)
    if path is None:
        missing(tool)
    return path


def require_packages(*names: str) -> None:
    """Each Debian package of ``names`` is installed, or skip / fail."""
    absent = [
        name for name in names
        if "install ok installed" not in subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True, check=False
        ).stdout
    ]  # fmt: skip
    if absent:
        missing(" ".join(absent))
