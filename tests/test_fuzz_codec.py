"""The AT codec fuzzed: atheris (coverage-guided, bounded here) and hypothesis drive the
same target (``tests/fuzz_codec.py``), which may raise only the project's own errors.

Long runs by hand: ``PYTHONPATH=. python3 tests/fuzz_codec.py --runs 2000000``.
``SMSCMD_FUZZ_RUNS`` and ``SMSCMD_FUZZ_SECONDS`` bound the atheris run here (5000
inputs or 8 s, whichever comes first); a finding fails the test with its traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fuzz_codec import COMMANDS, SEEDS, check
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("SMSCMD_FUZZ_RUNS", "5000"))
#: The CI run also stops after this long (a loaded machine runs fewer inputs).
SECONDS = int(os.environ.get("SMSCMD_FUZZ_SECONDS", "8"))


@pytest.mark.timeout(120)
def test_atheris_finds_nothing(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for n, seed in enumerate(SEEDS):
        (corpus / f"seed{n}").write_bytes(seed)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    script = str(ROOT / "tests" / "fuzz_codec.py")
    bound = [f"-max_total_time={SECONDS}", f"-artifact_prefix={tmp_path}/"]
    proc = subprocess.run(
        [sys.executable, script, "--runs", str(RUNS), "--", *bound, str(corpus)],
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Done " in proc.stderr and " runs in " in proc.stderr, proc.stderr[-2000:]


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.binary(max_size=800), st.sampled_from(SEEDS)),
    st.integers(min_value=4, max_value=300),
    st.booleans(),
    st.sampled_from(COMMANDS),
    st.lists(st.integers(min_value=0, max_value=4096), max_size=8),
)
def test_hypothesis_finds_nothing(
    data: bytes, max_line: int, hex_bodies: bool, command: str | None, cuts: list[int]
) -> None:
    check(data, max_line, hex_bodies, command, cuts)


def test_the_target_catches_a_codec_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    """The properties can fail: a classifier that raises is reported (through the
    codec's FAULT event), not hidden by the codec's own guard."""
    from device.at.codec import AtCodec

    def broken(self: AtCodec, line: str, stripped: str) -> None:
        raise ValueError("a bug")

    monkeypatch.setattr(AtCodec, "_classify_line", broken)
    with pytest.raises(AssertionError, match="codec fault"):
        check(b"\r\nOK\r\n", 64, True, "AT", [])
