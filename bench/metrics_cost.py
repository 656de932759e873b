"""What ``[metrics]`` costs the agent (by hand; BENCHMARKS.md "Metrics"): resident memory
added by importing prometheus_client and building the metrics (after what ``smscmd run``
has loaded, ssl included), the size of the textfile of an agent that answered commands,
and the time to render it and to render + write + rename it (median of N).

    PYTHONPATH=. python3 bench/metrics_cost.py [N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def median_us(run: object, n: int) -> float:
    assert callable(run)
    times = []
    for _ in range(n):
        begun = time.perf_counter()
        run()
        times.append(time.perf_counter() - begun)
    return statistics.median(times) * 1e6


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    import asyncio  # noqa: F401  (what smscmd run has loaded before the exporter)
    import ssl  # noqa: F401

    import device.cli
    import device.service  # noqa: F401

    before = rss_kib()
    modules = set(sys.modules)
    from prometheus_client import generate_latest

    from device.metrics.exporter import HANDLER_BUCKETS, AgentMetrics, write_textfile

    metrics = AgentMetrics("agent")
    after = rss_kib()
    added = len(set(sys.modules) - modules)
    # An agent that ran three handlers: their histograms are in the file too.
    for handler in ("ping", "status", "uptime"):
        metrics._handler_run.labels("agent", handler).observe(HANDLER_BUCKETS[3])
    metrics._reaction.labels("agent").observe(0.4)
    body = generate_latest(metrics.registry)
    path = Path(tempfile.mkdtemp()) / "smscmd.prom"
    render = median_us(lambda: generate_latest(metrics.registry), n)
    write = median_us(lambda: write_textfile(path, generate_latest(metrics.registry)), n)
    print(f"resident memory +{(after - before) / 1024:.1f} MiB ({before / 1024:.1f} -> "
          f"{after / 1024:.1f} MiB), {added} modules; textfile {len(body)} bytes; render "
          f"{render:.0f} us, render + write + rename {write:.0f} us (median of {n})")  # fmt: skip


if __name__ == "__main__":
    main()
