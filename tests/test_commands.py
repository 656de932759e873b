"""Payload grammar, registry, dispatcher, built-ins and SMS-sized replies."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest
from conftest import run_async
from hypothesis import given
from hypothesis import strategies as st

from device.commands import (
    CommandContext,
    Dispatcher,
    Handler,
    Outcome,
    ParsedCommand,
    Registry,
    RegistryError,
    StatusSnapshot,
    default_registry,
    format_reply,
    parse_payload,
)
from device.errors import SmscmdError
from device.sms import gsm7

SNAPSHOT = StatusSnapshot(module="hostsim HS-1", registration="roaming", signal="-67 dBm")


def ctx_for(payload: str, status: StatusSnapshot = SNAPSHOT) -> CommandContext:
    parsed = parse_payload(payload)
    return CommandContext(
        name=parsed.name,
        argument=parsed.argument,
        sender="000",
        timestamp=datetime(2026, 11, 25, 10, tzinfo=UTC),
        journal_id=1,
        status=lambda: status,
    )


def dispatch(payload: str, registry: Registry | None = None) -> Outcome:
    dispatcher = Dispatcher(registry or default_registry())
    return run_async(dispatcher.dispatch(ctx_for(payload)))


# --------------------------------------------------------------------------- grammar


@pytest.mark.parametrize(
    ("payload", "name", "argument"),
    [
        ("checkin: firmware update", "checkin", "firmware update"),
        ("Report location: (52.520008, 13.404954)", "report location", "(52.520008, 13.404954)"),
        ("PING", "ping", None),
        ("ping: 42", "ping", "42"),
        ("ping:", "ping", None),
        ("ping:   ", "ping", None),
        ("  Report \t  LOCATION  :  x  ", "report location", "x"),
        ("set: a: b:c", "set", "a: b:c"),
        (": arg", "", "arg"),
        ("", "", None),
        ("   \n\t ", "", None),
        ("ping\n", "ping", None),
        ("ÄRGER: ü", "ärger", "ü"),
    ],
)
def test_parse_examples(payload: str, name: str, argument: str | None) -> None:
    assert parse_payload(payload) == ParsedCommand(name, argument)


@given(st.text())
def test_parse_never_raises_and_normalises(text: str) -> None:
    parsed = parse_payload(text)
    assert parsed.name == parsed.name.lower()
    assert parsed.name == parsed.name.strip()
    assert "  " not in parsed.name
    assert ":" not in parsed.name
    if parsed.argument is not None:
        assert parsed.argument == parsed.argument.strip()
        assert parsed.argument
        assert ":" in text


@given(st.text(alphabet=st.characters(blacklist_characters=":")), st.text())
def test_parse_splits_at_first_colon(head: str, tail: str) -> None:
    parsed = parse_payload(f"{head}:{tail}")
    assert parsed.argument == (tail.strip() or None)
    assert parsed.name == " ".join(head.lower().split())


# --------------------------------------------------------------------------- registry


async def _echo(ctx: CommandContext) -> str:
    return ctx.argument or ""


def test_registry_register_get_names_unregister() -> None:
    reg = Registry()
    h = Handler("echo", _echo, idempotent=True, summary="echo")
    reg.register(h)
    assert reg.get("echo") is h
    assert reg.get("nope") is None
    assert "echo" in reg and len(reg) == 1
    reg.register(Handler("abc", _echo, idempotent=False, summary="x", enabled=False))
    assert reg.names() == ["abc", "echo"]
    assert reg.names(enabled_only=True) == ["echo"]
    assert reg.unregister("echo") is h
    with pytest.raises(RegistryError):
        reg.unregister("echo")


def test_registry_duplicate_is_typed_error() -> None:
    reg = default_registry()
    with pytest.raises(RegistryError) as info:
        reg.register(Handler("ping", _echo, idempotent=True, summary="again"))
    assert isinstance(info.value, SmscmdError)


@pytest.mark.parametrize("name", ["", "Ping", " ping", "a  b", "a:b", "ping\n"])
def test_registry_rejects_undispatchable_names(name: str) -> None:
    with pytest.raises(RegistryError):
        Registry().register(Handler(name, _echo, idempotent=True, summary=""))


def test_multiword_handler_dispatched() -> None:
    async def locate(ctx: CommandContext) -> str:
        return f"at {ctx.argument}"

    reg = default_registry()
    reg.register(Handler("report location", locate, idempotent=True, summary="where"))
    out = dispatch("Report  Location: (52.5, 13.4)", reg)
    assert out == Outcome("at (52.5, 13.4)", ok=True)


# --------------------------------------------------------------------------- built-ins


def test_default_registry_builtins_idempotent() -> None:
    reg = default_registry()
    assert reg.names() == ["help", "ping", "status"]
    for name in reg.names():
        handler = reg.get(name)
        assert handler is not None and handler.idempotent and handler.enabled and handler.summary


def test_ping() -> None:
    assert dispatch("ping") == Outcome("pong", ok=True)
    assert dispatch("PING: 42") == Outcome("pong: 42", ok=True)


def test_status() -> None:
    assert dispatch("status") == Outcome(
        "status: module hostsim HS-1, registration roaming, signal -67 dBm", ok=True
    )


def test_help_lists_enabled_commands_at_run_time() -> None:
    assert dispatch("help") == Outcome("commands: help, ping, status", ok=True)
    reg = default_registry()
    reg.register(Handler("checkin", _echo, idempotent=False, summary="check in"))
    reg.register(Handler("reboot", _echo, idempotent=False, summary="reboot", enabled=False))
    assert dispatch("help", reg).reply == "commands: checkin, help, ping, status"


# --------------------------------------------------------------------------- dispatch


def test_unknown_command() -> None:
    out = dispatch("Reboot Now: please")
    assert out.reply == "error: unknown command 'reboot now'"
    assert not out.ok


@pytest.mark.parametrize("payload", ["", "   ", ": x"])
def test_empty_command(payload: str) -> None:
    out = dispatch(payload)
    assert not out.ok and out.reply == "error: empty command"


def test_disabled_command() -> None:
    reg = Registry()
    reg.register(Handler("reboot", _echo, idempotent=False, summary="", enabled=False))
    out = dispatch("reboot", reg)
    assert not out.ok and out.reply == "error: command 'reboot' is disabled"


def test_handler_exception_is_reply_and_log(caplog: pytest.LogCaptureFixture) -> None:
    async def boom(ctx: CommandContext) -> str:
        raise RuntimeError("kaputt")

    reg = Registry()
    reg.register(Handler("boom", boom, idempotent=False, summary=""))
    with caplog.at_level(logging.ERROR, logger="device.commands"):
        out = dispatch("boom", reg)
    assert out == Outcome("error: boom failed", ok=False, error="RuntimeError('kaputt')")
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None


def test_status_callable_failure_is_caught() -> None:
    def broken() -> StatusSnapshot:
        raise OSError("port gone")

    ctx = ctx_for("status")
    ctx = CommandContext(ctx.name, ctx.argument, ctx.sender, ctx.timestamp, 1, broken)
    out = run_async(Dispatcher(default_registry()).dispatch(ctx))
    assert out.reply == "error: status failed" and not out.ok
    assert out.error is not None and "port gone" in out.error


def test_handler_returning_none_means_no_reply() -> None:
    async def quiet(ctx: CommandContext) -> None:
        return None

    reg = Registry()
    reg.register(Handler("quiet", quiet, idempotent=True, summary=""))
    assert dispatch("quiet", reg) == Outcome(None, ok=True)


def test_handler_timeout() -> None:
    async def slow(ctx: CommandContext) -> str:
        await asyncio.Event().wait()
        return "never"

    reg = Registry()
    reg.register(Handler("slow", slow, idempotent=True, summary=""))
    dispatcher = Dispatcher(reg, timeout=0.01)
    out = run_async(dispatcher.dispatch(ctx_for("slow")))
    assert out.reply == "error: slow timed out" and not out.ok


def test_dispatcher_rejects_bad_timeout() -> None:
    with pytest.raises(ValueError):
        Dispatcher(Registry(), timeout=0)


async def test_cancellation_propagates() -> None:
    started = asyncio.Event()

    async def slow(ctx: CommandContext) -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    reg = Registry()
    reg.register(Handler("slow", slow, idempotent=True, summary=""))

    task = asyncio.create_task(Dispatcher(reg).dispatch(ctx_for("slow")))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --------------------------------------------------------------------------- format_reply


def test_format_reply_plain_untouched() -> None:
    assert format_reply("pong") == ("pong", [])
    assert format_reply("") == ("", [])


def test_format_reply_replaces_non_gsm() -> None:
    text, warnings = format_reply("temp 21°C ✓ ok")
    assert text == "temp 21?C ? ok"
    assert len(warnings) == 1 and "2 character" in warnings[0]


def test_format_reply_exactly_160_septets_not_cut() -> None:
    text = "a" * 160
    assert format_reply(text) == (text, [])
    ext = "a" * 158 + "€"  # 158 + 2 septets
    assert format_reply(ext) == (ext, [])


def test_format_reply_161_septets_cut() -> None:
    text, warnings = format_reply("a" * 161)
    assert text == "a" * 157 + "..."
    assert gsm7.septet_length(text) == 160
    assert any("cut" in w for w in warnings)
    text, _ = format_reply("a" * 159 + "€")  # 161 septets
    assert text == "a" * 157 + "..."


def test_format_reply_extension_char_at_cut_not_split() -> None:
    text, _ = format_reply("a" * 156 + "{" + "b" * 10)
    # budget 157 septets: '{' would need septets 157-158, so it goes entirely
    assert text == "a" * 156 + "..."
    assert gsm7.septet_length(text) == 159


def test_format_reply_replacement_then_cut() -> None:
    text, warnings = format_reply("é" + "☃" * 200)
    assert text == "é" + "?" * 156 + "..."
    assert len(warnings) == 2


@given(st.text(max_size=400))
def test_format_reply_always_fits(text: str) -> None:
    out, _ = format_reply(text)
    assert gsm7.septet_length(out) <= 160
