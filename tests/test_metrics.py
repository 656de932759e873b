"""Prometheus metrics (issue 15, device/metrics/): the ``[metrics]`` table, the figures an
agent exposes after it answered commands in the in-memory tier, read back with the text
format's own parser (``prometheus_client.parser``), the textfile's atomic replacement
(node_exporter's textfile collector conventions), the HTTP endpoint over loopback, and an
agent without ``[metrics]`` loading none of it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import Line
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_agent import WAIT, Recorder

from device import preflight
from device.agent import Agent
from device.commands import default_registry
from device.config import Config, load_config
from device.errors import ConfigError
from device.journal import Journal
from device.metrics import MetricsConfig, parse_metrics
from device.metrics.config import parse_listen
from device.metrics.exporter import TEXTFILE_MODE, MetricsExporter, journal_size, write_textfile
from device.modem import ModemState
from device.observer import Observers
from device.preflight import check
from hostsim.link import WHOLE

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of the exposition, parsed by prometheus_client's own text parser."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(parsed: Samples, name: str, **labels: str) -> float:
    return parsed[(name, frozenset({"agent": "t", **labels}.items()))]


# ------------------------------------------------------------------------- the table


def test_the_table_read_from_a_file(tmp_path: Path) -> None:
    file = tmp_path / "agent.toml"
    file.write_text('[metrics]\ntextfile_directory = "prom"\nlisten = "127.0.0.1:9101"\n')
    metrics = load_config(file).metrics
    assert metrics == MetricsConfig(tmp_path / "prom" / "smscmd.prom", 15.0, ("127.0.0.1", 9101))
    assert load_config(None).metrics is None


def test_an_instance_has_its_own_file_and_label(tmp_path: Path) -> None:
    """smscmd@NAME reads NAME.toml: two instances writing into one textfile directory
    must neither overwrite each other's file nor expose the same series (node_exporter
    refuses a metric collected twice with the same labels)."""
    metrics = parse_metrics({"textfile_directory": "/d"}, tmp_path / "north.toml")
    assert metrics.textfile == Path("/d/smscmd-north.prom") and metrics.name == "north"
    named = parse_metrics({"textfile_directory": "/d", "name": "x", "textfile_name": "a.prom"},
                          tmp_path / "agent.toml")  # fmt: skip
    assert named.textfile == Path("/d/a.prom") and named.name == "x"


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        ({}, "metrics", "needs textfile_directory or listen"),
        ({"listen": "127.0.0.1:9101", "port": 1}, "metrics.port", "unknown key"),
        ({"textfile_directory": 3}, "metrics.textfile_directory", "expected a directory path"),
        ({"textfile_directory": "/d", "textfile_name": "x.txt"}, "metrics.textfile_name", ".prom"),
        ({"textfile_directory": "/d", "textfile_name": "a/b.prom"}, "metrics.textfile_name",
         "no '/'"),
        ({"listen": "::1", "textfile_name": "a.prom"}, "metrics.textfile_name",
         "needs textfile_directory"),
        ({"listen": "127.0.0.1:9101", "interval": 0}, "metrics.interval", "> 0"),
        ({"listen": "127.0.0.1:9101", "interval": True}, "metrics.interval", "> 0"),
        ({"listen": "127.0.0.1:70000"}, "metrics.listen", "0-65535"),
        ({"listen": "gateway.example:9101"}, "metrics.listen", "IP address or localhost"),
        ({"listen": "::1:9101"}, "metrics.listen", "in brackets"),
        ({"listen": "[127.0.0.1]:9101"}, "metrics.listen", "for an IPv6 address"),
        ({"listen": 9101}, "metrics.listen", "HOST:PORT"),
        ({"listen": "127.0.0.1:1", "name": "-x"}, "metrics.name", "letters"),
    ],
)  # fmt: skip
def test_a_bad_table_is_a_config_error_naming_the_key(
    tmp_path: Path, table: dict[str, object], key: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_metrics(table, tmp_path / "agent.toml")
    assert caught.value.key == key and caught.value.path == str(tmp_path / "agent.toml")


def test_a_metrics_key_not_a_table(tmp_path: Path) -> None:
    file = tmp_path / "agent.toml"
    file.write_text('metrics = "yes"\n')
    with pytest.raises(ConfigError, match=r"expected a table \[metrics\]"):
        load_config(file)


def test_check_config_says_when_prometheus_client_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """smscmd run, a reload and check-config refuse [metrics] without the package (exit
    2 naming the key), rather than an ImportError when the agent starts."""
    file = tmp_path / "agent.toml"
    file.write_text('[metrics]\nlisten = "127.0.0.1:0"\n')
    config = load_config(file)
    assert check(config, file) is not None
    monkeypatch.setattr(preflight, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="needs prometheus_client") as caught:
        check(config, file)
    assert caught.value.key == "metrics" and caught.value.path == str(file)


def test_listen_forms() -> None:
    assert parse_listen("localhost:0") == ("localhost", 0)
    assert parse_listen("[::1]:9101") == ("::1", 9101)
    assert parse_listen("0.0.0.0:9101") == ("0.0.0.0", 9101)


# ------------------------------------------------------------------- the agent's figures


@dataclass
class MetricsRig:
    gw: object
    agent: Agent
    recorder: Recorder
    exporter: MetricsExporter


@contextlib.asynccontextmanager
async def metrics_rig(tmp: Path, line: Line, metrics: MetricsConfig) -> AsyncIterator[MetricsRig]:
    """tests/test_agent.py's rig, with the exporter's observer beside the recorder, as
    device/service.py attaches it beside the unit's STATUS= observer."""
    async with line.hostsim() as sim:
        gw = sim.modems[0]
        config = Config(
            port=line.port(gw), journal=tmp / "journal.sqlite3", reconnect_initial=0.05,
            reconnect_max=0.2, command_timeout=2.0, metrics=metrics,
        )  # fmt: skip
        with Journal.open(config.journal) as journal:
            recorder = Recorder()
            exporter = MetricsExporter(metrics)
            agent = Agent(
                config, journal, default_registry(),
                observer=Observers(recorder, exporter.metrics),
                open_channel=line.open_channel(gw, default_timeout=config.command_timeout),
            )  # fmt: skip
            exporter.start(agent)
            task = asyncio.create_task(agent.run())
            try:
                await asyncio.wait_for(recorder.ready.wait(), WAIT)
                yield MetricsRig(gw, agent, recorder, exporter)
            finally:
                agent.stop()
                await asyncio.wait_for(task, WAIT)
                await exporter.close()


def scrape(address: tuple[str, int]) -> str:
    host, port = address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=WAIT) as answer:
        assert answer.status == 200
        body: bytes = answer.read()
    return body.decode()


async def test_the_figures_after_commands(tmp_path: Path, line: Line) -> None:
    """Three messages (a command, an unknown command, one from a sender not allowed), a
    reply the network refuses for good (+CMS ERROR 21, 27.005 §3.2.5), then a module
    restart: counted as the hooks saw them; the textfile and the HTTP endpoint give the
    same figures; the state set names ``ready``; the handler histogram is labelled by
    the handler that ran (``none`` for the unknown command, never the message's text)."""
    config = MetricsConfig(tmp_path / "smscmd.prom", 3600.0, ("127.0.0.1", 0), "t")
    async with metrics_rig(tmp_path, line, config) as r:
        rec = r.recorder
        r.gw.deliver("000", "ping: one")  # type: ignore[attr-defined]
        await asyncio.wait_for(rec.until(lambda: len(rec.sent_rows) == 1), WAIT)
        r.gw.deliver("000", "frobnicate")  # type: ignore[attr-defined]
        await asyncio.wait_for(rec.until(lambda: len(rec.sent_rows) == 2), WAIT)
        r.gw.deliver("4915550001", "ping: not yours")  # type: ignore[attr-defined]
        await asyncio.wait_for(rec.until(lambda: len(rec.rows) == 3), WAIT)
        r.gw.modem.fail_next_send(21)  # type: ignore[attr-defined]
        r.gw.deliver("000", "ping: four")  # type: ignore[attr-defined]
        await asyncio.wait_for(rec.until(lambda: len(rec.failed_rows) == 1), WAIT)
        r.gw.reboot()  # type: ignore[attr-defined]
        await asyncio.wait_for(rec.reached(ModemState.READY, 2), WAIT)
        await r.exporter.update(r.agent)
        written = (tmp_path / "smscmd.prom").read_text()
        assert r.exporter.address is not None
        served = await asyncio.to_thread(scrape, r.exporter.address)
    for text in (written, served):
        got = samples(text)
        assert value(got, "smscmd_commands_received_total") == 4
        assert value(got, "smscmd_commands_refused_total") == 1
        assert value(got, "smscmd_commands_done_total") == 2
        assert value(got, "smscmd_commands_failed_total") == 1
        assert value(got, "smscmd_sms_sent_total", kind="reply") == 2
        assert value(got, "smscmd_sms_send_failures_total", final="true") == 1
        assert value(got, "smscmd_reinitialisations_total") == 1
        assert value(got, "smscmd_reconnects_total") == 0
        assert value(got, "smscmd_modem_state", smscmd_modem_state="ready") == 1
        assert value(got, "smscmd_modem_state", smscmd_modem_state="probing") == 0
        assert value(got, "smscmd_handler_run_seconds_count", handler="ping") == 2
        assert value(got, "smscmd_handler_run_seconds_count", handler="none") == 1
        assert not any("frobnicate" in str(labels) for _, labels in got)
        # Two replies accepted after the +CMTI that named their command (the refused
        # and the one the network rejected have none): both measured, under 10 s.
        assert value(got, "smscmd_reaction_seconds_count") == 2
        assert value(got, "smscmd_reaction_seconds_bucket", le="10.0") == 2
        assert value(got, "smscmd_outbox_depth") == 0
        assert value(got, "smscmd_journal_size_bytes") >= 4096  # a page or more (it moves on)
        assert 0 <= value(got, "smscmd_signal_rssi") <= 31
        assert value(got, "smscmd_signal_dbm") == -113 + 2 * value(got, "smscmd_signal_rssi")
        assert value(got, "smscmd_registered") == 1
        assert value(got, "smscmd_registration_status") in (1, 5)
    # close() wrote the file once more: the agent has stopped.
    final = samples((tmp_path / "smscmd.prom").read_text())
    assert value(final, "smscmd_modem_state", smscmd_modem_state="stopped") == 1


async def test_a_port_in_use_is_logged_and_the_agent_runs(
    tmp_path: Path, line: Line, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = MetricsConfig(tmp_path / "smscmd.prom", 3600.0, ("127.0.0.1", port), "t")
        async with metrics_rig(tmp_path, line, config) as r:
            r.gw.deliver("000", "ping: still")  # type: ignore[attr-defined]
            await asyncio.wait_for(r.recorder.until(lambda: len(r.recorder.sent_rows) == 1), WAIT)
            assert r.exporter.address is None
    assert f"metrics: cannot listen on 127.0.0.1:{port}" in caplog.text
    assert value(samples((tmp_path / "smscmd.prom").read_text()), "smscmd_commands_done_total") == 1


# ----------------------------------------------------------------------------- textfile


def test_the_textfile_is_replaced_whole(tmp_path: Path) -> None:
    """A reader that reads the file while it is rewritten 300 times, with contents of
    different lengths, only ever sees one whole content (rename(2) over the old file),
    never a part or an empty file; the temporary file does not end in .prom (the
    textfile collector reads only *.prom) and is gone afterwards."""
    path = tmp_path / "smscmd.prom"
    contents = [
        (f"# {i}\n" + f'smscmd_x{{agent="t"}} {i}\n' * (1 + i % 37)).encode() for i in range(300)
    ]
    write_textfile(path, contents[0])
    allowed = set(contents)
    seen: list[bytes] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(path.read_bytes())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for content in contents[1:]:
            write_textfile(path, content)
    finally:
        done.set()
        reader.join(WAIT)
    assert seen and all(s in allowed for s in seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smscmd.prom"]


def test_the_textfile_is_readable_by_node_exporter_whatever_the_umask(tmp_path: Path) -> None:
    """The unit's UMask=0027 would make it 0640: node_exporter (user prometheus) reads it."""
    old = os.umask(0o077)
    try:
        write_textfile(tmp_path / "a.prom", b"x 1\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.prom").stat().st_mode) == TEXTFILE_MODE == 0o644


def test_the_journal_size_is_the_file_and_its_wal(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite3"
    assert journal_size(journal) is None
    journal.write_bytes(b"x" * 100)
    assert journal_size(journal) == 100
    (tmp_path / "j.sqlite3-wal").write_bytes(b"x" * 50)
    assert journal_size(journal) == 150


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "a.prom").mkdir()  # rename(2) of a file over a directory fails
    with pytest.raises(OSError):
        write_textfile(tmp_path / "a.prom", b"x 1\n")
    assert [p.name for p in tmp_path.iterdir()] == ["a.prom"]
    with pytest.raises(OSError):
        write_textfile(tmp_path / "missing" / "a.prom", b"x 1\n")


async def test_an_unwritable_directory_is_logged_once(
    tmp_path: Path, line: Line, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="device.metrics.exporter")
    config = MetricsConfig(tmp_path / "missing" / "smscmd.prom", 3600.0, None, "t")
    async with metrics_rig(tmp_path, line, config) as r:
        await r.exporter.update(r.agent)
        await r.exporter.update(r.agent)
        assert caplog.text.count("metrics: cannot write") == 1
        (tmp_path / "missing").mkdir()
        await r.exporter.update(r.agent)
    assert "written again" in caplog.text and (tmp_path / "missing" / "smscmd.prom").exists()


# ---------------------------------------------------------------- nothing without the table

#: One pass of the real service (device.service.run_service) with the agent's loop
#: replaced (no modem needed), where no IP socket can be opened (so that smscmd run
#: keeps ssl out, device/tls.py): what it imported, and whether the textfile was
#: written. prometheus_client imports ssl: with [metrics] it is let in (device.tls.admit).
SERVICE = textwrap.dedent("""
    import json, socket, sys
    class Refused(socket.socket):  # as under the unit's RestrictAddressFamilies=AF_UNIX
        def __init__(self, family=socket.AF_INET, *args, **kwargs):
            if family in (socket.AF_INET, socket.AF_INET6):
                raise OSError(97, "Address family not supported by protocol")
            super().__init__(family, *args, **kwargs)
    socket.socket = Refused
    from device.tls import apply
    assert not apply({}).loaded  # smscmd run's decision: ssl kept out
    import asyncio
    import device.cli
    from device.agent import Agent
    from device.config import load_config
    from device.service import run_service
    async def run(self):
        await self.journal.close()
    Agent.run = run
    config = load_config(sys.argv[1])
    asyncio.run(run_service(config))
    print(json.dumps({m: m in sys.modules for m in
                      ("prometheus_client", "device.metrics", "device.metrics.exporter",
                       "wsgiref.simple_server", "ssl")}))
""")


@pytest.mark.parametrize("with_table", [False, True])
def test_an_agent_without_the_table_imports_none_of_it(tmp_path: Path, with_table: bool) -> None:
    file = tmp_path / "agent.toml"
    file.write_text(
        '[agent]\nport = "/dev/null"\njournal = "j.sqlite3"\ncontrol_socket = "c.sock"\n'
        + ('[metrics]\ntextfile_directory = "."\n' if with_table else "")
    )
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    done = subprocess.run(
        [sys.executable, "-c", SERVICE, str(file)], capture_output=True, text=True, timeout=60,
        env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert loaded == dict.fromkeys(loaded, with_table)
    assert (tmp_path / "smscmd.prom").exists() is with_table


# ------------------------------------------------------------- node_exporter reads it

NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"  # Debian's (tests/metrics/install)


async def test_node_exporters_textfile_collector_reads_the_files(tmp_path: Path) -> None:
    """Debian's node_exporter (1.5, its textfile collector only, on a free loopback port)
    reads the agent's file and a second instance's beside it: both agents' series in its
    answer, ``node_textfile_scrape_error 0`` (a file it cannot parse, or a series two
    files both define, sets it to 1)."""
    if not os.access(NODE_EXPORTER, os.X_OK):
        reason = "prometheus-node-exporter is not installed (as root: bash tests/metrics/install)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    directory = tmp_path / "textfile"
    directory.mkdir()
    config = MetricsConfig(directory / "smscmd.prom", 3600.0, None, "t")
    async with metrics_rig(tmp_path, Line.loopback(WHOLE), config) as r:
        r.gw.deliver("000", "ping: node")  # type: ignore[attr-defined]
        await asyncio.wait_for(r.recorder.until(lambda: len(r.recorder.sent_rows) == 1), WAIT)
        await r.exporter.update(r.agent)
    north = MetricsExporter(MetricsConfig(directory / "smscmd-north.prom", 3600.0, None, "north"))
    write_textfile(directory / "smscmd-north.prom", generate_latest(north.metrics.registry))
    with socket.socket() as probe:  # a free port (node_exporter takes no port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        NODE_EXPORTER, "--collector.disable-defaults", "--collector.textfile",
        f"--collector.textfile.directory={directory}", f"--web.listen-address=127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        log = b""
        while b"Listening on" not in log:  # its own word that the port is open
            line = await asyncio.wait_for(proc.stderr.readline(), WAIT)
            assert line, log.decode()
            log += line
        got = samples(await asyncio.to_thread(scrape, ("127.0.0.1", port)))
    finally:
        proc.terminate()
        await proc.wait()
    assert got[("node_textfile_scrape_error", frozenset())] == 0
    assert value(got, "smscmd_commands_done_total") == 1
    assert got[("smscmd_commands_done_total", frozenset({("agent", "north")}))] == 0
    mtimes = {dict(labels)["file"] for name, labels in got if name == "node_textfile_mtime_seconds"}
    assert {Path(f).name for f in mtimes} == {"smscmd.prom", "smscmd-north.prom"}
