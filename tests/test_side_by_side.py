"""``bench/side_by_side.py --quick`` runs and prints a well-formed section (smscmd only,
unpaced: the peers have tests of their own in tests/test_clients_*.py, and the figures
themselves are no test's business: they go to BENCHMARKS.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(120)
def test_quick_run_prints_a_section() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "side_by_side.py"), "--quick", "--only", "smscmd",
         "--baud", "0", "--no-write"],
        capture_output=True, text=True, timeout=110, check=False, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert out.startswith("<!-- side-by-side: begin") and out.rstrip().endswith("end -->"), out
    rows = [line for line in out.splitlines() if line.startswith("| smscmd")]
    assert [r.split(" | ")[0:2] for r in rows] == [
        ["| smscmd, text mode", "unpaced"],
        ["| smscmd, PDU mode", "unpaced"],
    ], out
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert cells[2].endswith(" ms") and cells[3] == "10", r
        assert cells[4].startswith("20 in "), r
