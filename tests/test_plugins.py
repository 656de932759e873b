"""Handler plug-ins (the ``smscmd.handlers`` entry-point group) and the deferred scan
(issue 14: the scan and :mod:`importlib.metadata` cost the agent about 1 MiB, so it
runs only when something needs a name that is not built in).

The plug-in here is a module and its ``.dist-info`` on ``sys.path``: discovered the
way :func:`importlib.metadata.entry_points` discovers an installed package (the
format is the Python Packaging Authority's "Entry points specification")."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.commands import (
    CommandContext,
    Dispatcher,
    Handler,
    Registry,
    StatusSnapshot,
    default_registry,
)
from device.config import Config
from device.errors import ConfigError
from device.handlers import HandlerConfig
from device.preflight import build_registry

PLUGIN = """
from device.commands import Handler

async def _tally(ctx):
    return "tallied"

def handlers():
    return [Handler("tally", _tally, idempotent=False, summary="plug-in tally")]
"""
SNAPSHOT = StatusSnapshot("ready", "home", "-67 dBm")


def install(root: Path, name: str = "tally_plugin") -> None:
    """``name``.py and its dist-info under ``root``, declaring ``tally``."""
    (root / f"{name}.py").write_text(textwrap.dedent(PLUGIN))
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[smscmd.handlers]\ntally = {name}:handlers\n")


@pytest.fixture
def scans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The plug-in installed on sys.path; yields the groups each entry-point scan asked."""
    install(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    asked: list[str] = []
    real = importlib.metadata.entry_points

    def counting(**params: str) -> importlib.metadata.EntryPoints:
        asked.append(params.get("group", ""))
        return real(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", counting)
    yield asked
    sys.modules.pop("tally_plugin", None)


def ctx(name: str) -> CommandContext:
    return CommandContext(name, None, "+1555", None, 1, status=lambda: SNAPSHOT)


def test_no_scan_while_every_name_is_built_in(scans: list[str]) -> None:
    """A config without tables for other handlers: no scan at start, none for a
    built-in command, one at the first other name, and never again."""
    registry = build_registry(Config(port=None, handlers=(HandlerConfig("ping", enabled=False),)))
    assert scans == []
    assert registry.lookup("status") is not None
    assert registry.get("ping") is not None and "help" in registry
    assert scans == []
    handler = registry.lookup("tally")
    assert handler is not None and handler.summary == "plug-in tally"
    assert scans == ["smscmd.handlers"]
    assert registry.lookup("nope") is None and registry.lookup("other") is None
    assert scans == ["smscmd.handlers"]


async def test_help_and_an_unknown_command_scan_first(scans: list[str]) -> None:
    """``help`` lists the plug-in's command; an unknown name is answered as before."""
    registry = build_registry(Config(port=None))
    outcome = await Dispatcher(registry).dispatch(ctx("help"))
    assert outcome.reply == "commands: help, ping, status, tally"
    assert scans == ["smscmd.handlers"]
    fresh = build_registry(Config(port=None))
    outcome = await Dispatcher(fresh).dispatch(ctx("nope"))
    assert outcome.reply == "error: unknown command 'nope'" and len(scans) == 2
    assert (await Dispatcher(fresh).dispatch(ctx("tally"))).reply == "tallied"


def test_a_table_for_a_plug_in_scans_at_start(scans: list[str]) -> None:
    """``[handlers.tally]`` adjusts the plug-in's handler: the scan runs at start."""
    registry = build_registry(Config(port=None, handlers=(HandlerConfig("tally", rate=2),)))
    assert scans == ["smscmd.handlers"]
    tally = registry.get("tally")
    assert tally is not None and tally.rate_limit == (2, 60.0)


def test_errors_of_the_config_stay_at_start(scans: list[str]) -> None:
    """A table for a handler nothing declares, and an exec handler named like a
    plug-in's, fail at start with the errors of an eager scan."""
    with pytest.raises(ConfigError, match="no such handler, and no argv to run"):
        build_registry(Config(port=None, handlers=(HandlerConfig("nope", enabled=False),)))
    with pytest.raises(ConfigError, match="a handler of that name exists already"):
        build_registry(Config(port=None, handlers=(HandlerConfig("tally", argv=("/bin/true",)),)))
    assert scans == ["smscmd.handlers", "smscmd.handlers"]


def test_a_reload_keeps_the_scan_pending_and_runs_it_once(scans: list[str]) -> None:
    """:meth:`Registry.replace` (the agent's reload) joins the new registry: the scan
    through the agent's view also serves the new registry's ``help``."""
    agent_view = default_registry()
    new = build_registry(Config(port=None))
    agent_view.replace(new)
    assert scans == []
    assert agent_view.lookup("tally") is not None
    assert new.names() == ["help", "ping", "status", "tally"]
    assert scans == ["smscmd.handlers"]


def test_a_broken_plug_in_is_logged_when_scanned(
    scans: list[str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The log lines of the scan are the eager scan's, at the time it runs."""
    (tmp_path / "tally_plugin.py").write_text("raise RuntimeError('broken')\n")
    registry = build_registry(Config(port=None))
    with caplog.at_level(logging.ERROR, logger="device.commands"):
        assert registry.lookup("tally") is None
    assert "handler plug-in 'tally' (tally_plugin:handlers) failed to load" in caplog.text


def test_registry_defer_runs_a_pending_loader_first() -> None:
    """A second :meth:`Registry.defer` runs the first loader before taking its place."""
    registry = Registry()
    ran: list[str] = []

    async def noop(ctx: CommandContext) -> None:
        return None

    def first(reg: Registry) -> None:
        ran.append("first")
        reg.register(Handler("one", noop, idempotent=True, summary=""))

    registry.defer(first)
    registry.defer(lambda reg: ran.append("second"))
    assert ran == ["first"]
    assert registry.get("one") is not None and ran == ["first"]  # registered: no scan
    assert registry.names() == ["one"] and ran == ["first", "second"]


def test_the_run_path_imports_no_entry_point_machinery(tmp_path: Path) -> None:
    """In a fresh interpreter: the agent's modules and its registry for a config of
    built-ins only leave :mod:`importlib.metadata` and :mod:`email` unimported (the
    ~1 MiB the deferred scan saves); the first unknown name imports them."""
    code = textwrap.dedent("""
        import json, sys
        before = {m for m in ("importlib.metadata", "email") if m in sys.modules}
        import device.service
        from device.config import Config
        from device.preflight import build_registry
        registry = build_registry(Config(port=None))
        registry.lookup("ping")
        quiet = sorted(m for m in ("importlib.metadata", "email") if m in sys.modules)
        registry.lookup("nope")
        print(json.dumps({"before": sorted(before), "quiet": quiet,
                          "after": "importlib.metadata" in sys.modules}))
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    seen = json.loads(out)
    if seen["before"]:
        pytest.skip(f"the interpreter's site imports {seen['before']} already")
    assert seen == {"before": [], "quiet": [], "after": True}
