"""``smscmd check-config`` and the start-up check of ``smscmd run`` (issue 13): a file is
validated, its handlers listed, and each exec handler's program must exist and be
executable; a problem is one line naming the file and the key, exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from device.config import load_config
from device.errors import ConfigError
from device.handlers import HandlerConfig
from device.preflight import check, program_problem, review

TIMEOUT = 60


def missing(conf: Path, name: str) -> str:
    """The one line for handler ``name`` whose program is ``/nonexistent/<name>``."""
    return (
        f'smscmd: configuration error: {conf}: handlers."{name}".argv: '
        f"program '/nonexistent/{name}' does not exist"
    )


def smscmd(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "device.cli", *argv],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip


def script(path: Path, mode: int = 0o755) -> Path:
    path.write_text("#!/bin/sh\necho hi\n")
    path.chmod(mode)
    return path


def test_program_problem_by_path_cwd_and_path_variable(tmp_path: Path) -> None:
    """execvpe semantics: a name with a ``/`` is a path (relative to the handler's cwd),
    a bare name is searched on the handler's PATH (its env's, if it sets one)."""
    good = script(tmp_path / "good.sh")
    plain = script(tmp_path / "plain.sh", 0o644)
    assert program_problem(HandlerConfig("a", (str(good),))) is None
    assert program_problem(HandlerConfig("a", ("./good.sh",), cwd=tmp_path)) is None
    assert "does not exist" in (program_problem(HandlerConfig("a", ("./x",), cwd=tmp_path)) or "")
    if os.geteuid() != 0:  # root may execute anything with an x bit; 0644 has none
        assert "not an executable" in (program_problem(HandlerConfig("a", (str(plain),))) or "")
    assert "not an executable" in (program_problem(HandlerConfig("a", (str(tmp_path),))) or "")
    on_path = HandlerConfig("a", ("good.sh",), env=(("PATH", str(tmp_path)),))
    assert program_problem(on_path) is None
    assert "not found on PATH" in (program_problem(HandlerConfig("a", ("good.sh",))) or "")
    assert program_problem(HandlerConfig("ping", enabled=False)) is None


def test_review_names_the_file_and_every_problem(tmp_path: Path) -> None:
    conf = tmp_path / "agent.toml"
    conf.write_text(
        '[handlers."a"]\nargv = ["/nonexistent/a"]\n'
        '[handlers."b"]\nargv = ["no-such-program-smscmd"]\n'
        '[handlers."nosuch"]\nenabled = false\n'
    )
    registry, problems = review(load_config(conf), conf)
    assert registry is None
    assert [(p.path, p.key) for p in problems] == [
        (str(conf), 'handlers."nosuch"'),
        (str(conf), 'handlers."a".argv'),
        (str(conf), 'handlers."b".argv'),
    ]
    with pytest.raises(ConfigError, match=r'handlers\."nosuch": no such handler'):
        check(load_config(conf), conf)


def test_check_config_lists_the_handlers(tmp_path: Path) -> None:
    good = script(tmp_path / "up.sh")
    conf = tmp_path / "agent.toml"
    conf.write_text(
        f'[handlers."up"]\nargv = ["{good}", "-v"]\n[handlers."ping"]\nenabled = false\n'
    )
    done = smscmd("check-config", str(conf))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{conf}: ok, 4 handler(s)"
    assert lines[1:] == [
        "  help             built-in or plug-in",
        "  ping             built-in or plug-in (disabled)",
        "  status           built-in or plug-in",
        f"  up               exec {good} -v",
    ]


def test_check_config_one_line_per_problem(tmp_path: Path) -> None:
    conf = tmp_path / "agent.toml"
    conf.write_text(
        '[handlers."a"]\nargv = ["/nonexistent/a"]\n[handlers."b"]\nargv = ["/nonexistent/b"]\n'
    )
    done = smscmd("check-config", str(conf))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [missing(conf, "a"), missing(conf, "b")]
    conf.write_text("[agent\n")
    done = smscmd("check-config", str(conf))
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert "not valid TOML" in done.stderr and "Traceback" not in done.stderr


def test_run_refuses_a_missing_program(tmp_path: Path) -> None:
    """Checked before the journal, the port or the socket are touched: exit 2, one line."""
    conf = tmp_path / "agent.toml"
    conf.write_text('[handlers."a"]\nargv = ["/nonexistent/a"]\n')
    journal = tmp_path / "j.sqlite3"
    done = smscmd("run", "--config", str(conf), "--port", "/dev/null", "--journal", str(journal))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [missing(conf, "a")]
    assert not journal.exists()
